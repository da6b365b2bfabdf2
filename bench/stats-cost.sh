#!/usr/bin/env bash
# stats-cost.sh — nanoseconds one request's statistics cost a transport thread (bench/java/StatsCost.java),
# with 1 and 2 threads recording into one export at once. Needs the built fuse and native bundles.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
CP="$ROOT/bundles/fuse/target/classes:$ROOT/bundles/api/target/classes:$ROOT/bundles/native/target/classes"
CP="$CP:$(ls ~/.m2/repository/org/hdrhistogram/HdrHistogram/*/HdrHistogram-*.jar | tail -1)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$JAVA_HOME/bin/java" -cp "$CP" "$ROOT/bench/java/StatsCost.java"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
