#!/usr/bin/env bash
# Checks mk/vec_math.h (the vectorised exp, log, tanh, sigmoid, gelu of the CPU elementwise
# kernels, and the attention softmax's exp_nonpos) against long double libm, for AVX2 and
# (where the CPU has it) AVX-512 builds, and that every loop over them vectorises. These are the
# ctest tests vec_math.* of cmake/tests.cmake, part of `mvn verify`; this script runs them alone,
# built by CMake with the library's flags. About ten seconds. From the repository root:
#   tests/native/run.sh            accuracy, special values, vectorisation
#   tests/native/run.sh time       the same, plus ns/element of vec_math against std::
#   tests/native/run.sh bench DIR  ns/element of the library's unary ops through the C ABI, with
#                                  DIR a CMake build folder of cmake/ (e.g. java/target/native)
# NATIVE_TEST_BUILD: the CMake build folder (default /tmp/mk-native-test, configured CPU-only
# when new; an existing one, java/target/native for instance, is used as it is configured).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${NATIVE_TEST_BUILD:-/tmp/mk-native-test}
if [ "${1:-}" = bench ]; then
  lib=$(cd "${2:?bench needs the CMake build folder holding libmetakernels.so}" && pwd)
  mkdir -p "$out"
  g++ -O2 -std=c++17 -I"$root/native/include" "$root/tests/native/bench_elementwise.cpp" \
    -L"$lib" -lmetakernels -Wl,-rpath,"$lib" -o "$out/bench_elementwise"
  "$out/bench_elementwise" "${3:-1}"
  exit
fi
new=()
[ -f "$out/CMakeCache.txt" ] || new=(-DMK_DISABLE_CUDA=ON)
cmake -S "$root/cmake" -B "$out" "${new[@]}" >/dev/null
if [ "${1:-}" != time ]; then
  exec ctest --test-dir "$out" -L vec_math --output-on-failure
fi
# time: the vectorisation checks through ctest, then each build with --time (its checks too)
ctest --test-dir "$out" -R '^vec_math\.vectorised' --output-on-failure
status=0
"$out/vec_math_test_avx2" --time || status=1
if grep -qw avx512f /proc/cpuinfo; then "$out/vec_math_test_avx512" --time || status=1
else echo "(no AVX-512 here: not run)"; fi
exit $status
