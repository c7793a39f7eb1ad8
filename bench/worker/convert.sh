#!/usr/bin/env bash
# Benchmark: `hyperagent worker -once` on a 1 GiB disk (a monolithicSparse
# VMDK of 537 MB: every 32 MiB, 8 MiB of random data, 8 MiB of this host's
# binaries and libraries, then a 16 MiB hole), beside bare qemu-img on the
# same file, in one run, rounds interleaved. Wall and CPU (user + system of
# the whole process tree) for each; medians, and minimums (this is often a
# shared machine: the minimum is the run least disturbed).
#
#   bare             qemu-img convert + qemu-img check + fsync of the output
#                    (what the worker must do at least: convert, check, make
#                    the output durable before presenting it)
#   worker           the worker converting the same disk to qcow2, the
#                    manifest carrying the sha256 and the file identity the
#                    exporter recorded (here: the script, after writing the
#                    VMDK), so the worker verifies the input without reading
#                    it again. The run fails if the report does not say so.
#   worker zstd      the same job with compress = true
#   bare zlib        qemu-img convert -c (zlib: what the worker used before)
#   base worker      with HYPERAGENT_BASE_BIN=path: another build of the
#                    worker (e.g. an older one) on the plain job
#
# Goals: worker / bare <= 1.10 (wall and CPU); worker zstd / worker <= 2.5.
#
# Usage: bench/worker/convert.sh [ROUNDS]   (default 5; needs go, qemu-img)
#   HYPERAGENT_BIN=path   use that binary instead of building ./cmd/hyperagent
#   SIZE_MIB=n            disk size (default 1024)
set -euo pipefail

