#!/usr/bin/env bash
# Same-minute JMH A/B of two builds of the benchmarks (e.g. main before and after a change):
# runs JAR_A and JAR_B alternately ROUNDS times with the same JMH arguments and keeps each run's
# JSON and log in OUT_DIR (default /tmp/jmh-ab), printing the 1-minute load after every run. Build
# the old jar in a worktree: `git worktree add /tmp/old REV && (cd /tmp/old && mvn -B -q package
# -DskipTests -Dnative.disable.cuda=ON)`.
#   benchmarks/jmh_ab.sh JAR_A JAR_B ROUNDS JMH_ARGS...
# e.g. benchmarks/jmh_ab.sh /tmp/old/benchmarks/target/benchmarks.jar benchmarks/target/benchmarks.jar 3 \
#   '^org.metakernels.bench.AttentionBench\.(forward|forwardBackward|doubleBackward)$' -p vendor=metakernels \
#   -p shape=1x8x1024x64 -p causal=false,true -f 1 -wi 2 -i 4 -w 1s -r 1s
# environment: THREADS (CPU threads, default nproc), OUT_DIR
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,13p' "$0"; exit 2; }
jar_a=$1 jar_b=$2 rounds=$3
shift 3
out=${OUT_DIR:-/tmp/jmh-ab}
mkdir -p "$out"
for ((round = 1; round <= rounds; round++)); do
  for v in a b; do
    jar=$([ $v = a ] && echo "$jar_a" || echo "$jar_b")
    java -Dmetakernels.threads="${THREADS:-$(nproc)}" -jar "$jar" "$@" -rf json -rff "$out/$v-$round.json" \
      > "$out/$v-$round.txt" 2>&1
    echo "$v round $round done $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
