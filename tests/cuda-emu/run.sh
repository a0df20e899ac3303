#!/usr/bin/env bash
# Runs the CUDA attention kernels on the host (no GPU needed) against the CPU twin, with the
# emulator in cuda_runtime.h: every thread order and the shared-memory limits of H100, A100,
# sm_86 and a 48 KB device. A few minutes on two cores. From the repository root:
#   tests/cuda-emu/run.sh            all orders and limits
#   tests/cuda-emu/run.sh quick      three shapes, H100 limits
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${EMU_BUILD:-/tmp/mk-cuda-emu}
mkdir -p "$out"
inc=(-I"$root/tests/cuda-emu" -I"$root/kernels/cuda" -I"$root/kernels/include" -I"$root/native/include")
flags=(-O2 -std=c++17 -fopenmp -fno-math-errno -mavx2 -mfma -mf16c)
objs=()
for src in "$root"/kernels/cpu/attention/*.cpp; do
  n=$(basename "$src" .cpp)
  g++ "${flags[@]}" -I"$root/kernels/include" -I"$root/native/include" -c "$src" -o "$out/cpu_${n}_avx2.o"
  g++ "${flags[@]}" -mavx512f -mavx512dq -mavx512bw -mavx512vl -DMK_ISA_AVX512=1 -I"$root/kernels/include" \
    -I"$root/native/include" -c "$src" -o "$out/cpu_${n}_avx512.o"
  objs+=("$out/cpu_${n}_avx2.o" "$out/cpu_${n}_avx512.o")
done
g++ "${flags[@]}" -I"$root/kernels/include" -I"$root/native/include" -c "$root/kernels/cpu/isa.cpp" -o "$out/isa.o"
g++ -O1 -g -std=c++17 -fopenmp -mf16c -Wall -Wno-unknown-pragmas -Wno-unused-function "${inc[@]}" \
  "$root/tests/cuda-emu/attention_emu_test.cpp" "${objs[@]}" "$out/isa.o" \
  -o "$out/attention_emu_test"
export OMP_NUM_THREADS=1
if [ "${1:-}" = quick ]; then
  "$out/attention_emu_test" 2 0 1
  exit
fi
"$out/attention_emu_test" tiles
status=0
for run in "0 0" "1 0" "2 0" "2 1" "2 2" "2 3"; do
  "$out/attention_emu_test" $run || status=1
done
exit $status
