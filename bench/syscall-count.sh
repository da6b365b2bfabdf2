#!/usr/bin/env bash
# System calls per FUSE request on the server side, per transport: strace -c -f on the BenchExport
# server while fio runs randread 4k at QD 1 (one job) for 5 s. strace slows everything down; the
# per-request counts are what matter.
#
#   bench/syscall-count.sh [transport ...]      (default: legacy io_uring)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/syscalls-XXXXXX)
IMG=/dev/shm/syscalls-$$.raw
MNT=$WORK/mnt.img
PID=""; SPID=""
cleanup() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true
  [ -n "$PID" ] && { exec 7>&- 2>/dev/null || true; kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT"
  rm -rf "$WORK" "$IMG"
}
trap cleanup EXIT
source "$(dirname "$0")/lib.sh"
CP=$(bench_export_classpath "$WORK")
head -c 256M /dev/urandom > "$IMG"
for t in ${*:-legacy io_uring}; do
  rm -f "$WORK/ctl"; mkfifo "$WORK/ctl"
  java -Xmx256m -cp "$CP" org.blockfuse.uring.BenchExport "$t" "$IMG" "$MNT" < "$WORK/ctl" > "$WORK/out" 2>&1 &
  PID=$!; exec 7> "$WORK/ctl"
  for _ in $(seq 300); do grep -q '^READY' "$WORK/out" && break; sleep 0.1; done
  fio --name=warm --filename="$MNT" --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth=1 --size=256M \
      --time_based --runtime=3 >/dev/null
  strace -c -f -q -p "$PID" -o "$WORK/strace.txt" & SPID=$!
  sleep 1
  ios=$(fio --name=q1 --filename="$MNT" --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth=1 --size=256M \
      --time_based --runtime=5 --output-format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["read"]["total_ios"])')
  kill -INT "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
  echo "== $t: $ios requests"
  awk -v n="$ios" 'NR>2 && $NF!="total" && $4 ~ /^[0-9]+$/ {printf "   %-16s %8d calls  %.2f per request\n", $NF, $4, $4/n}' "$WORK/strace.txt" | sort -k2 -nr | head -8
  exec 7>&-; wait "$PID" 2>/dev/null || true; PID=""
done
