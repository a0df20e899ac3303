#!/usr/bin/env bash
# Runs the CUDA attention and graph kernels on the host (no GPU needed) against the CPU twin, with the
# emulator in cuda_runtime.h: every thread order and the shared-memory limits of H100, A100,
# sm_86 and a 48 KB device. These are the ctest tests emu.* of cmake/tests.cmake, part of
# `mvn verify` but for those labelled long; this script runs them alone, built by CMake (the CPU
# twin is the library's own objects, built the first time). About four minutes on two cores. From
# the repository root:
#   tests/cuda-emu/run.sh            the tile table, then all orders and limits, the long ones
#                                    too (ctest -L emu -LE harness)
#   tests/cuda-emu/run.sh quick      three shapes, shuffled threads, H100 limits
#   tests/cuda-emu/run.sh harness    the standalone GPU harnesses (benchmarks/gpu/*_harness.cu) in
#                                    their tiny modes, then the attention one's small (~4 min)
# NATIVE_TEST_BUILD (or EMU_BUILD): the CMake build folder (default /tmp/mk-native-test,
# configured CPU-only when new; an existing one is used as it is configured). JOBS: parallel
# runs (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${EMU_BUILD:-${NATIVE_TEST_BUILD:-/tmp/mk-native-test}}
new=()
[ -f "$out/CMakeCache.txt" ] || new=(-DMK_DISABLE_CUDA=ON)
cmake -S "$root/cmake" -B "$out" "${new[@]}" >/dev/null
if [ "${1:-}" = quick ]; then
  cmake --build "$out" --target mk_emu_tests --parallel 2 >/dev/null
  OMP_NUM_THREADS=1 exec "$out/attention_emu_test" 2 0 1
fi
if [ "${1:-}" = harness ]; then
  cmake --build "$out" --target mk_harness_tests --parallel 2 >/dev/null
  exec ctest --test-dir "$out" -L harness -FS mk_build_harness --output-on-failure -j"${JOBS:-2}"
fi
cmake --build "$out" --target mk_emu_tests --parallel 2 >/dev/null
"$out/attention_emu_test" tiles
exec ctest --test-dir "$out" -L emu -LE harness -FS mk_build_emu --output-on-failure -j"${JOBS:-2}"
