#!/usr/bin/env bash
# Builds benchmarks/gpu/attention_harness.cu, runs it (the table: every tensor-core attention
# variant timed and checked), then, where Nsight Compute is installed, profiles one call of each
# kernel (v1/v2/v2k32 forward, the v1 and v2 backward passes) on BF16 [4,16,4096,128]: registers,
# occupancy, SM and memory throughput. On the GPU machine, from the project root:
#   bash benchmarks/gpu/attention_profile.sh          (results under ${OUT:-benchmarks/gpu/out})
# About 3 minutes on an H200: ~30 s build, < 2 min table, ~30 s profile. SANITIZE=1 adds
# compute-sanitizer memcheck and racecheck over `attention_harness small` (never timed yet).
set -uo pipefail
cd "$(git rev-parse --show-toplevel 2>/dev/null || pwd)"
out=${OUT:-benchmarks/gpu/out}
mkdir -p "$out"
arch=${ARCH:-sm_90a}  # (sm_90a: the Hopper forward's wgmma and setmaxnreg)
nvcc -std=c++17 -O3 --expt-relaxed-constexpr -arch="$arch" -DMK_CUDA_SM90A=1 -Ikernels/include -Inative/include -Ikernels/cuda \
  benchmarks/gpu/attention_harness.cu -o /tmp/mk-attn-harness || exit 1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$out/attention-device.txt"
timeout 180 /tmp/mk-attn-harness 2>&1 | tee "$out/attention_harness.md"
status=${PIPESTATUS[0]}
if command -v ncu >/dev/null; then
  timeout 240 ncu --clock-control none -k 'regex:tc2?_(forward|backward)' \
    --section LaunchStats --section Occupancy --section SpeedOfLight \
    /tmp/mk-attn-harness profile > "$out/attention_ncu.txt" 2>&1
  grep -E '^\s+(void |  [a-z_]+_kernel)|Registers Per Thread|Theoretical Occupancy|Achieved Occupancy|Compute \(SM\) Throughput|Memory Throughput|Duration|Dynamic Shared Memory Per Block' \
    "$out/attention_ncu.txt" | head -120
else
  echo "no ncu: profile skipped"
fi
if [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 3 /tmp/mk-attn-harness small \
      > "$out/attention_sanitize_$tool.txt" 2>&1
    echo "compute-sanitizer $tool: exit $? ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/attention_sanitize_$tool.txt" | tail -1))"
  done
fi
exit $status
