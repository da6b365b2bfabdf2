# Shared by the bench scripts: start the blockfuse distribution once, add/remove exports through
# bin/client, stop it by PID. Source it; call bf_start first and bf_stop on exit.
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
