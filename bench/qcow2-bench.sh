#!/usr/bin/env bash
# Compares read throughput of raw vs qcow2 (64 KiB clusters, plus a compressed copy), exported through
# blockfuse and through qemu-storage-daemon's FUSE export. Not run by the build: it is a manual tool.
#
#   bench/qcow2-bench.sh [SIZE]        (default SIZE=2G; needs fio, qemu-img, qemu-storage-daemon, bin/client)
#
# Each case runs fio randread 4k at QD1 and QD32 and a sequential 1M read, with direct I/O on the exported file.
set -euo pipefail

SIZE=${1:-2G}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/qcow2-bench-XXXXXX)
RUNTIME=${RUNTIME:-20}
PIDS=()

cleanup() {
    for mp in "$WORK"/mnt-*; do
        [ -e "$mp" ] && fusermount3 -u "$mp" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

make_images() {
    echo "== creating $SIZE test images in $WORK"
    qemu-img create -q -f raw "$WORK/disk.raw" "$SIZE"
    # Fill with incompressible data so the compressed copy still exercises decompression.
    qemu-io -f raw -c "write -P 0x5a 0 $SIZE" "$WORK/disk.raw" >/dev/null
    head -c 64M /dev/urandom | dd of="$WORK/disk.raw" conv=notrunc status=none
    qemu-img convert -f raw -O qcow2 -o cluster_size=64k "$WORK/disk.raw" "$WORK/disk.qcow2"
    qemu-img convert -c -f raw -O qcow2 -o cluster_size=64k "$WORK/disk.raw" "$WORK/disk-z.qcow2"
}

# ---------------------------------------------------------------------------------------------
# START A BLOCKFUSE EXPORT  (how blockfuse is started is being built elsewhere; adjust here only)
# Arguments: NAME IMAGE MOUNTPOINT FORMAT. Must return once MOUNTPOINT serves the image.
start_blockfuse_export() {
    local name=$1 image=$2 mountpoint=$3 format=$4
    touch "$mountpoint"
    "$ROOT/bin/client" "blockfuse:export-add $name $image $mountpoint --format $format"
    wait_for_size "$mountpoint"
}

stop_blockfuse_export() {
    "$ROOT/bin/client" "blockfuse:export-remove $1" || true
}
# ---------------------------------------------------------------------------------------------

start_qsd_export() {
    local image=$1 mountpoint=$2 format=$3
    touch "$mountpoint"
    qemu-storage-daemon \
        --blockdev node-name=prot,driver=file,filename="$image" \
        --blockdev node-name=fmt,driver="$format",file=prot \
        --export type=fuse,id=exp0,node-name=fmt,mountpoint="$mountpoint" &
    PIDS+=($!)
    wait_for_size "$mountpoint"
}

stop_qsd_export() {
    local pid=${PIDS[-1]}
    kill "$pid"; wait "$pid" 2>/dev/null || true
    unset 'PIDS[-1]'
}

wait_for_size() {
    for _ in $(seq 100); do
        [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 0 ] && return 0
        sleep 0.1
    done
    echo "export at $1 did not come up" >&2; return 1
}

run_fio() {
    local label=$1 file=$2
    for job in "randread 4k 1" "randread 4k 32" "read 1M 4"; do
        set -- $job
        local bw
        bw=$(fio --name=b --filename="$file" --rw="$1" --bs="$2" --iodepth="$3" --ioengine=libaio \
                 --direct=1 --time_based --runtime="$RUNTIME" --output-format=terse --terse-version=3 \
                 | awk -F';' '{print $7 " KiB/s, " $8 " IOPS"}')
        printf '%-28s %-9s bs=%-3s qd=%-3s %s\n' "$label" "$1" "$2" "$3" "$bw"
    done
}

make_images
for case in "raw disk.raw" "qcow2 disk.qcow2" "qcow2 disk-z.qcow2"; do
    set -- $case
    fmt=$1 img=$WORK/$2
    mp=$WORK/mnt-bf-$2
    start_blockfuse_export "bench-${2%%.*}" "$img" "$mp" "$fmt"
    run_fio "blockfuse $2" "$mp"
    stop_blockfuse_export "bench-${2%%.*}"
    mp=$WORK/mnt-qsd-$2
    start_qsd_export "$img" "$mp" "$fmt"
    run_fio "qemu-storage-daemon $2" "$mp"
    stop_qsd_export
done
