#!/usr/bin/env bash
# Benchmark: one campaign of 30 OVAs migrated by 1, 2 and then 3 hosts
# sharing it through PostgreSQL (each host an agent and a worker, one
# workflow directory, libvirtd's qemu driver), in the same run:
# BenchmarkHostsThroughput in cmd/hyperagent. Prints, per number of
# hosts, the seconds to the 30th domain, the MiB/s of disk migrated and
# its ratio to one host's, the CPU the hosts' processes used (own-cpu%)
# and how busy all CPUs (cpu%) and the disk (disk%) were, as percents of
# the machine: what a host count hits first.
#
# The hosts run on this one machine: they share its CPUs and its disk,
# where real hosts would each bring their own. Needs what .ci/setup
# installs and starts (PostgreSQL, libvirtd, qemu-img).
#
# Usage: bench/hosts/run.sh [ROUNDS]   (default 1; DISK_MIB sets each disk's
# size, default 64)
set -euo pipefail

rounds=${1:-1}
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
HYPERAGENT_BENCH_DISK_MIB=${DISK_MIB:-64} \
  go test -run '^$' -bench '^BenchmarkHostsThroughput$' -benchtime 1x -count "$rounds" ./cmd/hyperagent/ |
  awk '/^BenchmarkHostsThroughput/ {
    for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
    for (h = 1; h <= 3; h++)
      printf "%d host(s): %6.1f s  %7.1f MiB/s  x%.2f  own-cpu %5.1f%%  cpu %5.1f%%  disk %5.1f%%\n", h,
        v["s/" h "-hosts"], v["MiB/s/" h "-hosts"], v["x/" h "-hosts"], v["own-cpu%/" h "-hosts"], v["cpu%/" h "-hosts"], v["disk%/" h "-hosts"]
    print ""
  }
  /^(FAIL|ok|PASS)/ { print }'