rounds=${1:-5}
size_mib=${SIZE_MIB:-1024}
command -v qemu-img >/dev/null || { echo "qemu-img missing: install qemu-utils" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/hyperagent-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/out" "$work/wf/to_be_processed" "$work/bare"

if [[ -n "${HYPERAGENT_BIN:-}" ]]; then # a binary built elsewhere
  cp "$HYPERAGENT_BIN" "$work/hyperagent"
else
  (cd "$repo" && go build -o "$work/hyperagent" ./cmd/hyperagent)
fi
base=${HYPERAGENT_BASE_BIN:-}

# The disk. Binaries stand in for an OS disk's compressible content.
raw="$work/src.raw"
truncate -s "${size_mib}M" "$raw"
find /usr/lib /usr/bin -type f -size +64k 2>/dev/null | sort | head -2000 | xargs cat 2>/dev/null | head -c $((size_mib / 4))M >"$work/bin.dat" || true
[[ $(stat -c %s "$work/bin.dat") -ge $((8 << 20)) ]] || { echo "not enough binaries under /usr to fill the disk" >&2; exit 1; }
binmib=$(($(stat -c %s "$work/bin.dat") >> 20))
for ((off = 0; off < size_mib; off += 32)); do
  dd if=/dev/urandom of="$raw" bs=1M count=8 seek="$off" conv=notrunc status=none
  dd if="$work/bin.dat" of="$raw" bs=1M count=8 skip=$(((off / 32 * 8) % (binmib - 7))) seek=$((off + 8)) conv=notrunc status=none
done
rm -f "$work/bin.dat"
vmdk="$work/in/disk.vmdk"
qemu-img convert -f raw -O vmdk "$raw" "$vmdk"
rm -f "$raw"
chmod 0644 "$vmdk" # only its owner may write it, as an export's disk

# What the exporter records: sha256 and the file's identity once written.
bytes=$(stat -c %s "$vmdk")
sum=$(sha256sum "$vmdk" | cut -d' ' -f1)
read -r dev ino size mtime ctime < <(stat -c '%d %i %s %.9Y %.9Z' "$vmdk")
identity="dev=$dev ino=$ino size=$size mtime_ns=${mtime/./} ctime_ns=${ctime/./}"

manifest() { # $1 = job id, $2 = compress (true|false)
  cat <<JSON
{"manifest_version":"1.0",
 "source":{"provider":"bench","vm_name":"bench"},
 "vm":{"cpu":1,"mem_gb":1,"firmware":"bios","os_hint":"linux"},
 "disks":[{"id":"disk0","source_format":"vmdk","bytes":$bytes,"local_path":"$vmdk","checksum":"sha256:$sum","boot_order_hint":0,"disk_type":"boot"}],
 "nics":[],"metadata":{"job_id":"$1","tags":{"file_identity.disk0":"$identity"}},
 "pipeline":{"inspect":{"enabled":false},"fix":{"enabled":false},"convert":{"enabled":true,"compress":$2},"validate":{"enabled":true,"check_image_integrity":true}},
 "output":{"directory":"$work/out/$1","format":"qcow2"},
 "options":{"report":{"enabled":true,"path":"report.json"}}}
JSON
}

TIMEFORMAT='%R %U %S'
declare -A wall cpu outsize
record() { # $1 = name, $2 = "real user sys"
  local r u s
  read -r r u s <<<"$2"
  wall[$1]+="$r "
  cpu[$1]+="$(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}') "
}

n=0
worker() { # $1 = name, $2 = binary, $3 = compress
  n=$((n + 1))
  local id="bench-$n" t
  manifest "$id" "$3" >"$work/wf/.tmp.json"
  mv "$work/wf/.tmp.json" "$work/wf/to_be_processed/$id.json"
  t=$({ time "$2" worker -once -workflow-dir="$work/wf" -input-root="$work/in" -output-root="$work/out" 2>"$work/worker.log"; } 2>&1)
  local report=("$work/wf/processed/"*"/$id.json.report.json")
  test -f "${report[0]}" || { echo "worker did not succeed on $id" >&2; cat "$work/worker.log" >&2; exit 1; }
  if [[ "$2" == "$work/hyperagent" ]] && ! grep -q "so it was not read again" "${report[0]}"; then
    echo "the worker did not take the exporter's sha256 for the unchanged input:" >&2; cat "${report[0]}" >&2; exit 1
  fi
  record "$1" "$t"
  outsize[$1]=$(stat -c %s "$work/out/$id/disk0.qcow2")
  rm -rf "$work/out/$id"
}

bare() { # $1 = name, then qemu-img convert options
  local name=$1 t
  shift
  t=$({ time {
    qemu-img convert -q "$@" -f vmdk -O qcow2 "$vmdk" "$work/bare/out.qcow2"
    qemu-img check -q -f qcow2 "$work/bare/out.qcow2"
    sync "$work/bare/out.qcow2"
  }; } 2>&1)
  record "$name" "$t"
  outsize[$name]=$(stat -c %s "$work/bare/out.qcow2")
  rm -f "$work/bare/out.qcow2"
}

# Every contender's output is deleted right after it is timed: an output
# left behind until the next round slowed whatever ran next (here, the next
# contender's CPU time doubled in some rounds).
cat "$vmdk" >/dev/null # warm the page cache for every contender alike
for ((i = 1; i <= rounds; i++)); do
  bare "bare"
  worker "worker" "$work/hyperagent" false
  worker "worker zstd" "$work/hyperagent" true
  bare "bare zlib" -c
  if [[ -n "$base" ]]; then worker "base worker" "$base" false; fi
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
least() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }
stat_of() { # $1 = wall|cpu, $2 = name, $3 = median|least
  local -n m=$1
  "$3" <<<"${m[$2]}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

printf 'disk: %d MiB virtual, VMDK %d bytes; rounds: %d; %s; %d cores\n' "$size_mib" "$bytes" "$rounds" "$(qemu-img --version | head -1)" "$(nproc)"
printf '%-12s %9s %9s %9s %9s %12s\n' "" "wall med" "wall min" "cpu med" "cpu min" "output"
names=("bare" "worker" "worker zstd" "bare zlib")
if [[ -n "$base" ]]; then names+=("base worker"); fi
for k in "${names[@]}"; do
  printf '%-12s %8.2fs %8.2fs %8.2fs %8.2fs %12d\n' "$k" "$(stat_of wall "$k" median)" "$(stat_of wall "$k" least)" \
    "$(stat_of cpu "$k" median)" "$(stat_of cpu "$k" least)" "${outsize[$k]}"
done
for k in "${names[@]}"; do
  printf '  %-12s walls: %s cpus: %s\n' "$k" "${wall[$k]}" "${cpu[$k]}"
done
for m in median least; do
  printf 'worker / bare (%s):       wall %s, cpu %s (goal <= 1.10)\n' "$m" \
    "$(ratio "$(stat_of wall worker $m)" "$(stat_of wall bare $m)")" "$(ratio "$(stat_of cpu worker $m)" "$(stat_of cpu bare $m)")"
  printf 'worker zstd / worker (%s): wall %s, cpu %s (goal: wall <= 2.5); size %s of plain\n' "$m" \
    "$(ratio "$(stat_of wall "worker zstd" $m)" "$(stat_of wall worker $m)")" "$(ratio "$(stat_of cpu "worker zstd" $m)" "$(stat_of cpu worker $m)")" \
    "$(ratio "${outsize[worker zstd]}" "${outsize[worker]}")"
  printf 'bare zlib / bare (%s):     wall %s, cpu %s; size %s of plain\n' "$m" \
    "$(ratio "$(stat_of wall "bare zlib" $m)" "$(stat_of wall bare $m)")" "$(ratio "$(stat_of cpu "bare zlib" $m)" "$(stat_of cpu bare $m)")" \
    "$(ratio "${outsize[bare zlib]}" "${outsize[bare]}")"
  if [[ -n "$base" ]]; then
    printf 'base worker / bare (%s):   wall %s, cpu %s\n' "$m" \
      "$(ratio "$(stat_of wall "base worker" $m)" "$(stat_of wall bare $m)")" "$(ratio "$(stat_of cpu "base worker" $m)" "$(stat_of cpu bare $m)")"
  fi
done
