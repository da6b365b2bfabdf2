#!/usr/bin/env bash
# transport-bench.sh — blockfuse transports side by side on one raw image.
#
# Runs the same fio matrix (randrw 70/30, 4 KiB, O_DIRECT, libaio, iodepth 1/64 x numjobs 1/4,
# time-based with ramp, >= 2 repetitions) against:
#   no-FUSE   fio straight on the image (the limit)
#   legacy    blockfuse, /dev/fuse read/write transport
#   io_uring  blockfuse, FUSE-over-io_uring transport
#   nostats   blockfuse io_uring with statistics=off (what collecting the statistics costs)
#   fusepage  blockfuse io_uring with fuse-cache=page (the kernel page cache for the exported file;
#             compare with io_uring, fuse-cache=direct by default, under --buffered)
#   passthrough blockfuse, FUSE passthrough (opens answered with the image as backing file; the
#             kernel reads and writes it, no request reaches blockfuse; image opened buffered, fio's
#             O_DIRECT reaches it)
#   qemu      qemu-storage-daemon's FUSE export (Debian package), aio=io_uring, cache.direct=on
# and prints a markdown table (read/write MiB/s, mean and p99 latency) plus throughput ratios.
#
# Every server is mounted at once, each at its own path over the same image, and each round runs
# every variant back to back (order reversed every other round). This VM's speed drifts by tens of
# percent over minutes (steal time); one variant after the other would put that drift into the
# ratios. The target table also gives the per-round range of each ratio.
#
# How blockfuse is started: without Karaf. The script builds bundles/transport-uring's test classes
# (Maven, offline, under the shared /tmp/mvn.lock) and runs org.blockfuse.uring.BenchExport, a small
# main in that module's test sources that mounts the image through FuseConnection + the chosen
# transport (FuseExport) and unmounts when its stdin closes. Both blockfuse exports open the image
# with cache=none (O_DIRECT), like qemu's cache.direct=on.
#
# Usage: bench/transport-bench.sh [--disk] [--runtime S] [--ramp S] [--reps N] [--quick]
#                                 [--only "nofuse legacy io_uring passthrough qemu"] [--uring-opts "queue-depth=16 ..."]
#   --disk   image in /tmp (the host disk) instead of /dev/shm
#   --buffered fio without O_DIRECT (buffered clients: what the kernel page cache of the export does)
#   --quick  5 s runs, 1 s ramp, 1 repetition (smoke test, not for numbers)
#   --out P  also write the table to P.md and its chart (MiB/s and p99 per variant) to P.svg
# Needs root, fio, qemu-storage-daemon, Java 17, Maven. Run it only on a quiet machine: it records
# the load average before and after, and warns when the machine was busy.
# Everything it starts is stopped by PID and every mount is removed on exit (also on Ctrl-C).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$(dirname "$0")/lib.sh"
IMG_DIR=/dev/shm
RUNTIME=20
RAMP=5
REPS=2
ONLY="nofuse legacy io_uring passthrough qemu"
DIRECT=1
URING_OPTS=""
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --disk) IMG_DIR=/tmp ;;
    --buffered) DIRECT=0 ;;
    --runtime) RUNTIME=$2; shift ;;
    --ramp) RAMP=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --quick) RUNTIME=5; RAMP=1; REPS=1 ;;
    --only) ONLY=$2; shift ;;
    --uring-opts) URING_OPTS=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "needs root (mounts)" >&2; exit 1; }

IMG=$IMG_DIR/uring-bench-$$.raw
WORK=/tmp/uring-bench-$$
mkdir -p "$WORK"
CP=""
# Every server variant stays mounted for the whole run, each at its own path, over the same image.
# blockfuse variants are lib.sh's BenchExport servers (BX_PID); qemu is QSD_PID.
declare -A MNT
QSD_PID=""

