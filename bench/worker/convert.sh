#!/usr/bin/env bash
# Benchmark: a 1 GiB disk (monolithicSparse VMDK made with qemu-img from
# non-trivial data: 16 MiB random runs every 32 MiB, holes between) through
# `hyperagent worker -once`, beside bare `qemu-img convert` + `qemu-img check`
# of the same file, in the same run. Prints both medians and the ratio
# (goal: worker / bare <= 1.05).
#
# The worker also verifies the input's sha256 (in parallel with the
# conversion, the fsync and the check), checks the output, and fsyncs it
# (periodically during the conversion, then once more) before renaming it
# into place; the bare baseline does none of that.
#
# The same run also times bare convert+check followed by an fsync of the
# output, the like-for-like baseline, and that again with qemu-img reading
# the input with io_uring as the worker does where it can: the gap between
# the worker and this last line is the worker's own overhead.
#
# Usage: bench/worker/convert.sh [ROUNDS]   (default 3; needs go, qemu-img)
set -euo pipefail

rounds=${1:-3}
size_mib=${SIZE_MIB:-1024}
command -v qemu-img >/dev/null || { echo "qemu-img missing: install qemu-utils" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/hyperagent-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/out" "$work/wf" "$work/bare"

if [[ -n "${HYPERAGENT_BIN:-}" ]]; then # a binary built elsewhere
  cp "$HYPERAGENT_BIN" "$work/hyperagent"
else
  ( cd "$repo" && go build -o "$work/hyperagent" ./cmd/hyperagent )
fi

raw="$work/src.raw"
truncate -s "${size_mib}M" "$raw"
for ((off = 0; off < size_mib; off += 32)); do
  dd if=/dev/urandom of="$raw" bs=1M count=16 seek="$off" conv=notrunc status=none
done
qemu-img convert -f raw -O vmdk "$raw" "$work/in/disk.vmdk"
rm -f "$raw"
vmdk="$work/in/disk.vmdk"
bytes=$(stat -c %s "$vmdk")
sum=$(sha256sum "$vmdk" | cut -d' ' -f1)

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

manifest() { # $1 = job id
  cat <<JSON
{"manifest_version":"1.0",
 "source":{"provider":"bench","vm_name":"bench"},
 "vm":{"cpu":1,"mem_gb":1,"firmware":"bios","os_hint":"linux"},
 "disks":[{"id":"disk0","source_format":"vmdk","bytes":$bytes,"local_path":"$vmdk","checksum":"sha256:$sum","boot_order_hint":0,"disk_type":"boot"}],
 "nics":[],"metadata":{"job_id":"$1","tags":{}},
 "pipeline":{"inspect":{"enabled":false},"fix":{"enabled":false},"convert":{"enabled":true,"compress":false},"validate":{"enabled":true,"check_image_integrity":true}},
 "output":{"directory":"$work/out/$1","format":"qcow2"},
 "options":{"report":{"enabled":true,"path":"report.json"}}}
JSON
}

cat /dev/null >"$work/bare.times"
cat /dev/null >"$work/worker.times"
cat /dev/null >"$work/baresync.times"
cat /dev/null >"$work/bareuring.times"
cat "$vmdk" >/dev/null # warm the page cache for both sides alike
for ((i = 1; i <= rounds; i++)); do
  rm -f "$work/bare/out.qcow2"
  t0=$(now)
  qemu-img convert -q -f vmdk -O qcow2 "$vmdk" "$work/bare/out.qcow2"
  qemu-img check -q -f qcow2 "$work/bare/out.qcow2"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$work/bare.times"
  sync "$work/bare/out.qcow2" # fsync, as the worker does before presenting an output
  t2=$(now)
  awk -v a="$t0" -v b="$t2" 'BEGIN {print b - a}' >>"$work/baresync.times"

  rm -f "$work/bare/out.qcow2"
  spec="driver=vmdk,file.driver=file,file.aio=io_uring,file.filename=${vmdk//,/,,}"
  t0=$(now)
  qemu-img convert -q -O qcow2 --image-opts "$spec" "$work/bare/out.qcow2"
  qemu-img check -q -f qcow2 "$work/bare/out.qcow2"
  sync "$work/bare/out.qcow2"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$work/bareuring.times"

  id="bench-$i"
  manifest "$id" >"$work/wf/.tmp.json"
  mkdir -p "$work/wf/to_be_processed"
  mv "$work/wf/.tmp.json" "$work/wf/to_be_processed/$id.json"
  t0=$(now)
  "$work/hyperagent" worker -once -workflow-dir="$work/wf" -input-root="$work/in" -output-root="$work/out"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$work/worker.times"
  test -f "$work/wf/processed/"*"/$id.json.report.json" || { echo "worker did not succeed on $id" >&2; ls -R "$work/wf" >&2; exit 1; }
  rm -rf "$work/out/$id"
done

bare=$(median <"$work/bare.times")
worker=$(median <"$work/worker.times")
baresync=$(median <"$work/baresync.times")
bareuring=$(median <"$work/bareuring.times")
printf 'disk: %d MiB virtual, VMDK %d bytes; rounds: %d; %s; %d cores\n' "$size_mib" "$bytes" "$rounds" "$(qemu-img --version | head -1)" "$(nproc)"
printf 'bare qemu-img convert+check: %.2f s (median of %s)\n' "$bare" "$(paste -sd' ' "$work/bare.times")"
printf 'bare convert+check+fsync:    %.2f s (median of %s)\n' "$baresync" "$(paste -sd' ' "$work/baresync.times")"
printf 'bare io_uring input +fsync:  %.2f s (median of %s)\n' "$bareuring" "$(paste -sd' ' "$work/bareuring.times")"
printf 'hyperagent worker -once:     %.2f s (median of %s)\n' "$worker" "$(paste -sd' ' "$work/worker.times")"
printf 'ratio worker/bare: %.3f (goal <= 1.05)\n' "$(awk -v w="$worker" -v b="$bare" 'BEGIN {print w / b}')"
printf 'ratio worker/(bare+fsync): %.3f\n' "$(awk -v w="$worker" -v b="$baresync" 'BEGIN {print w / b}')"
printf 'ratio worker/(bare io_uring+fsync): %.3f\n' "$(awk -v w="$worker" -v b="$bareuring" 'BEGIN {print w / b}')"
