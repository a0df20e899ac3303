#!/usr/bin/env bash
# Interleaved A/B of the GAT forward + backward between two benchmarks jars (see GatBackwardAB.java):
#   benchmarks/ab/gat_backward_ab.sh JAR_A JAR_B EDGES HxF [BLOCKS [ROUNDS]]
# Alternates A and B BLOCKS times (a fresh JVM each), ROUNDS timed calls each after 2 warm ones.
set -euo pipefail
a=$1 b=$2 edges=$3 shape=$4 blocks=${5:-4} rounds=${6:-5}
src="$(cd "$(dirname "$0")" && pwd)/GatBackwardAB.java"
threads=${THREADS:-2}
echo "# $(date -u '+%F %T UTC'); load $(cut -d' ' -f1-3 /proc/loadavg); threads $threads"
for i in $(seq 1 "$blocks"); do
  for side in A B; do
    jar=$a; [ "$side" = B ] && jar=$b
    printf '%s block %d: ' "$side" "$i"
    java -Dmetakernels.threads="$threads" -cp "$jar" "$src" "$edges" "$shape" "$rounds" 2 2>&1 | grep gatForwardBackward
  done
done
echo "# load after $(cut -d' ' -f1-3 /proc/loadavg)"
