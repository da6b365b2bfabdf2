#!/usr/bin/env bash
# qcow2 read performance, side by side in one run (issue 4):
#   the same 1 GiB of data as raw and as qcow2 (64 KiB clusters) and as a compressed qcow2,
#   exported through blockfuse (the Karaf distribution, legacy/auto transport) and the qcow2 copies
#   through Debian's qemu-storage-daemon FUSE export; fio randread 4k QD1, QD32 and seq read 1M.
#
#   bench/qcow2-bench.sh [--runtime S] [--reps N]      (build first: mvn -B -q -DskipTests install)
#
# Prints a markdown table (MiB/s, mean/p99 latency) and the ratios qcow2/raw (blockfuse) and
# blockfuse/qemu (same qcow2). Images live on /dev/shm. Records the load average.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNTIME=15; RAMP=3; REPS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) RUNTIME=$2; shift ;;
    --reps) REPS=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac; shift
done

WORK=$(mktemp -d /tmp/qcow2-bench-XXXXXX)
IMGS=$(mktemp -d /dev/shm/qcow2-bench-XXXXXX)
QSD_PID=""
cleanup() {
  [ -n "$QSD_PID" ] && { kill "$QSD_PID" 2>/dev/null; wait "$QSD_PID" 2>/dev/null || true; }
  bf_stop
  for m in "$WORK"/*.img; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  rm -rf "$WORK" "$IMGS"
}
trap cleanup EXIT

echo "load before: $(loadavg)" >&2
# 1 GiB of data: random (incompressible) first 256 MiB, then patterned data that compresses
qemu-img create -q -f raw "$IMGS/disk.raw" 1G
head -c 256M /dev/urandom | dd of="$IMGS/disk.raw" conv=notrunc status=none
qemu-io -f raw -c "write -P 0x5a 256M 768M" "$IMGS/disk.raw" >/dev/null
qemu-img convert -f raw -O qcow2 -o cluster_size=64k "$IMGS/disk.raw" "$IMGS/disk.qcow2"
qemu-img convert -c -f raw -O qcow2 -o cluster_size=64k "$IMGS/disk.raw" "$IMGS/disk-z.qcow2"

bf_start "$WORK"
bf_export raw "$IMGS/disk.raw" "$WORK/raw.img"
bf_export --format qcow2 q "$IMGS/disk.qcow2" "$WORK/q.img"
bf_export --format qcow2 qz "$IMGS/disk-z.qcow2" "$WORK/qz.img"

qsd_start() {
  touch "$2"
  qemu-storage-daemon --blockdev node-name=prot,driver=file,filename="$1",cache.direct=on,aio=io_uring \
    --blockdev node-name=fmt,driver=qcow2,file=prot \
    --export type=fuse,id=exp0,node-name=fmt,mountpoint="$2" >/dev/null 2>&1 &
  QSD_PID=$!
  for _ in $(seq 100); do [ "$(stat -c %s "$2")" -gt 0 ] && return 0; sleep 0.1; done
  echo "qemu-storage-daemon did not come up" >&2; return 1
}
qsd_stop() { kill "$QSD_PID"; wait "$QSD_PID" 2>/dev/null || true; QSD_PID=""; rm -f "$1"; }

JOBS=("randread 4k 1" "randread 4k 32" "read 1M 4")
declare -A BW LAT P99
measure() { # label file
  local label=$1 file=$2 job rw bs qd rep
  for job in "${JOBS[@]}"; do
    read -r rw bs qd <<<"$job"
    local sum=0 lsum=0 psum=0
    for rep in $(seq "$REPS"); do
      read -r r _ rl rp _ _ < <(bf_fio --name=b --filename="$file" --rw="$rw" --bs="$bs" --iodepth="$qd" \
          --ioengine=libaio --direct=1 --time_based --runtime="$RUNTIME" --ramp_time="$RAMP" --size=1G)
      sum=$(echo "$sum + $r" | bc -l); lsum=$(echo "$lsum + $rl" | bc -l); psum=$(echo "$psum + $rp" | bc -l)
    done
    BW[$label,$job]=$(printf %.1f "$(echo "$sum / $REPS" | bc -l)")
    LAT[$label,$job]=$(printf %.0f "$(echo "$lsum / $REPS" | bc -l)")
    P99[$label,$job]=$(printf %.0f "$(echo "$psum / $REPS" | bc -l)")
  done
}

measure "blockfuse raw" "$WORK/raw.img"
measure "blockfuse qcow2" "$WORK/q.img"
measure "blockfuse qcow2 zlib" "$WORK/qz.img"
qsd_start "$IMGS/disk.qcow2" "$WORK/qsd.img"; measure "qemu qcow2" "$WORK/qsd.img"; qsd_stop "$WORK/qsd.img"
qsd_start "$IMGS/disk-z.qcow2" "$WORK/qsdz.img"; measure "qemu qcow2 zlib" "$WORK/qsdz.img"; qsd_stop "$WORK/qsdz.img"

echo
echo "| case | job | MiB/s | mean µs | p99 µs |"
echo "|---|---|---:|---:|---:|"
for label in "blockfuse raw" "blockfuse qcow2" "blockfuse qcow2 zlib" "qemu qcow2" "qemu qcow2 zlib"; do
  for job in "${JOBS[@]}"; do
    echo "| $label | $job | ${BW[$label,$job]} | ${LAT[$label,$job]} | ${P99[$label,$job]} |"
  done
done
echo
echo "| job | qcow2/raw (blockfuse) | blockfuse/qemu (qcow2) | blockfuse/qemu (compressed) |"
echo "|---|---:|---:|---:|"
for job in "${JOBS[@]}"; do
  printf "| %s | %.2f | %.2f | %.2f |\n" "$job" \
    "$(echo "${BW[blockfuse qcow2,$job]} / ${BW[blockfuse raw,$job]}" | bc -l)" \
    "$(echo "${BW[blockfuse qcow2,$job]} / ${BW[qemu qcow2,$job]}" | bc -l)" \
    "$(echo "${BW[blockfuse qcow2 zlib,$job]} / ${BW[qemu qcow2 zlib,$job]}" | bc -l)"
done
echo
echo "load after: $(loadavg); runtime ${RUNTIME}s + ${RAMP}s ramp, ${REPS} repetitions, images on /dev/shm"
