#!/usr/bin/env bash
# profile-qd1.sh — where does a queue-depth-1 request spend its time? Runs fio randrw 4k O_DIRECT
# (numjobs 1 and 4, iodepth 1) against no FUSE and blockfuse io_uring on a 1 GiB /dev/shm image and
# reports, per request: busy CPU time of the whole machine (from /proc/stat: everything but idle
# and iowait), context switches and CPU migrations (perf stat -a); then the top processes and
# symbols of a system-wide perf record, with one request's CPU split by thread and system call;
# passthrough against no FUSE (CPU per request, and the kernel functions only passthrough runs). Last, the scheduler's floor: what one wake-up round trip
# between two threads costs here (perf bench sched pipe, on one CPU and across CPUs) and the QD 1
# throughput that a FUSE server needing one such round trip per request could reach at best.
# Usage: bench/profile-qd1.sh [--jobs "1 4"] [--seconds 10]. Needs root, perf, fio, Java 17, Maven.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$(dirname "$0")/lib.sh"
JOBS="1 4"; SECONDS_RUN=10
while [ $# -gt 0 ]; do
  case "$1" in --jobs) JOBS=$2; shift ;; --seconds) SECONDS_RUN=$2; shift ;; *) echo "unknown $1" >&2; exit 2 ;; esac
  shift
done
WORK=$(mktemp -d /tmp/profile-qd1.XXXX); IMG=/dev/shm/profile-qd1-$$.raw; MNT=$WORK/mnt.img
cleanup() {
  bench_export_stop server
  grep -q " $MNT " /proc/mounts && umount -l "$MNT" || true
  rm -rf "$WORK" "$IMG"
}
trap cleanup EXIT
echo "load before: $(loadavg)"
CP=$(bench_export_classpath "$WORK")
dd if=/dev/urandom of="$IMG" bs=1M count=1024 status=none
bench_export_start server "$CP" "$WORK" io_uring "$IMG" "$MNT" cache=none
for target in "$IMG" "$MNT"; do
  for jobs in $JOBS; do
    name=$([ "$target" = "$IMG" ] && echo no-FUSE || echo io_uring)
    head -1 /proc/stat > "$WORK/cpu0"
    perf stat -a -x, -e context-switches,cpu-migrations -o "$WORK/stat" -- \
      fio --name=p --filename="$target" --rw=randrw --rwmixread=70 --bs=4k --direct=1 --ioengine=libaio --iodepth=1 \
          --numjobs="$jobs" --size=1G --time_based --runtime="$SECONDS_RUN" --group_reporting --output-format=json \
          --output="$WORK/fio.json" >/dev/null
    head -1 /proc/stat > "$WORK/cpu1"
    python3 - "$WORK/stat" "$WORK/fio.json" "$name" "$jobs" "$WORK/cpu0" "$WORK/cpu1" "$SECONDS_RUN" <<'PY'
import json, os, sys
def busy(path):
    f = [int(x) for x in open(path).read().split()[1:]]
    return sum(f) - f[3] - f[4]  # all but idle and iowait, in clock ticks
ticks = busy(sys.argv[6]) - busy(sys.argv[5])
stat = {"task-clock": ticks * 1000.0 / os.sysconf("SC_CLK_TCK")}
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) > 3 and f[0].replace(".", "").isdigit():
        stat[f[2]] = float(f[0])
j = json.load(open(sys.argv[2]))["jobs"][0]
ios = j["read"]["total_ios"] + j["write"]["total_ios"]
print(f"{sys.argv[3]:9} {sys.argv[4]} job(s): {ios / float(sys.argv[7]):9.0f} IOPS; per request: "
      f"{stat['task-clock']*1000/ios:6.2f} µs of busy CPU (all CPUs), {stat['context-switches']/ios:5.2f} context switches, "
      f"{stat['cpu-migrations']/ios:5.3f} migrations")
open(os.path.dirname(sys.argv[1]) + f"/res-{sys.argv[3]}-{sys.argv[4]}", "w").write(
    f"{ios / float(sys.argv[7])} {stat['task-clock']*1000/ios}\n")
PY
  done
