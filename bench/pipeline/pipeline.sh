#!/usr/bin/env bash
# Benchmark: N VMs through a whole `apply` on govmomi's simulator with
# hyperagent's worker (qemu-img) and libvirt's test driver, against each
# stage run alone over the same N VMs (BenchmarkPipeline in
# cmd/hyperagent/pipeline_bench_test.go), for N = 8 and 16, plain and
# compressed, ROUNDS times; prints each case's median of apply / longest
# stage (goal: at most 1.15), apply / sum of stages, and the largest time
# from a job landing to the apply noticing it.
#
# Usage: bench/pipeline/pipeline.sh [ROUNDS]   (default 3; needs go,
#        qemu-img and a running libvirtd)
#   HYPERAGENT_BENCH_VMS="8,16"  HYPERAGENT_BENCH_COMPRESS="false,true"
#   HYPERAGENT_BENCH_DISK_MIB=64  HYPERAGENT_BENCH_TIMELINE=DIR (draws each
#   apply's timeline into DIR)
set -euo pipefail

rounds=${1:-3}
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

cd "$repo"
go test -count="$rounds" -run '^$' -bench '^BenchmarkPipeline$' -benchtime 1x -timeout 60m \
  ./cmd/hyperagent | tee "$out" | grep '^Benchmark' || true
grep -q '^PASS' "$out" || { echo "bench/pipeline: the benchmark failed" >&2; cat "$out" >&2; exit 1; }

# Each line: name, iterations, the ns/op value and unit, then value unit pairs.
awk '
  /^BenchmarkPipeline\// {
    name = $1; sub(/-[0-9]+$/, "", name); sub(/^BenchmarkPipeline\//, "", name)
    if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    for (i = 5; i < NF; i += 2) { k = name SUBSEP $(i + 1); vals[k] = vals[k] " " $i }
  }
  function median(s,   a, m, i, j, t) {
    m = split(s, a, " ")
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  END {
    printf "%-32s %14s %11s %16s %10s\n", "case (medians)", "apply/longest", "apply/sum", "notice-max-ms", "apply-s"
    for (i = 1; i <= n; i++) {
      c = order[i]
      printf "%-32s %14.3f %11.3f %16.1f %10.3f\n", c, median(vals[c SUBSEP "apply/longest"]), median(vals[c SUBSEP "apply/sum"]),
        median(vals[c SUBSEP "notice-max-ms"]), median(vals[c SUBSEP "apply-s"])
    }
    print "goal: apply/longest <= 1.15"
  }' "$out"
