#!/usr/bin/env bash
# Registers, spills and shared memory per kernel of kernels/cuda/attention/tensor_core.cu (v1 and
# v2), from ptxas -v for sm_90 and sm_80, plus the dynamic shared memory each launch asks for (the
# layouts' sizes, printed by a host-only program). No GPU needed. From the project root:
#   bash benchmarks/gpu/ptxas_attention.sh > benchmarks/results/ptxas-attention-DATE.txt
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=(-Ikernels/include -Inative/include -Ikernels/cuda)
echo "# ptxas -v for kernels/cuda/attention/tensor_core.cu, $(date -u +%Y-%m-%d), $(nvcc --version | tail -1)"
echo "# command: bash benchmarks/gpu/ptxas_attention.sh (nvcc -std=c++17 -O3 --expt-relaxed-constexpr -Xptxas -v)"
echo "# (git $(git rev-parse --short HEAD)$(git diff --quiet -- kernels || echo ', kernels/ modified'))"
for arch in 90 80; do
  nvcc -std=c++17 -O3 --expt-relaxed-constexpr -arch=sm_$arch -Xptxas -v "${inc[@]}" \
    -c kernels/cuda/attention/tensor_core.cu -o "$tmp/tc.o" > "$tmp/ptxas.txt" 2>&1
  echo
  echo "## sm_$arch: kernel | registers | spill stores/loads (bytes) | stack | static shared"
  python3 - "$tmp/ptxas.txt" <<'PY'
import re, subprocess, sys
lines = open(sys.argv[1]).read().splitlines()
name = None; rows = []; cur = {}
for ln in lines:
    m = re.search(r"Compiling entry function '(\w+)'", ln)
    if m:
        name = subprocess.run(["c++filt", m.group(1)], capture_output=True, text=True).stdout.strip()
        name = re.sub(r"mk::cuda::\(anonymous namespace\)::", "", name)
        name = name.replace("mk::cuda::", "").replace("(mk::AttentionParams, int)", "")
        cur = {"name": name}
        continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", ln)
    if m and name:
        cur.update(stack=m.group(1), st=m.group(2), ld=m.group(3))
    m = re.search(r"Used (\d+) registers.*?(?:(\d+) bytes smem)?", ln)
    if m and name and "Used" in ln:
        cur["regs"] = m.group(1)
        s = re.search(r"(\d+) bytes smem", ln)
        cur["smem"] = s.group(1) if s else "0"
        rows.append(cur); name = None
for r in sorted(rows, key=lambda r: r["name"]):
    if "tc" not in r["name"]: continue
    print(f'{r["name"]} | {r["regs"]} | {r.get("st","0")}/{r.get("ld","0")} | {r.get("stack","0")} | {r["smem"]}')
PY
done
cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/tensor_core.cu"
// tensor_core.cu's dispatch calls the Hopper passes: their definitions, for the link
#include "attention/tensor_core_sm90.cu"
#include "attention/tensor_core_sm90_backward.cu"
using namespace mk::cuda;
int main() {
  printf("\n## dynamic shared memory per block (bytes) and threads per block\n");
  printf("v1 tc_forward_kernel      BF16/F16: DP 64 %zu, 128 %zu, 256 %zu; 128 threads\n", FwdLayout<Bf16, 64>::bytes,
         FwdLayout<Bf16, 128>::bytes, FwdLayout<Bf16, 256>::bytes);
  printf("v1 tc_backward_query      BF16/F16: DP 64 %zu, 128 %zu, 256 %zu; 128 threads\n", BwdQLayout<Bf16, 64>::bytes,
         BwdQLayout<Bf16, 128>::bytes, BwdQLayout<Bf16, 256>::bytes);
  printf("v1 tc_backward_key        BF16/F16: DP 64 %zu, 128 %zu, 256 %zu; 128 threads\n", BwdKvLayout<Bf16, 64>::bytes,
         BwdKvLayout<Bf16, 128>::bytes, BwdKvLayout<Bf16, 256>::bytes);
  printf("v2 tc2_forward (BK 64)    BF16/F16: DP 64 %zu, 128 %zu; 256 threads\n", Fwd2Layout<64, 64>::bytes,
         Fwd2Layout<128, 64>::bytes);
  printf("v2k32 tc2_forward (BK 32) BF16/F16: DP 64 %zu, 128 %zu; 256 threads\n", Fwd2Layout<64, 32>::bytes,
         Fwd2Layout<128, 32>::bytes);
  printf("v2 tc2_backward_query     BF16/F16: DP 64 %zu (BK %d), 128 %zu (BK %d); 256 threads\n",
         Bwd2QLayout<64, Bwd2Config<64>::BK>::bytes, Bwd2Config<64>::BK, Bwd2QLayout<128, Bwd2Config<128>::BK>::bytes,
         Bwd2Config<128>::BK);
  printf("v2 tc2_backward_key       BF16/F16: DP 64 %zu (TQ %d), 128 %zu (TQ %d); 256 threads\n",
         Bwd2KvLayout<64, Bwd2Config<64>::TQ>::bytes, Bwd2Config<64>::TQ, Bwd2KvLayout<128, Bwd2Config<128>::TQ>::bytes,
         Bwd2Config<128>::TQ);
  return 0;
}
CU
# (a failed build says so: its output was hidden until 2026-12-05, when the link had been broken
# since tensor_core.cu first called the Hopper forward)
if nvcc -std=c++17 -O1 --expt-relaxed-constexpr -arch=sm_90 "${inc[@]}" -Ikernels/cuda "$tmp/sizes.cu" -o "$tmp/sizes" \
  > "$tmp/sizes.log" 2>&1; then
  "$tmp/sizes"
else
  echo "sizes program: build failed"; tail -5 "$tmp/sizes.log"; exit 1
fi
