#!/usr/bin/env bash
# Resident memory of one export per io_uring queue depth (and legacy for reference): the server's
# RSS idle after mounting, and after traffic that touches every ring payload (4k randrw QD64 x 4
# jobs, then 1 MiB writes QD32). Uses the same BenchExport server as transport-bench.sh.
#
#   bench/uring-memory.sh [depth ...]        (default: 4 8 16 32 64)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPTHS=${*:-"4 8 16 32 64"}
WORK=$(mktemp -d /tmp/uring-mem-XXXXXX)
IMG=/dev/shm/uring-mem-$$.raw
MNT=$WORK/mnt.img
PID=""
cleanup() {
  [ -n "$PID" ] && { exec 7>&- 2>/dev/null || true; kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT"
  rm -rf "$WORK" "$IMG"
}
trap cleanup EXIT
source "$(dirname "$0")/lib.sh"
CP=$(bench_export_classpath "$WORK")
truncate -s 1G "$IMG"

rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

measure() { # transport opts...
  local transport=$1; shift
  rm -f "$WORK/ctl"; mkfifo "$WORK/ctl"
  java -Xmx256m -cp "$CP" org.blockfuse.uring.BenchExport "$transport" "$IMG" "$MNT" "$@" < "$WORK/ctl" > "$WORK/out" 2>&1 &
  PID=$!
  exec 7> "$WORK/ctl"
  for _ in $(seq 300); do grep -q '^READY' "$WORK/out" && break; sleep 0.1; done
  local layout idle busy
  layout=$(sed -n 's/^READY //p' "$WORK/out")
  sleep 1; idle=$(rss "$PID")
  fio --name=m --filename="$MNT" --rw=randrw --bs=4k --direct=1 --ioengine=libaio --iodepth=64 --numjobs=4 \
      --size=1G --time_based --runtime=5 --group_reporting >/dev/null
  fio --name=w --filename="$MNT" --rw=write --bs=1M --direct=1 --ioengine=libaio --iodepth=32 --size=512M >/dev/null
  busy=$(rss "$PID")
  exec 7>&-; wait "$PID" 2>/dev/null || true; PID=""
  printf "| %s | %s | %s | %s |\n" "$transport $*" "$layout" "$idle" "$busy"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| transport | layout | RSS idle MiB | RSS after traffic MiB |"
echo "|---|---|---:|---:|"
measure legacy
for d in $DEPTHS; do measure io_uring "queue-depth=$d"; done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); JVM -Xmx256m, image on /dev/shm"