stop_server() { # variant
  local v=$1
  if [ "$v" = qemu ]; then
    if [ -n "$QSD_PID" ]; then
      kill -TERM "$QSD_PID" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$QSD_PID" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$QSD_PID" 2>/dev/null || true
      wait "$QSD_PID" 2>/dev/null || true
      QSD_PID=""
    fi
  else
    bench_export_stop "$v"
  fi
  if [ -n "${MNT[$v]:-}" ]; then
    if grep -q " ${MNT[$v]} " /proc/mounts; then umount -l "${MNT[$v]}" 2>/dev/null || true; fi
    rm -f "${MNT[$v]}"
  fi
}
cleanup() {
  for v in "${!MNT[@]}"; do stop_server "$v"; done
  rm -f "$IMG"
  if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_mounted() { # mountpoint pid
  for _ in $(seq 1 100); do
    grep -q " $1 " /proc/mounts && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

build() {
  echo "building test classes and classpath (offline, under /tmp/mvn.lock)..." >&2
  CP=$(bench_export_classpath "$WORK")
}

start_blockfuse() { # variant transport [opts...]
  local v=$1 transport=$2; shift 2
  local cache=cache=none
  case " $* " in *" passthrough=on "*) cache=cache=writeback ;; esac
  MNT[$v]=/tmp/uring-bench-$$-$v.img
  bench_export_start "$v" "$CP" "$WORK" "$transport" "$IMG" "${MNT[$v]}" $cache "$@" || return 1
  sed -n "s/^READY /    $v: /p" "$WORK/$v.out" >&2
}

start_qemu() {
  MNT[qemu]=/tmp/uring-bench-$$-qemu.img
  touch "${MNT[qemu]}"
  (bench_export_close_fds; exec qemu-storage-daemon \
      --blockdev node-name=prot,driver=file,filename="$IMG",cache.direct=on,aio=io_uring \
      --blockdev node-name=fmt,driver=raw,file=prot \
      --export type=fuse,id=exp0,node-name=fmt,mountpoint="${MNT[qemu]}",writable=on \
      > "$WORK/qsd.out" 2>&1) &
  QSD_PID=$!
  wait_mounted "${MNT[qemu]}" "$QSD_PID" || { echo "qemu-storage-daemon did not mount:" >&2; cat "$WORK/qsd.out" >&2; return 1; }
}

run_fio() { # file iodepth numjobs -> json file
  local file=$1 qd=$2 jobs=$3 out=$4
  fio --name=bench --filename="$file" --rw=randrw --rwmixread=70 --bs=4k --direct="$DIRECT" --ioengine=libaio \
      --size=1G --iodepth="$qd" --numjobs="$jobs" --group_reporting --time_based --runtime="$RUNTIME" \
      --ramp_time="$RAMP" --output-format=json --output="$out" >/dev/null
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE" >&2
if awk -v l="${LOAD_BEFORE%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  echo "WARNING: the machine is not quiet (load ${LOAD_BEFORE%% *}); numbers will be noisy" >&2
fi

case " $ONLY " in *" legacy "*|*" io_uring "*|*" nostats "*|*" fusepage "*|*" passthrough "*) build ;; esac

echo "creating a 1 GiB image $IMG (random data)..." >&2
dd if=/dev/urandom of="$IMG" bs=1M count=1024 status=none

target() { # variant -> the file fio uses
  if [ "$1" = nofuse ]; then echo "$IMG"; else echo "${MNT[$1]}"; fi
}
echo "mounting every variant..." >&2
for variant in $ONLY; do
  case "$variant" in
    nofuse) ;;
    legacy) start_blockfuse legacy legacy ;;
    io_uring) # shellcheck disable=SC2086
      start_blockfuse io_uring io_uring $URING_OPTS ;;
    nostats) # shellcheck disable=SC2086
      start_blockfuse nostats io_uring $URING_OPTS statistics=off ;;
    fusepage) # shellcheck disable=SC2086
      start_blockfuse fusepage io_uring $URING_OPTS fuse-cache=page ;;
    passthrough) start_blockfuse passthrough io_uring passthrough=on ;;
    qemu) start_qemu ;;
    *) echo "unknown variant $variant" >&2; exit 2 ;;
  esac
