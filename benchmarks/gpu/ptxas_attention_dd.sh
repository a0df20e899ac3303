#!/usr/bin/env bash
# Registers, spills and stack per kernel of kernels/cuda/attention/tensor_core_dd.cu (the 16-bit
# and TF32 tensor-core double backward and JVP), from ptxas -v for sm_90 and sm_80, plus the dynamic shared memory
# each pass asks for. No GPU needed. From the project root:
#   bash benchmarks/gpu/ptxas_attention_dd.sh > benchmarks/results/ptxas-attention-dd-DATE.txt
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=(-Ikernels/include -Inative/include -Ikernels/cuda)
echo "# ptxas -v for kernels/cuda/attention/tensor_core_dd.cu, $(date -u +%Y-%m-%d), $(nvcc --version | tail -1)"
echo "# command: bash benchmarks/gpu/ptxas_attention_dd.sh (nvcc -std=c++17 -O3 --expt-relaxed-constexpr -Xptxas -v)"
echo "# (git $(git rev-parse --short HEAD)$(git diff --quiet -- kernels || echo ', kernels/ modified'))"
for arch in 90 80; do
  nvcc -std=c++17 -O3 --expt-relaxed-constexpr -arch=sm_$arch -Xptxas -v "${inc[@]}" \
    -c kernels/cuda/attention/tensor_core_dd.cu -o "$tmp/dd.o" > "$tmp/ptxas.txt" 2>&1
  echo
  echo "## sm_$arch: kernel | registers | spill stores/loads (bytes) | stack"
  python3 - "$tmp/ptxas.txt" <<'PY'
import re, subprocess, sys
rows = []; cur = None
for ln in open(sys.argv[1]).read().splitlines():
    m = re.search(r"Compiling entry function '(\w+)'", ln)
    if m:
        name = subprocess.run(["c++filt", m.group(1)], capture_output=True, text=True).stdout.strip()
        name = re.sub(r"mk::cuda::\(anonymous namespace\)::", "", name).replace("mk::cuda::", "")
        name = name.replace("(mk::AttentionParams, int)", "")
        name = re.sub(r"\(long, int, .*\)$", "", name)
        cur = {"name": name}
        continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", ln)
    if m and cur:
        cur.update(stack=m.group(1), st=m.group(2), ld=m.group(3))
    m = re.search(r"Used (\d+) registers", ln)
    if m and cur:
        cur["regs"] = m.group(1); rows.append(cur); cur = None
for r in sorted(rows, key=lambda r: r["name"]):
    print(f'{r["name"]} | {r["regs"]} | {r.get("st","0")}/{r.get("ld","0")} | {r.get("stack","0")}')
PY
done
cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/tensor_core_dd.cu"
using namespace mk::cuda;
int main() {
  printf("\n## dynamic shared memory per block (bytes), 128 threads per block\n");
  printf("tc_dd_stats_kernel BF16/F16: DP 64 %zu, 128 %zu\n", DdStatsLayout<Bf16, 64>::bytes, DdStatsLayout<Bf16, 128>::bytes);
  printf("tc_dd_query_kernel BF16/F16: DP 64 %zu, 128 %zu\n", DdQueryLayout<Bf16, 64>::bytes, DdQueryLayout<Bf16, 128>::bytes);
  printf("tc_dd_key_kernel   BF16/F16: DP 64 %zu, 128 %zu\n", DdKeyLayout<Bf16, 64>::bytes, DdKeyLayout<Bf16, 128>::bytes);
  printf("tc_jvp_kernel      BF16/F16: DP 64 %zu, 128 %zu\n", TcJvpLayout<Bf16, 64>::bytes, TcJvpLayout<Bf16, 128>::bytes);
  printf("tc_dd_stats_kernel TF32:     DP 64 %zu, 128 %zu\n", DdStatsLayout<Tf32, 64>::bytes, DdStatsLayout<Tf32, 128>::bytes);
  printf("tc_dd_query_kernel TF32:     DP 64 %zu, 128 %zu\n", DdQueryLayout<Tf32, 64>::bytes, DdQueryLayout<Tf32, 128>::bytes);
  printf("tc_dd_key_kernel   TF32:     DP 64 %zu, 128 %zu\n", DdKeyLayout<Tf32, 64>::bytes, DdKeyLayout<Tf32, 128>::bytes);
  printf("tc_jvp_kernel      TF32:     DP 64 %zu, 128 %zu\n", TcJvpLayout<Tf32, 64>::bytes, TcJvpLayout<Tf32, 128>::bytes);
  printf("(opt-in limits: H100/H200 232448, A100 166912, sm_86 101376; TF32 tiles DP 64: 32 keys/queries, DP 128: 16)\n");
  return 0;
}
CU
nvcc -std=c++17 -O1 --expt-relaxed-constexpr -arch=sm_90 "${inc[@]}" "$tmp/sizes.cu" -o "$tmp/sizes" 2>/dev/null
"$tmp/sizes"
