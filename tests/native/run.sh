#!/usr/bin/env bash
# Checks mk/vec_math.h (the vectorised exp, log, tanh, sigmoid, gelu of the CPU elementwise
# kernels, and the attention softmax's exp_nonpos) against long double libm, for AVX2 and
# (where the CPU has it) AVX-512 builds, and that every loop over them vectorises. Not part of
# `mvn verify`; about a minute. From the repository root:
#   tests/native/run.sh            accuracy, special values, vectorisation
#   tests/native/run.sh time       the same, plus ns/element of vec_math against std::
#   tests/native/run.sh bench DIR  ns/element of the library's unary ops through the C ABI, with
#                                  DIR a CMake build folder of cmake/ (e.g. java/target/native)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${NATIVE_TEST_BUILD:-/tmp/mk-native-test}
mkdir -p "$out"
if [ "${1:-}" = bench ]; then
  lib=$(cd "${2:?bench needs the CMake build folder holding libmetakernels.so}" && pwd)
  g++ -O2 -std=c++17 -I"$root/native/include" "$root/tests/native/bench_elementwise.cpp" \
    -L"$lib" -lmetakernels -Wl,-rpath,"$lib" -o "$out/bench_elementwise"
  "$out/bench_elementwise" "${3:-1}"
  exit
fi
# the flags of cmake/CMakeLists.txt (MK_BASE_FLAGS), -O3 and gnu++17 (FMA contraction as built)
flags=(-O3 -std=gnu++17 -mavx2 -mfma -mf16c -fno-math-errno -fno-trapping-math -fopenmp-simd -I"$root/kernels/include" -I"$root/native/include")
avx512=(-mavx512f -mavx512dq -mavx512bw -mavx512vl -DMK_ISA_AVX512=1)
status=0
for isa in avx2 avx512; do
  extra=()
  [ $isa = avx512 ] && extra=("${avx512[@]}")
  g++ "${flags[@]}" "${extra[@]}" "$root/tests/native/vec_math_test.cpp" -o "$out/vec_math_test_$isa" \
    -fopt-info-vec-optimized 2> "$out/vec_$isa.txt"
  # the six run_vec loops (float and double each) must vectorise at the full width
  width=$([ $isa = avx512 ] && echo 64 || echo 32)
  n=$(grep -c "vec_math_test.cpp:.*loop vectorized using $width byte vectors" "$out/vec_$isa.txt" || true)
  if [ "$n" -lt 12 ]; then echo "FAIL $isa: $n of 12 loops vectorised at $width bytes"; status=1;
  else echo "$isa: all 12 loops vectorised at $width bytes"; fi
  if [ $isa = avx512 ] && ! grep -q avx512f /proc/cpuinfo; then echo "(no AVX-512 here: not run)"; continue; fi
  "$out/vec_math_test_$isa" ${1:+--$1} || status=1
done
exit $status
