# Shared by the bench scripts: start the blockfuse distribution once, add/remove exports through
# bin/client, stop it by PID; or start and stop Karaf-less BenchExport servers (bench_export_*).
# Source it; call bf_start first and bf_stop on exit.
BF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BF_HOME=""
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"

# Unpacks the built distribution into $1 (a work folder) with private ports, no demo export, and starts it.
bf_start() {
  local work=$1 tarball
  tarball=$(ls "$BF_ROOT"/karaf-dist/target/blockfuse-dist-*.tar.gz 2>/dev/null | head -1)
  [ -n "$tarball" ] || { echo "build first: mvn -B -q -DskipTests install" >&2; return 1; }
  tar xzf "$tarball" -C "$work"
  BF_HOME=$(ls -d "$work"/blockfuse-dist-*)
  rm -f "$BF_HOME/etc/org.blockfuse.export-demo.cfg"
  sed -i "s/^sshPort = .*/sshPort = ${BF_SSH_PORT:-8121}/" "$BF_HOME/etc/org.apache.karaf.shell.cfg"
  sed -i "s/^rmiRegistryPort = .*/rmiRegistryPort = 1121/; s/^rmiServerPort = .*/rmiServerPort = 44421/" \
    "$BF_HOME/etc/org.apache.karaf.management.cfg"
  (cd "$BF_HOME" && bin/start </dev/null)
  bf_client "blockfuse:transport-list" >/dev/null
}

bf_client() {
  echo "$1" | "$BF_HOME/bin/client" -b -a "${BF_SSH_PORT:-8121}" -r 90 -d 1
}

# bf_export [export-add options...] NAME IMAGE MOUNTPOINT
bf_export() {
  local out
  out=$(bf_client "blockfuse:export-add $*" 2>&1) || { echo "$out" >&2; return 1; }
  if grep -q "Error executing" <<<"$out"; then echo "$out" >&2; return 1; fi
}

bf_unexport() {
  bf_client "blockfuse:export-remove $1" >/dev/null
}

bf_stop() {
  [ -n "$BF_HOME" ] && [ -f "$BF_HOME/karaf.pid" ] || return 0
  local pid
  pid=$(cat "$BF_HOME/karaf.pid")
  (cd "$BF_HOME" && bin/stop) >/dev/null 2>&1 || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
}

# Runs fio (pass its options; --group_reporting is added) and prints
# "readMiB/s writeMiB/s readMeanUs readP99Us writeMeanUs writeP99Us".
bf_fio() {
  fio --output-format=json --group_reporting "$@" | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
def side(s):
    d = j[s]
    p99 = d["clat_ns"].get("percentile", {}).get("99.000000", 0) / 1000
    return d["bw"] / 1024, d["lat_ns"]["mean"] / 1000, p99
r, w = side("read"), side("write")
print("%.1f %.1f %.1f %.1f %.1f %.1f" % (r[0], w[0], r[1], r[2], w[1], w[2]))'
}

# Builds bundles/transport-uring's test classes (offline, under the shared Maven lock) and prints the
# classpath that runs org.blockfuse.uring.BenchExport, the Karaf-less export server of the benches.
bench_export_classpath() {
  local work=$1
  (cd "$BF_ROOT" && flock /tmp/mvn.lock mvn -B -o -q -pl bundles/transport-uring test-compile \
      dependency:build-classpath -Dmdep.outputFile="$work/cp.txt" -Dmdep.includeScope=test >&2) \
      || { echo "building the bench classpath failed (offline: run 'mvn dependency:build-classpath' once online)" >&2; return 1; }
  [ -s "$work/cp.txt" ] || { echo "no classpath in $work/cp.txt" >&2; return 1; }
  echo "$BF_ROOT/bundles/transport-uring/target/test-classes:$BF_ROOT/bundles/transport-uring/target/classes:$(cat "$work/cp.txt")"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# BenchExport servers by name, for the benches that run one or several: PID and control fd of each.
# A server serves until its stdin (a fifo held open by this shell) closes, then unmounts and exits.
declare -A BX_PID BX_FD

# Closes every server's control fifo in the calling (child) process: a server or any other long-lived
# child that inherited another server's fifo would keep that one from seeing its stdin close.
bench_export_close_fds() {
  local f
  for f in "${BX_FD[@]}"; do eval "exec $f>&-"; done
}

# bench_export_start NAME CLASSPATH DIR TRANSPORT IMAGE MOUNTPOINT [key=value...]
# Starts BenchExport with DIR/NAME.out and DIR/NAME.err, and waits for its READY line (30 s at most).
bench_export_start() {
  local name=$1 cp=$2 dir=$3 fd; shift 3
  touch "$3"
  rm -f "$dir/ctl-$name"; mkfifo "$dir/ctl-$name"
  (bench_export_close_fds; exec java -Xmx512m -cp "$cp" org.blockfuse.uring.BenchExport "$@" \
      < "$dir/ctl-$name" > "$dir/$name.out" 2> "$dir/$name.err") &
  BX_PID[$name]=$!
  exec {fd}> "$dir/ctl-$name"
  BX_FD[$name]=$fd
  for _ in $(seq 1 300); do
    grep -q '^READY' "$dir/$name.out" 2>/dev/null && return 0
    kill -0 "${BX_PID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "BenchExport $name did not start:" >&2; cat "$dir/$name.err" >&2
  return 1
}

# bench_export_stop NAME: closes its stdin and waits 15 s for it to unmount and exit; then TERM, KILL.
bench_export_stop() {
  local name=$1 pid=${BX_PID[$1]:-}
  [ -n "$pid" ] || return 0
  eval "exec ${BX_FD[$name]}>&-" 2>/dev/null || true
  unset "BX_FD[$name]"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "BenchExport $name ($pid) did not stop; sending TERM" >&2
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "BX_PID[$name]"
}
