#!/usr/bin/env bash
# nbd-bench.sh — one NBD server, exported as a FUSE file by blockfuse and by qemu-storage-daemon,
# side by side in one run.
#
# The server (--server) is Debian's qemu-nbd on a raw image in /dev/shm (--shared=16: it then allows
# several connections, multi-conn), or nbdkit's file plugin on that image (threads serve requests in
# parallel, multi-conn). Targets, in alternating order each round:
#   served    fio straight on the image qemu-nbd serves (the storage's own ceiling)
#   blockfuse the blockfuse distribution (bin/start), `export-add --format nbd --writable`, defaults
#             (io_uring transport, connections=4)
#   qsd       qemu-storage-daemon --blockdev driver=nbd --export type=fuse,writable=on (its NBD
#             client uses one connection)
# Patterns: randrw 70/30 4 KiB O_DIRECT libaio at jobs x QD 1x1, 4x1, 1x64, 4x64, then 1 MiB
# sequential read and write (1 job, QD 16). Prints a markdown table of MiB/s and p99 latency per
# target and the ratio blockfuse / qsd.
#
# Usage: bench/nbd-bench.sh [--server qemu-nbd|nbdkit] [--runtime S] [--ramp S] [--reps N] [--out FILE.md]
#        [--bf-opts "--connections 2 ..."]   (export-add options for the blockfuse export)
#        [--patterns "1x1 4x1 1x64 4x64 seqread seqwrite"]
# Needs root, the built distribution (mvn -B -q -DskipTests install), fio, qemu-nbd and
# qemu-storage-daemon. Run on a quiet machine: the load average is recorded before and after.
# Everything started is stopped by PID and every mount removed on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNTIME=10
RAMP=2
REPS=2
OUT=""
SERVER=qemu-nbd
BF_OPTS=""
PATTERN_LIST="1x1 4x1 1x64 4x64 seqread seqwrite"
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) RUNTIME=$2; shift ;;
    --ramp) RAMP=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --server) SERVER=$2; shift ;;
    --bf-opts) BF_OPTS=$2; shift ;;
    --patterns) PATTERN_LIST=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

WORK=$(mktemp -d /tmp/nbd-bench.XXXXXX)
IMAGE=/dev/shm/nbd-bench-$$.raw
SOCK=$WORK/nbd.sock
NBD_PID="" QSD_PID=""
cleanup() {
  set +e
  [ -n "$QSD_PID" ] && kill "$QSD_PID" 2>/dev/null && wait "$QSD_PID" 2>/dev/null
  mountpoint -q "$WORK/qsd.img" 2>/dev/null && umount -l "$WORK/qsd.img"
  [ -n "$BF_HOME" ] && bf_client "blockfuse:export-remove nbdbench" >/dev/null 2>&1
  bf_stop
  [ -n "$NBD_PID" ] && kill "$NBD_PID" 2>/dev/null && wait "$NBD_PID" 2>/dev/null
  rm -f "$IMAGE"
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

LOAD_BEFORE=$(loadavg)
dd if=/dev/urandom of="$IMAGE" bs=1M count=1024 status=none
case "$SERVER" in
  qemu-nbd) qemu-nbd --persistent --shared=16 --format=raw --socket="$SOCK" "$IMAGE" & ;;
  nbdkit) nbdkit -f --exit-with-parent -U "$SOCK" file "$IMAGE" & ;;
  *) echo "--server must be qemu-nbd or nbdkit" >&2; exit 2 ;;
esac
NBD_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done

bf_start "$WORK"
touch "$WORK/bf.img" "$WORK/qsd.img"
# shellcheck disable=SC2086
bf_export --format nbd --writable $BF_OPTS nbdbench "nbd+unix:///?socket=$SOCK" "$WORK/bf.img"
BF_STATE=$(bf_client "blockfuse:export-list --no-format" | grep nbdbench | tr '\t' ' ')
qemu-storage-daemon --blockdev "driver=nbd,node-name=n,server.type=unix,server.path=$SOCK" \
  --export "type=fuse,id=e,node-name=n,mountpoint=$WORK/qsd.img,writable=on" &
QSD_PID=$!
for _ in $(seq 100); do mountpoint -q "$WORK/qsd.img" && break; sleep 0.1; done
mountpoint -q "$WORK/qsd.img" || { echo "qemu-storage-daemon did not mount" >&2; exit 1; }