done
LAST=$(echo $JOBS | awk '{print $NF}')
# perf record -a -g over 4 s of a running fio; prints the top processes and symbols, and keeps the
# samples as text in $WORK/$1.txt and fio's IOPS in $WORK/$1.iops
record() { # name target
  fio --name=p --filename="$2" --rw=randrw --rwmixread=70 --bs=4k --direct=1 --ioengine=libaio --iodepth=1 \
      --numjobs="$LAST" --size=1G --time_based --runtime=8 --group_reporting --output-format=json \
      --output="$WORK/$1.json" >/dev/null &
  local fio=$!; sleep 2
  perf record -a -g -o "$WORK/$1.data" -- sleep 4 2>/dev/null >/dev/null
  wait $fio
  python3 -c "import json,sys; j=json.load(open(sys.argv[1]))['jobs'][0]; print(j['read']['iops']+j['write']['iops'])" \
      "$WORK/$1.json" > "$WORK/$1.iops"
  perf script -i "$WORK/$1.data" 2>/dev/null > "$WORK/$1.txt"
}
echo "perf record -a -g, 4 s, io_uring, $LAST job(s):"
record io_uring "$MNT"
perf report -i "$WORK/io_uring.data" --no-children --sort comm,dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed -n 1,12p
perf report -i "$WORK/io_uring.data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed -n 1,25p
# Passthrough against no FUSE, same fio: the kernel serves every read and write through the FUSE
# file to the image, no request reaches blockfuse; what it costs is in the kernel's passthrough layer.
bench_export_stop server
bench_export_start server "$CP" "$WORK" io_uring "$IMG" "$MNT" cache=writeback passthrough=on
record nofuse "$IMG"
record passthrough "$MNT"
# Where one io_uring request's CPU goes: samples by thread and by the system call they were in (or
# user space), in µs per request = share of samples x CPUs / IOPS. The ring threads reach their
# system calls through libc's syscall(), whose kernel frames often lack the __x64_sys_ frame: those
# land in "kernel, no syscall frame" (io_uring_enter, almost all of it, by their leaf symbols).
# Then passthrough against no FUSE: the symbols whose self time grew most.
python3 - "$WORK" "$(nproc)" "$LAST" <<'PY'
import collections, re, sys
work, cpus, jobs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def samples(name):
    """(thread, frames leaf first, in kernel) per sample of perf script, and µs of CPU per request one sample stands for."""
    iops = float(open(f"{work}/{name}.iops").read())
    out = []
    for block in open(f"{work}/{name}.txt").read().split("\n\n"):
        lines = block.strip().split("\n")
        if len(lines) < 2 or lines[0].split()[0] in ("perf", "sleep"):
            continue
        frames = [re.sub(r"\+0x[0-9a-f]+$", "", l.split()[1]) for l in lines[1:] if len(l.split()) > 1]
        out.append((lines[0].split()[0], frames, lines[1].split()[0].startswith("ffffffff")))
    return iops, out, cpus * 1e6 / iops / max(len(out), 1)
def where(frames, kernel):
    if not kernel:
        return "user space"
    for f in frames:
        m = re.match(r"__(?:x64|do)_sys_(\w+)", f)
        if m:
            return m.group(1)
        if f == "do_idle":
            return "idle"
    return "kernel, no syscall frame"
iops, ss, per = samples("io_uring")
count = collections.Counter((thread, where(frames, kernel)) for thread, frames, kernel in ss)
print(f"per request at {iops:.0f} IOPS ({cpus} CPUs): {cpus * 1e6 / iops:.2f} µs in all; by thread and system call:")
for (thread, w), n in count.most_common(12):
    print(f"  {thread:16} {w:26} {per * n:5.2f} µs  ({100 * n / len(ss):4.1f} % of samples)")
def leaves(name):
    iops, ss, per = samples(name)
    return iops, {f: n * per for f, n in collections.Counter(frames[0] for _, frames, _ in ss).items()}
nf_iops, nf = leaves("nofuse")
pt_iops, pt = leaves("passthrough")
print(f"passthrough against no FUSE, {jobs} job(s) x QD 1: {pt_iops:.0f} against {nf_iops:.0f} IOPS ({pt_iops / nf_iops:.3f}); "
      f"{cpus * 1e6 / pt_iops:.2f} against {cpus * 1e6 / nf_iops:.2f} µs of CPU per request")
print("  symbols (self time) that grew most, µs per request, no FUSE -> passthrough:")
grew = sorted(((pt.get(f, 0) - nf.get(f, 0), f) for f in set(pt) | set(nf)), reverse=True)[:12]
for d, f in grew:
    print(f"    {f:36} {nf.get(f, 0):5.2f} -> {pt.get(f, 0):5.2f}  (+{d:.2f})")
PY
pipe_us() { "$@" perf bench sched pipe -l 200000 2>/dev/null | awk '/usecs\/op/ {print $1}'; }
SAME=$(pipe_us taskset -c 0); CROSS=$(pipe_us)
python3 - "$WORK" "$SAME" "$CROSS" "$(nproc)" $JOBS <<'PY'
import os, sys
work, same, cross, cpus = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f"scheduler floor (perf bench sched pipe): one wake-up round trip {same:.2f} µs on one CPU, {cross:.2f} µs across CPUs")
for jobs in sys.argv[5:]:
    path = f"{work}/res-no-FUSE-{jobs}"
    if not os.path.exists(path):
        continue
    iops, cpu_us = (float(x) for x in open(path).read().split())
    n, latency_us = int(jobs), int(jobs) * 1e6 / iops  # a job's no-FUSE latency
    if n >= cpus:  # CPU-bound: every request pays fio's own CPU plus one round trip
        best = cpus * 1e6 / (cpu_us + same)
        how = f"{cpus} CPUs / ({cpu_us:.2f} µs no-FUSE CPU + {same:.2f} µs round trip)"
    else:  # latency-bound: the no-FUSE latency plus one round trip, per job
        best = n * 1e6 / (latency_us + same)
        how = f"{jobs} job(s) / ({latency_us:.2f} µs no-FUSE latency + {same:.2f} µs round trip)"
    print(f"  {jobs} job(s) x QD 1: at best {best:9.0f} IOPS = {best / iops:.3f} of no FUSE  [{how}]")
PY
echo "load after: $(loadavg)"
