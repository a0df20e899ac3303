#!/usr/bin/env bash
# Runs the CPU JMH benchmarks (metakernels vs libtorch) and records the results:
#   benchmarks/results/cpu-DATE.json  JMH's JSON
#   benchmarks/results/cpu-DATE.txt   the console log, with the run's facts at the top
#   benchmarks/results/cpu-DATE.md    the report, generated from those two by report.py
#
# usage: benchmarks/run.sh [INCLUDE_REGEX ...] [-- MORE_JMH_ARGS ...]
#   INCLUDE_REGEX  JMH include patterns (default: the four CPU benchmark classes)
# environment:
#   JMH_OPTS    iteration settings (default "-f 1 -wi 3 -i 5 -w 1s -r 2s")
#   THREADS     CPU threads for metakernels and libtorch alike (default: nproc)
#   BUILD=1     rebuild first (mvn install -DskipTests); also done when the jar is missing
#   WAIT_QUIET=1  wait until the 1-minute load average is below QUIET_LOAD (0.5) before
#               starting, at most WAIT_MAX seconds (7200); the report says how it went
#   NAME        results name (default cpu-$(date +%F)); OUT_DIR (default benchmarks/results)
#   ISA=avx2    measure the AVX2 paths on an AVX-512 machine, every library alike: metakernels
#               (-Dmetakernels.isa=avx2), libtorch (ATEN_CPU_CAPABILITY=avx2) and their shared
#               OpenBLAS (OPENBLAS_CORETYPE=Haswell), as on a CPU without AVX-512
#   NATIVE_FROM=DIR  load metakernels' native library from DIR/libmetakernels.so instead of the
#               jar's (a before/after A/B of a kernel change with the same Java code: build the
#               old library with cmake into DIR); the header names it
#   PEER_ENV=keep  keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the environment; by default
#               they are unset for the run (some machines here set them, and they slow current
#               OpenBLAS builds: the peers run as a user's machine would run them), and the
#               header says what was found and what ran
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
invocation="benchmarks/run.sh $*"
for v in JMH_OPTS THREADS BUILD WAIT_QUIET QUIET_LOAD WAIT_MAX NAME ISA PEER_ENV; do
  [[ -n "${!v:-}" ]] && invocation="$v=\"${!v}\" $invocation"
done