# utime+stime clock ticks of the server, the blockfuse JVM and qsd (with their threads)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_ticks() { echo "$(ticks "$NBD_PID") $(ticks "$(cat "$BF_HOME/karaf.pid")") $(ticks "$QSD_PID")"; }
declare -A FILE=([served]="$IMAGE" [blockfuse]="$WORK/bf.img" [qsd]="$WORK/qsd.img")
read -r -a PATTERNS <<<"$PATTERN_LIST"
declare -A SUM
run_one() { # pattern target
  local p=$1 t=$2 args
  case "$p" in
    seqread) args="--rw=read --bs=1M --numjobs=1 --iodepth=16" ;;
    seqwrite) args="--rw=write --bs=1M --numjobs=1 --iodepth=16" ;;
    *) args="--rw=randrw --rwmixread=70 --bs=4k --numjobs=${p%x*} --iodepth=${p#*x}" ;;
  esac
  # shellcheck disable=SC2086
  bf_fio --name=b --filename="${FILE[$t]}" $args --direct=1 --ioengine=libaio --size=1G \
    --time_based --runtime="$RUNTIME" --ramp_time="$RAMP" --norandommap --randrepeat=0
}
for rep in $(seq "$REPS"); do
  for p in "${PATTERNS[@]}"; do
    order="served blockfuse qsd"
    [ $((rep % 2)) -eq 0 ] && order="qsd blockfuse served"
    for t in $order; do
      cpu0=$(cpu_ticks)
      read -r rb wb rm rp wm wp < <(run_one "$p" "$t")
      read -r s1 b1 q1 < <(cpu_ticks); read -r s0 b0 q0 <<<"$cpu0"
      echo "rep $rep $p $t: read $rb MiB/s (p99 $rp us) write $wb MiB/s (p99 $wp us); CPU s: server $(((s1-s0)/100)) blockfuse $(((b1-b0)/100)) qsd $(((q1-q0)/100))" >&2
      SUM[$p.$t]="${SUM[$p.$t]:-} $rb:$wb:$rp:$wp"
    done
  done
done
LOAD_AFTER=$(loadavg)

table=$(python3 - "$REPS" <<PY
import sys
reps = int(sys.argv[1])
data = {}
for line in """$(for k in "${!SUM[@]}"; do echo "$k ${SUM[$k]}"; done)""".strip().splitlines():
    key, *vals = line.split()
    p, t = key.split(".")
    v = [list(map(float, x.split(":"))) for x in vals]
    data[(p, t)] = [sum(c) / len(c) for c in zip(*v)]  # mean over reps of rMiB, wMiB, rP99, wP99
pats = [p for p in ["1x1", "4x1", "1x64", "4x64", "seqread", "seqwrite"] if (p, "qsd") in data]
name = {"1x1": "randrw 4k 1 x 1", "4x1": "randrw 4k 4 x 1", "1x64": "randrw 4k 1 x 64", "4x64": "randrw 4k 4 x 64",
        "seqread": "read 1M 1 x 16", "seqwrite": "write 1M 1 x 16"}
print("| pattern | served file MiB/s | blockfuse MiB/s | qsd MiB/s | blockfuse / qsd | blockfuse p99 us | qsd p99 us |")
print("|---|---:|---:|---:|---:|---:|---:|")
for p in pats:
    def tot(t):
        d = data[(p, t)]
        return d[0] + d[1]
    def p99(t):
        d = data[(p, t)]
        return "%.0f / %.0f" % (d[2], d[3]) if p.startswith(("1x", "4x")) else "%.0f" % (d[2] if p == "seqread" else d[3])
    print("| %s | %.0f | %.0f | %.0f | **%.2f** | %s | %s |" % (name[p], tot("served"), tot("blockfuse"), tot("qsd"),
          tot("blockfuse") / tot("qsd"), p99("blockfuse"), p99("qsd")))
PY
)
{
  echo "NBD export side by side (server: $SERVER): $(date -u +%F), $(nproc) CPUs, kernel $(uname -r), ${REPS} reps x ${RUNTIME} s (+${RAMP} s ramp)"
  echo "load average before: $LOAD_BEFORE; after: $LOAD_AFTER"
  echo "blockfuse: $BF_STATE"
  echo "MiB/s = read + write; p99 = read / write latency for the random patterns"
  echo
  echo "$table"
} | tee ${OUT:+"$OUT"}
