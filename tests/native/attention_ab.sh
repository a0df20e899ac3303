#!/usr/bin/env bash
# Same-minute A/B timing of two versions of the CPU attention kernels (kernels/cpu/attention/*.cpp, or kernels/cpu/attention.cpp before 2026-12-04
# with the kernels/include of the same version), outside Java and JMH. Each version is built
# with the library's flags (AVX2 and AVX-512 objects, as cmake/CMakeLists.txt does) into
# attention_bench.cpp; the cases then run alternately, version after version, ROUNDS times, and
# the minimum, median and maximum per version are printed as a Markdown table. On a shared VM
# only such alternating runs separate a code change from the machine's drift.
#
#   tests/native/attention_ab.sh REV_A REV_B ROUNDS CASE [CASE ...]
#     REV        a git revision, or WORK for the working tree
#     CASE       the arguments of attention_bench: "fwd|bwd|bb|jvp B H N D causal reps", or
#                "lin B H N D mask reps" (linear attention, kernels/cpu/linear_attention.cpp)
#   environment: THREADS (OpenMP threads, default 1), WALL=1 (wall-clock time, default process
#   CPU time), ISA=2 (the AVX2 build), NQ (query rows); OUT=FILE also writes the table there;
#   PEAK=1 also runs tests/native/fma_peak (ymm for ISA=2, else zmm) after every round and adds
#   the medians in GFLOP/s and as a fraction of the median peak; HARNESS=WORK builds both versions
#   with the working tree's attention_bench.cpp (for a revision older than the harness's modes);
#   BITS=1 times nothing: it runs each case once per ISA (AVX2 and AVX-512) in both versions with
#   DUMP and compares the outputs bit for bit (ROUNDS is ignored; reps 1 is enough)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 4 ] || { sed -n '2,14p' "$0"; exit 2; }
rev_a=$1 rev_b=$2 rounds=$3
shift 3
work=$(mktemp -d /tmp/mk-attention-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
flags=(-O3 -std=gnu++17 -mavx2 -mfma -mf16c -fno-math-errno -fno-trapping-math -fopenmp)
avx512=(-mavx512f -mavx512dq -mavx512bw -mavx512vl -DMK_ISA_AVX512=1)

describe() { [ "$1" = WORK ] && echo "working tree" || git -C "$root" rev-parse --short "$1"; }
build() {  # build REV NAME
  local dir=$work/$2
  mkdir -p "$dir"
  # each version with its own harness (the kernels' parameters changed form on 2026-12-04)
  if [ "$1" = WORK ]; then mkdir -p "$dir/tests/native" && cp -r "$root/kernels" "$root/native" "$dir/" &&
    cp "$root/tests/native/attention_bench.cpp" "$dir/tests/native/"
  else git -C "$root" archive "$1" kernels/include kernels/cpu native/include tests/native/attention_bench.cpp |
    tar -x -C "$dir"
    if [ "${HARNESS:-}" = WORK ]; then cp "$root/tests/native/attention_bench.cpp" "$dir/tests/native/"; fi
  fi
  local inc=(-I"$dir/kernels/include" -I"$dir/native/include")
  # one file before 2026-12-04, one file per pass (kernels/cpu/attention/*.cpp) after
  local srcs=("$dir"/kernels/cpu/attention.cpp)
  [ -f "${srcs[0]}" ] || srcs=("$dir"/kernels/cpu/attention/*.cpp)
  # the linear-attention kernel, where the harness has its mode (lin)
  if grep -q '"lin"' "$dir/tests/native/attention_bench.cpp"; then srcs+=("$dir"/kernels/cpu/linear_attention.cpp); fi
  local objs=() i=0
  for src in "${srcs[@]}"; do
    g++ "${flags[@]}" "${inc[@]}" -c "$src" -o "$dir/a2_$i.o" &
    g++ "${flags[@]}" "${avx512[@]}" "${inc[@]}" -c "$src" -o "$dir/a5_$i.o" &
    objs+=("$dir/a2_$i.o" "$dir/a5_$i.o")
    i=$((i + 1))
  done
  g++ "${flags[@]}" "${inc[@]}" -c "$dir/kernels/cpu/isa.cpp" -o "$dir/isa.o" &
  wait
  g++ "${flags[@]}" "${inc[@]}" "$dir/tests/native/attention_bench.cpp" "${objs[@]}" "$dir/isa.o" \
    -o "$dir/bench"
}
build "$rev_a" a
build "$rev_b" b
width=zmm
[ "${ISA:-3}" = 2 ] && width=ymm
[ -n "${PEAK:-}" ] && g++ -O2 "$root/tests/native/fma_peak.cpp" -o "$work/fma_peak"
: > "$work/peak.txt"

threads=${THREADS:-1}
if [ -n "${BITS:-}" ]; then
  table="| case | ISA | $(describe "$rev_a") vs $(describe "$rev_b") |
|---|---|---|"
  for c in "$@"; do
    read -r -a args <<<"$c"
    for isa in 2 3; do
      for v in a b; do
        ISA=$isa DUMP="$work/$v.bin" OMP_NUM_THREADS=$threads "$work/$v/bench" "${args[@]}" > /dev/null
      done
      verdict=$(python3 - "$work/a.bin" "$work/b.bin" <<'PY'
import struct, sys
a, b = (open(f, "rb").read() for f in sys.argv[1:3])
if a == b:
    print("bit for bit identical (%d floats)" % (len(a) // 4))
else:
    x, y = struct.unpack("%df" % (len(a) // 4), a), struct.unpack("%df" % (len(b) // 4), b)
    n = sum(1 for u, v in zip(x, y) if struct.pack("f", u) != struct.pack("f", v))
    scale = max(abs(u) for u in x if u == u and abs(u) != float("inf"))
    err = max(abs(u - v) for u, v in zip(x, y) if u == u and v == v and abs(u) != float("inf"))
    print("%d of %d floats differ, max |a - b| = %.3g (max |a| = %.3g)" % (n, len(x), err, scale))
PY
)
      table+="
| \`$c\` | $isa | $verdict |"
    done
  done
  header="Bitwise comparison of the CPU attention kernels' outputs, $(date -u '+%F %H:%M UTC'), OMP_NUM_THREADS=$threads.
Command: \`BITS=1 ${0#$root/} $rev_a $rev_b $rounds $(printf '"%s" ' "$@")\`"
  printf '%s\n\n%s\n' "$header" "$table"
  if [ -n "${OUT:-}" ]; then printf '%s\n\n%s\n' "$header" "$table" > "$OUT"; fi
  exit 0
fi
table="| case | $(describe "$rev_a") min / median / max (ms) | $(describe "$rev_b") min / median / max (ms) | median b / a |${PEAK:+ GFLOP/s a / b (median) | % of peak a / b |}
|---|---|---|---|${PEAK:+---|---|}"
for c in "$@"; do
  : > "$work/a.txt"
  : > "$work/b.txt"
  for ((i = 0; i < rounds; i++)); do
    for v in a b; do
      read -r -a args <<<"$c"
      OMP_NUM_THREADS=$threads "$work/$v/bench" "${args[@]}" | awk '{print $3, $5}' >> "$work/$v.txt"
    done
    if [ -n "${PEAK:-}" ]; then "$work/fma_peak" $width 0.5 | awk '{print $2}' >> "$work/peak.txt"; fi
  done
  stats() { sort -n "$1" | awk '{x[NR]=$1} END {printf "%.4f %.4f %.4f", x[1], x[int((NR+1)/2)], x[NR]}'; }
  read -r amin amed amax <<<"$(stats "$work/a.txt")"
  read -r bmin bmed bmax <<<"$(stats "$work/b.txt")"
  ratio=$(awk -v a="$amed" -v b="$bmed" 'BEGIN {printf "%.3f", b / a}')
  row="| \`$c\` | $amin / $amed / $amax | $bmin / $bmed / $bmax | $ratio |"
  if [ -n "${PEAK:-}" ]; then
    # GFLOP/s at the median time (the bench's rate of its best repetition, per round)
    rate() { sort -n "$1" | awk '{x[NR]=$2} END {print x[int((NR+1)/2)]}'; }
    ga=$(rate "$work/a.txt") gb=$(rate "$work/b.txt")
    pk=$(sort -n "$work/peak.txt" | awk '{x[NR]=$1} END {print x[int((NR+1)/2)]}')
    row+=" $ga / $gb | $(awk -v a="$ga" -v b="$gb" -v p="$pk" 'BEGIN {printf "%.1f %% / %.1f %%", 100 * a / p, 100 * b / p}') |"
  fi
  table+="
$row"
done
header="A/B of the CPU attention kernels, $(date -u '+%F %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;
$rounds alternating rounds, OMP_NUM_THREADS=$threads, ${WALL:+wall-clock}${WALL:-process CPU} time, ISA ${ISA:-3}${NQ:+, NQ=$NQ}, load before: $(cut -d' ' -f1-3 /proc/loadavg)${PEAK:+;
FMA peak ($width, fma_peak between rounds) min / median / max: $(sort -n "$work/peak.txt" | awk '{x[NR]=$1} END {printf "%.1f / %.1f / %.1f", x[1], x[int((NR+1)/2)], x[NR]}') GFLOP/s}.
Command: \`${0#$root/} $rev_a $rev_b $rounds $(printf '"%s" ' "$@")\`"
printf '%s\n\n%s\n' "$header" "$table"
if [ -n "${OUT:-}" ]; then printf '%s\n\n%s\n' "$header" "$table" > "$OUT"; fi
