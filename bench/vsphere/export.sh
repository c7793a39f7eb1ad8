#!/usr/bin/env bash
# Benchmark: export one VM whose disk holds 1 GiB of seeded incompressible
# bytes from govmomi's simulator (vcsim, in its own process, over TLS with a
# pinned thumbprint), three ways in the same run:
#
#   raw       dd of the simulator's disk file to the export filesystem, fsynced
#   https     the same lease's device URL copied to a file (io.Copy + fsync; no
#             hash, no renewal, no descriptor): what the TLS stream can deliver
#   hyperagent the vsphere source's Export (NFC lease with updater, sha256 while
#             writing, fsync + rename, OVF descriptor and .mf)
#   govc      govc export.ovf -sha 256 (v0.46.3, the newest `go install`able),
#             and the same followed by an fsync of its disk file (like for like)
#
# Every export's disk is checked against the seeded sha256. Prints medians in
# MB/s and the ratios (goals: hyperagent >= 1.0x govc, >= 0.9x raw).
#
# Usage: bench/vsphere/export.sh [ROUNDS]   (default 3; SIZE_MIB=1024; needs go)
#        VSPHERE_BENCH_BIN, GOVC_BIN: use binaries built elsewhere
set -euo pipefail

rounds=${1:-3}
size_mib=${SIZE_MIB:-1024}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/hyperagent-vsphere-bench.XXXXXX")
server=
cleanup() {
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -n "${VSPHERE_BENCH_BIN:-}" ]]; then # a build of another revision
  cp "$VSPHERE_BENCH_BIN" "$work/vsphere-bench"
else
  ( cd "$repo" && go build -o "$work/vsphere-bench" ./bench/vsphere )
fi
if [[ -n "${GOVC_BIN:-}" ]]; then # a govc built elsewhere
  govc=$GOVC_BIN
else
  GOBIN="$work/gobin" go install github.com/vmware/govmomi/govc@v0.46.3
  govc="$work/gobin/govc"
fi

"$work/vsphere-bench" serve -size-mib "$size_mib" >"$work/serve.out" 2>"$work/serve.err" </dev/null &
server=$!
for ((i = 0; i < 600; i++)); do
  grep -q '^READY$' "$work/serve.out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.5
done
grep -q '^READY$' "$work/serve.out" || { echo "simulator not ready" >&2; exit 1; }
eval "$(grep -E '^(GOVC_URL|GOVC_THUMBPRINT|VM|DISK|SHA256)=' "$work/serve.out" | sed 's/^/export /')"
export GOVC_PERSIST_SESSION=false
# govc pins thumbprints through a known-hosts file ("host:port thumbprint");
# hyperagent also reads GOVC_THUMBPRINT.
hostport=${GOVC_URL#*@}
hostport=${hostport%%/*}
echo "$hostport $GOVC_THUMBPRINT" >"$work/known_hosts"
export GOVC_TLS_KNOWN_HOSTS="$work/known_hosts"
bytes=$(stat -c %s "$DISK")

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {print b - a}'; }
check() { # $1 = file
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [[ "$got" == "$SHA256" ]] || { echo "$1: sha256 $got, want $SHA256" >&2; exit 1; }
}

for k in raw https hyperagent govc govcsync; do : >"$work/$k.times"; done
cat "$DISK" >/dev/null # the same page-cache state for every reader
for ((i = 1; i <= rounds; i++)); do
  rm -rf "$work/out" && mkdir -p "$work/out"
  t0=$(now)
  dd if="$DISK" of="$work/out/raw.bin" bs=1M conv=fsync status=none
  t1=$(now)
  elapsed "$t0" "$t1" >>"$work/raw.times"

  rm -rf "$work/out" && mkdir -p "$work/out"
  t0=$(now)
  "$work/vsphere-bench" fetch -dir "$work/out/https" >/dev/null
  t1=$(now)
  elapsed "$t0" "$t1" >>"$work/https.times"
  check "$(find "$work/out/https" -name '*.vmdk')"

  rm -rf "$work/out" && mkdir -p "$work/out"
  t0=$(now)
  "$work/vsphere-bench" export -dir "$work/out/ha" -sha256 "$SHA256" >"$work/ha.out"
  t1=$(now)
  elapsed "$t0" "$t1" >>"$work/hyperagent.times"
  echo "round $i hyperagent: $(cat "$work/ha.out")" >&2
  check "$(find "$work/out/ha" -name '*.vmdk')"

  rm -rf "$work/out" && mkdir -p "$work/out"
  t0=$(now)
  "$govc" export.ovf -vm "$VM" -sha 256 "$work/out" >/dev/null
  t1=$(now)
  disk=$(find "$work/out" -name '*.vmdk' -size +1M)
  sync "$disk"
  t2=$(now)
  elapsed "$t0" "$t1" >>"$work/govc.times"
  elapsed "$t0" "$t2" >>"$work/govcsync.times"
  check "$disk"
done

mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN {printf "%.1f", b / 1e6 / s}'; }
declare -A med
for k in raw https hyperagent govc govcsync; do med[$k]=$(median <"$work/$k.times"); done
echo "vsphere export of $bytes bytes, $rounds rounds, median seconds (MB/s) on $(nproc) CPUs:"
echo "  raw copy + fsync     ${med[raw]} s ($(mbps "${med[raw]}") MB/s)"
echo "  https copy + fsync   ${med[https]} s ($(mbps "${med[https]}") MB/s)"
echo "  hyperagent export    ${med[hyperagent]} s ($(mbps "${med[hyperagent]}") MB/s)"
echo "  govc export.ovf      ${med[govc]} s ($(mbps "${med[govc]}") MB/s)"
echo "  govc + fsync         ${med[govcsync]} s ($(mbps "${med[govcsync]}") MB/s)"
awk -v h="${med[hyperagent]}" -v g="${med[govc]}" -v gs="${med[govcsync]}" -v r="${med[raw]}" -v w="${med[https]}" 'BEGIN {
  printf "  hyperagent/govc %.2fx, hyperagent/(govc+fsync) %.2fx, hyperagent/raw %.2fx, hyperagent/https %.2fx (throughput ratios)\n",
    g / h, gs / h, r / h, w / h }'
