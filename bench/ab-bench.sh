#!/usr/bin/env bash
# ab-bench.sh — two blockfuse configurations compared fairly on a noisy machine.
#
# Both exports are mounted at once (two BenchExport servers over the same raw image, at two paths)
# and fio alternates between them run by run: A, B, A, B, ... So a slow minute of the host (this VM
# shows 2-10 % steal time, more in bursts) hits both sides alike, which running one configuration
# after the other cannot give. Prints every pair and, per fio configuration, the median of the
# per-pair ratios B/A of total MiB/s with the p99 latencies of both.
#
# Usage: bench/ab-bench.sh [--pairs N] [--runtime S] [--configs "1x1 4x1 1x64 4x64"]
#                          [--a "io_uring opts..."] [--b "io_uring statistics=off"] [--buffered]
#                          [--rw randrw|randread|read|write] [--bs 4k] [--span 1G]
#   --a / --b   transport then key=value options for BenchExport (default: io_uring vs io_uring statistics=off)
#   --configs   jobs x iodepth, randrw 70/30 4 KiB libaio (O_DIRECT unless --buffered)
#   --rw/--bs   another fio pattern; --span: the part of the 1 GiB image fio uses (a hot set)
#   --disk      the image in /tmp (the host disk) instead of /dev/shm: a slow backend, requests go to workers
#   --a-classes DIR  classes that come first on side A's class path (another build of a module:
#               compare code, not only settings, e.g. DIR = a worktree's bundles/transport-uring/target/classes)
# Needs root, fio, Java 17, Maven (offline). Stops both servers and removes both mounts on exit.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
PAIRS=5
RUNTIME=8
CONFIGS="1x1 4x1 1x64 4x64"
A="io_uring"
B="io_uring statistics=off"
DIRECT=1
A_CLASSES=""
RW=randrw
BS=4k
SPAN=1G
IMG_DIR=/dev/shm
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) PAIRS=$2; shift ;;
    --runtime) RUNTIME=$2; shift ;;
    --configs) CONFIGS=$2; shift ;;
    --a) A=$2; shift ;;
    --b) B=$2; shift ;;
    --buffered) DIRECT=0 ;;
    --disk) IMG_DIR=/tmp ;;
    --rw) RW=$2; shift ;;
    --bs) BS=$2; shift ;;
    --span) SPAN=$2; shift ;;
    --a-classes) A_CLASSES=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "needs root (mounts)" >&2; exit 1; }

WORK=/tmp/ab-bench-$$
IMG=$IMG_DIR/ab-bench-$$.raw
mkdir -p "$WORK"
declare -A MNT
cleanup() {
  for side in a b; do
    bench_export_stop "$side"
    if [ -n "${MNT[$side]:-}" ] && grep -q " ${MNT[$side]} " /proc/mounts; then umount -l "${MNT[$side]}" || true; fi
    rm -f "${MNT[$side]:-}"
  done
  rm -f "$IMG"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # side transport [key=value...]
  local side=$1 transport=$2; shift 2
  MNT[$side]=/tmp/ab-bench-$$-$side.img
  local cp=$CP
  if [ "$side" = a ] && [ -n "$A_CLASSES" ]; then cp="$A_CLASSES:$CP"; fi
  bench_export_start "$side" "$cp" "$WORK" "$transport" "$IMG" "${MNT[$side]}" cache=none "$@" || return 1
  echo "  $side: $transport $* — $(sed -n 's/^READY //p' "$WORK/$side.out")" >&2
}

echo "load average before: $(loadavg)" >&2
CP=$(bench_export_classpath "$WORK")
dd if=/dev/urandom of="$IMG" bs=1M count=1024 status=none
# shellcheck disable=SC2086
start a $A
# shellcheck disable=SC2086
start b $B
LOAD_BEFORE=$(loadavg)

{
  echo "### A/B: A = $A${A_CLASSES:+ (classes from $A_CLASSES first)}, B = $B; $RW (70/30 if mixed) bs=$BS over $SPAN, direct=$DIRECT libaio, ${RUNTIME}s runs, $PAIRS pairs, image in $IMG_DIR"
  echo
  echo "load average before: $LOAD_BEFORE"
  echo
  echo "| jobs x QD | pair | A MiB/s | B MiB/s | B/A | A p99 read µs | B p99 read µs |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
} > "$WORK/table.md"
for cfg in $CONFIGS; do
  jobs=${cfg%x*}; qd=${cfg#*x}
  for pair in $(seq 1 "$PAIRS"); do
    line="| $cfg | $pair"
    for side in a b; do
      read -r r w _ p99r _ _ < <(bf_fio --name=ab --filename="${MNT[$side]}" --rw="$RW" --rwmixread=70 --bs="$BS" \
          --direct="$DIRECT" --ioengine=libaio --size="$SPAN" --iodepth="$qd" --numjobs="$jobs" --time_based \
          --runtime="$RUNTIME" --ramp_time=1)
      eval "tot_$side=\$(echo \"$r + $w\" | bc -l)"
      eval "p99_$side=$p99r"
    done
    # shellcheck disable=SC2154
    ratio=$(echo "$tot_b / $tot_a" | bc -l)
    printf '%s | %.0f | %.0f | %.3f | %.0f | %.0f |\n' "$line" "$tot_a" "$tot_b" "$ratio" "$p99_a" "$p99_b" >> "$WORK/table.md"
    echo "   $cfg pair $pair: B/A $ratio" >&2
  done
done
echo >> "$WORK/table.md"
echo "load average after: $(loadavg)" >> "$WORK/table.md"
python3 - "$WORK/table.md" <<'PY' >> "$WORK/table.md"
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(f) == 7 and "x" in f[0] and f[1].isdigit():
        rows[f[0]].append(float(f[4]))
print("\n| jobs x QD | median B/A | min | max |")
print("|---|---:|---:|---:|")
for cfg, rs in rows.items():
    print(f"| {cfg} | {statistics.median(rs):.3f} | {min(rs):.3f} | {max(rs):.3f} |")
PY
cat "$WORK/table.md"