includes=()
extra=()
while (($#)); do
  if [[ $1 == -- ]]; then shift; extra=("$@"); break; fi
  includes+=("$1"); shift
done
((${#includes[@]})) || includes=('^org\.metakernels\.bench\.(Dense|Attention|SmallAttention|LinearAttention)Bench\.')

jar=benchmarks/target/benchmarks.jar
if [[ ${BUILD:-0} == 1 || ! -f $jar ]]; then
  mvn -B -q install -DskipTests
fi

threads=${THREADS:-$(nproc)}
read -r -a jmh_opts <<<"${JMH_OPTS:--f 1 -wi 3 -i 5 -w 1s -r 2s}"
out_dir=${OUT_DIR:-benchmarks/results}
mkdir -p "$out_dir"
name=${NAME:-cpu-$(date +%F)}
json=$out_dir/$name.json
txt=$out_dir/$name.txt
md=$out_dir/$name.md
jvm_args="-Dmetakernels.threads=$threads"

# the peers' environment: what was found, what the run uses
found_env=$(env | grep -E '^(OPENBLAS|OMP|GOMP|KMP|MKL|ATEN|DNNL|ONEDNN|MK|THP)_' | sort | paste -sd ' ' || true)
[[ -n $found_env ]] || found_env="(none)"
if [[ ${PEER_ENV:-} != keep ]]; then
  unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
  peer_env="OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (PEER_ENV=keep keeps them)"
else
  peer_env="kept as found (PEER_ENV=keep)"
fi
isa=${ISA:-auto}
case $isa in
  auto) ;;
  avx2)
    jvm_args="$jvm_args -Dmetakernels.isa=avx2"
    export ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell
    peer_env="$peer_env; ISA=avx2: ATEN_CPU_CAPABILITY=avx2, OPENBLAS_CORETYPE=Haswell, -Dmetakernels.isa=avx2"
    ;;
  *) echo "ISA must be auto or avx2, got '$isa'" >&2; exit 2 ;;
esac

load() { cut -d' ' -f1-3 /proc/loadavg; }
quiet="not asked (WAIT_QUIET unset)"
if [[ ${WAIT_QUIET:-0} == 1 ]]; then
  limit=${QUIET_LOAD:-0.5}
  max=${WAIT_MAX:-7200}
  start=$(date +%s)
  echo "waiting for the 1-minute load average to drop below $limit (now $(load); at most ${max}s)"
  while :; do
    l1=$(cut -d' ' -f1 /proc/loadavg)
    waited=$(($(date +%s) - start))
    if awk -v a="$l1" -v b="$limit" 'BEGIN { exit !(a < b) }'; then
      quiet="waited ${waited}s for load < $limit"
      break
    fi
    if ((waited >= max)); then
      quiet="gave up after ${waited}s: load still $l1 (limit $limit)"
      break
    fi
    sleep 15
  done
  echo "$quiet"
fi

launch=(-jar "$jar")
native_from="the jar's"
if [ -n "${NATIVE_FROM:-}" ]; then
  # a class-path directory ahead of the jar holding the library where the loader looks for it
  override=$(mktemp -d)
  mkdir -p "$override/org/metakernels/runtime/linux-x86_64"
  cp "$NATIVE_FROM/libmetakernels.so" "$override/org/metakernels/runtime/linux-x86_64/"
  launch=(-cp "$override:$jar" org.openjdk.jmh.Main)
  native_from="$NATIVE_FROM/libmetakernels.so ($(sha256sum "$NATIVE_FROM/libmetakernels.so" | cut -c1-12))"
fi
cmd=(java "${launch[@]}" "${includes[@]}" "${jmh_opts[@]}" -jvmArgsAppend "$jvm_args"
     -rf json -rff "$json" "${extra[@]}")
envinfo=$(java $jvm_args -cp "$jar" org.metakernels.bench.Env 2>/dev/null || true)
field() { sed -n "s/^$1: //p" <<<"$envinfo" | paste -sd ';' | sed 's/;/; /g'; }
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- . ':!benchmarks/results' 2>/dev/null || commit="$commit (with uncommitted changes)"
{
  echo "# run.sh date: $(date '+%F %T %Z')"
  echo "# run.sh machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "# run.sh cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512bw|avx512vl|avx512dq|avx512_bf16|avx512_fp16|amx_tile|f16c)$' | paste -sd ' ')"
  echo "# run.sh environment found: $found_env"
  echo "# run.sh peer environment: $peer_env"
  echo "# run.sh environment used: $(field env)"
  echo "# run.sh openblas: $(field openblas)"
  echo "# run.sh libtorch onednn: $(field libtorch.onednn)"
  echo "# run.sh cores: $(nproc) online ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
  echo "# run.sh memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "# run.sh git commit: $commit"
  echo "# run.sh command: $invocation"
  echo "# run.sh jmh command: ${cmd[*]}"
  echo "# run.sh jdk: $(java -version 2>&1 | head -1)"
  echo "# run.sh metakernels threads: $(field metakernels.threads) (-Dmetakernels.threads=$threads)"
  echo "# run.sh libtorch threads: $(field libtorch.threads) (torch::set_num_threads to match; $(field libtorch.parallel)); OpenBLAS, shared by both: 1 thread in metakernels forks (its own setting), for libtorch the faster of 1 and $threads per benchmark (see the notes)"
  echo "# run.sh libtorch: org.bytedeco:pytorch $(field libtorch.version)"
  echo "# run.sh libtorch config: $(field libtorch.config)"
  echo "# run.sh metakernels backend: $(field metakernels.isa), matmul $(field metakernels.blas), CUDA $(field metakernels.cuda)"
  echo "# run.sh metakernels native library: $native_from"
  echo "# run.sh quiet wait: $quiet"
  echo "# run.sh load before: $(load)"
} >"$txt"
cat "$txt"

set +e
"${cmd[@]}" 2>&1 | tee -a "$txt"
status=${PIPESTATUS[0]}
set -e
echo "# run.sh load after: $(load)" >>"$txt"
echo "# run.sh jmh exit status: $status" >>"$txt"

if [[ -f $json ]]; then
  python3 benchmarks/report.py "$json" "$txt" >"$md"
  echo "wrote $json, $txt, $md"
else
  echo "no JSON written ($json); see $txt" >&2
fi
exit "$status"