done
# One round runs every variant once, back to back, so a slow minute of the host hits all of them
# alike; the order is reversed every other round so that no variant always runs first or last.
read -r -a FORWARD <<<"$ONLY"
BACKWARD=()
for ((i = ${#FORWARD[@]} - 1; i >= 0; i--)); do BACKWARD+=("${FORWARD[$i]}"); done
for qd in 1 64; do
  for jobs in 1 4; do
    for rep in $(seq 1 "$REPS"); do
      if ((rep % 2)); then order=("${FORWARD[@]}"); else order=("${BACKWARD[@]}"); fi
      echo "   iodepth=$qd numjobs=$jobs round $rep: ${order[*]}" >&2
      for variant in "${order[@]}"; do
        run_fio "$(target "$variant")" "$qd" "$jobs" "$WORK/$variant-qd$qd-j$jobs-r$rep.json"
      done
    done
  done
done
for variant in $ONLY; do
  stop_server "$variant"
  if [ "$variant" = io_uring ]; then sed -n 's/^SERVED/    io_uring served over the rings:/p' "$WORK/$variant.out" >&2; fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$WORK" "$ONLY" "$REPS" "$RUNTIME" "$RAMP" "$IMG_DIR" "$LOAD_BEFORE" "$LOAD_AFTER" "$DIRECT" <<'PY' | tee "$WORK/table.md"
import json, sys, statistics, os
work, only, reps, runtime, ramp, imgdir, lb, la, direct = sys.argv[1:10]
variants = only.split()
reps = int(reps)
def load(v, qd, j):
    rs = []
    for r in range(1, reps + 1):
        with open(os.path.join(work, f"{v}-qd{qd}-j{j}-r{r}.json")) as f:
            d = json.load(f)["jobs"][0]
        rd, wr = d["read"], d["write"]
        n = rd["total_ios"] + wr["total_ios"]
        mean = (rd["lat_ns"]["mean"] * rd["total_ios"] + wr["lat_ns"]["mean"] * wr["total_ios"]) / max(n, 1)
        p99 = lambda x: x["clat_ns"].get("percentile", {}).get("99.000000", 0)
        rs.append(dict(r=rd["bw"] / 1024, w=wr["bw"] / 1024, mean=mean / 1000, p99r=p99(rd) / 1000, p99w=p99(wr) / 1000))
    return {k: statistics.mean(x[k] for x in rs) for k in rs[0]}, rs
names = {"nofuse": "no-FUSE", "legacy": "blockfuse legacy", "io_uring": "blockfuse io_uring",
         "nostats": "blockfuse io_uring, statistics off", "fusepage": "blockfuse io_uring, fuse-cache=page",
         "passthrough": "blockfuse passthrough", "qemu": "qemu-storage-daemon"}
print(f"### transport bench: image on {imgdir}, randrw 70/30 bs=4k direct={direct} libaio, {runtime}s + {ramp}s ramp, mean of {reps} round(s), every variant mounted at once and run back to back in each round\n")
print(f"load average before: {lb}; after: {la}\n")
print("| iodepth | jobs | variant | read MiB/s | write MiB/s | mean lat µs | p99 read µs | p99 write µs | spread of total MiB/s |")
print("|---:|---:|---|---:|---:|---:|---:|---:|---|")
tot = {}
for qd in (1, 64):
    for j in (1, 4):
        for v in variants:
            m, rs = load(v, qd, j)
            tot[(v, qd, j)] = m["r"] + m["w"]
            spread = f"{min(x['r'] + x['w'] for x in rs):.0f}–{max(x['r'] + x['w'] for x in rs):.0f}"
            print(f"| {qd} | {j} | {names[v]} | {m['r']:.1f} | {m['w']:.1f} | {m['mean']:.0f} | {m['p99r']:.0f} | {m['p99w']:.0f} | {spread} |")
pairs = [(a, b) for a, b in (("io_uring", "legacy"), ("io_uring", "nostats"), ("io_uring", "fusepage"), ("io_uring", "nofuse"), ("passthrough", "nofuse"), ("io_uring", "qemu"),
                             ("legacy", "qemu")) if a in variants and b in variants]
if pairs:
    print("\n| iodepth | jobs | " + " | ".join(f"{names[a]} / {names[b]}" for a, b in pairs) + " |")
    print("|---:|---:|" + "---:|" * len(pairs))
    for qd in (1, 64):
        for j in (1, 4):
            print(f"| {qd} | {j} | " + " | ".join(f"{tot[(a, qd, j)] / tot[(b, qd, j)]:.2f}" if tot[(b, qd, j)] else "-" for a, b in pairs) + " |")
# issue 10's targets: io_uring reads >= a fraction of no-FUSE (1.2 x libfuse's C io_uring) and >= legacy;
# passthrough reads and writes >= 0.9 x no-FUSE
want = {(1, 1): 0.195, (1, 64): 0.476, (4, 1): 0.349, (4, 64): 0.215}
if direct == "1" and "nofuse" in variants and ("io_uring" in variants or "passthrough" in variants):
    # each round ran every variant back to back: the per-round ratios show how far the machine moved
    def rounds(v, qd, j):  # of the read ratio
        b, x = load("nofuse", qd, j)[1], load(v, qd, j)[1]
        rs = [x[i]["r"] / b[i]["r"] for i in range(reps)]
        return f" [rounds {min(rs):.3f}–{max(rs):.3f}]" if reps > 1 else ""
    print("\n| iodepth | jobs | io_uring read / no-FUSE (target) | io_uring read >= legacy | passthrough read, write / no-FUSE (target 0.90) |")
    print("|---:|---:|---|---|---|")
    for qd in (1, 64):
        for j in (1, 4):
            base = load("nofuse", qd, j)[0]
            cells = []
            if "io_uring" in variants:
                u = load("io_uring", qd, j)[0]
                f = u["r"] / base["r"]
                cells.append(f"{f:.3f} ({want[(j, qd)]:.3f}) {'met' if f >= want[(j, qd)] else 'MISSED'}{rounds('io_uring', qd, j)}")
                cells.append(("yes" if u["r"] >= load("legacy", qd, j)[0]["r"] else "NO") if "legacy" in variants else "-")
            else:
                cells += ["-", "-"]
            if "passthrough" in variants:
                pt = load("passthrough", qd, j)[0]
                fr, fw = pt["r"] / base["r"], pt["w"] / base["w"]
                cells.append(f"{fr:.2f}, {fw:.2f} {'met' if min(fr, fw) >= 0.9 else 'MISSED'}{rounds('passthrough', qd, j)}")
            else:
                cells.append("-")
            print(f"| {qd} | {j} | " + " | ".join(cells) + " |")
PY
if [ -n "$OUT" ]; then
  cp "$WORK/table.md" "$OUT.md"
  python3 "$ROOT/bench/chart.py" "$OUT.md" "$OUT.svg" "randrw 70/30 4 KiB $([ "$DIRECT" = 1 ] && echo O_DIRECT || echo buffered), 1 GiB raw image on $IMG_DIR (load $LOAD_BEFORE)"
  echo "wrote $OUT.md and $OUT.svg" >&2
fi
