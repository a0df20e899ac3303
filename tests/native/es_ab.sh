#!/usr/bin/env bash
# Same-minute A/B timing of two versions of the CPU ES kernels (kernels/cpu/meta_es.cpp with the
# kernels/include of the same version) through tests/native/es_bench.cpp (the working tree's), built
# with the library's flags (-ffp-contract=off; AVX2 and, where the file is MK_MULTI_ISA, AVX-512
# objects) and run alternately, version after version, ROUNDS times; prints each run's line.
#   tests/native/es_ab.sh REV_A REV_B ROUNDS "MODE PAIRS N REPS [ISA]" ...
#     REV   a git revision, or WORK for the working tree
#   environment: OMP_NUM_THREADS as usual
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 4 ] || { sed -n '2,9p' "$0"; exit 2; }
rev_a=$1 rev_b=$2 rounds=$3
shift 3
work=$(mktemp -d /tmp/mk-es-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
flags=(-O3 -std=gnu++17 -mavx2 -mfma -mf16c -fno-math-errno -fno-trapping-math -fopenmp -ffp-contract=off)
avx512=(-mavx512f -mavx512dq -mavx512bw -mavx512vl -DMK_ISA_AVX512=1)
build() {  # build REV NAME
  local dir=$work/$2
  mkdir -p "$dir"
  if [ "$1" = WORK ]; then cp -r "$root/kernels" "$root/native" "$dir/"
  else git -C "$root" archive "$1" kernels/include kernels/cpu native/include | tar -x -C "$dir"; fi
  local objs=()
  for src in meta_es isa; do
    g++ "${flags[@]}" -I"$dir/kernels/include" -I"$dir/native/include" -c "$dir/kernels/cpu/$src.cpp" -o "$dir/$src.o"
    objs+=("$dir/$src.o")
  done
  if grep -q MK_MULTI_ISA "$dir/kernels/cpu/meta_es.cpp"; then
    g++ "${flags[@]}" "${avx512[@]}" -I"$dir/kernels/include" -I"$dir/native/include" -c "$dir/kernels/cpu/meta_es.cpp" \
      -o "$dir/meta_es512.o"
    objs+=("$dir/meta_es512.o")
  fi
  g++ "${flags[@]}" -I"$dir/kernels/include" -I"$dir/native/include" "$root/tests/native/es_bench.cpp" "${objs[@]}" \
    -o "$dir/es_bench"
}
build "$rev_a" a
build "$rev_b" b
echo "A = $rev_a, B = $rev_b, $(nproc) cores, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, $(date -u)"
for ((r = 1; r <= rounds; r++)); do
  for c in "$@"; do
    # shellcheck disable=SC2086
    echo "A $("$work/a/es_bench" $c)"
    # shellcheck disable=SC2086
    echo "B $("$work/b/es_bench" $c)"
  done
done
