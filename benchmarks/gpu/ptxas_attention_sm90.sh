#!/usr/bin/env bash
# Registers, spills and shared memory of the Hopper attention forward
# (kernels/cuda/attention/tensor_core_sm90.cu), backward (bwd: tensor_core_sm90_backward.cu, the
# dQ and dK/dV passes) or double backward (dd: tensor_core_sm90_dd.cu, the stats, q', dO', k', v'
# passes; template argument 3 of the kernels: 0 stats, 1 q', 2 dO', 3 k', 4 v') or the F32 3xTF32 forward
# (f32: tensor_core_sm90_f32.cu) from ptxas -v for sm_90a, the ptxas performance notes (C7514 and the like:
# wgmma serialised; C7519: a warpgroup.arrive inserted), the register budgets the kernels set per
# warp role (setmaxnreg) and the dynamic shared memory each launch asks for. No GPU needed. From the
# project root:
#   bash benchmarks/gpu/ptxas_attention_sm90.sh > benchmarks/results/ptxas-attention-sm90-DATE.txt
#   bash benchmarks/gpu/ptxas_attention_sm90.sh bwd > benchmarks/results/ptxas-attention-sm90-bwd-DATE.txt
#   bash benchmarks/gpu/ptxas_attention_sm90.sh dd > benchmarks/results/ptxas-attention-sm90-dd-DATE.txt
#   bash benchmarks/gpu/ptxas_attention_sm90.sh f32 > benchmarks/results/ptxas-attention-sm90-f32-DATE.txt
#   bash benchmarks/gpu/ptxas_attention_sm90.sh f32bwd >> benchmarks/results/ptxas-attention-sm90-f32-DATE.txt
set -euo pipefail
pass=${1:-fwd}
src=kernels/cuda/attention/tensor_core_sm90.cu
[ "$pass" = bwd ] && src=kernels/cuda/attention/tensor_core_sm90_backward.cu
[ "$pass" = dd ] && src=kernels/cuda/attention/tensor_core_sm90_dd.cu
[ "$pass" = f32 ] && src=kernels/cuda/attention/tensor_core_sm90_f32.cu
[ "$pass" = f32bwd ] && src=kernels/cuda/attention/tensor_core_sm90_f32_backward.cu
cd "$(git rev-parse --show-toplevel)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=(-Ikernels/include -Inative/include -Ikernels/cuda)
echo "# ptxas -v for $src, $(date -u +%Y-%m-%d), $(nvcc --version | tail -1)"
echo "# command: bash benchmarks/gpu/ptxas_attention_sm90.sh${1:+ $1} (nvcc -std=c++17 -O3 --expt-relaxed-constexpr"
echo "#   -gencode arch=compute_90a,code=sm_90a -DMK_CUDA_SM90A=1 -Xptxas -v)"
echo "# (git $(git rev-parse --short HEAD)$(git diff --quiet -- kernels || echo ', kernels/ modified'))"
nvcc -std=c++17 -O3 --expt-relaxed-constexpr -gencode arch=compute_90a,code=sm_90a -DMK_CUDA_SM90A=1 -Xptxas -v \
  "${inc[@]}" -c "$src" -o "$tmp/sm90.o" > "$tmp/ptxas.txt" 2>&1
echo
echo "## sm_90a: kernel | registers (at launch) | spill stores/loads (bytes) | stack | static shared"
python3 - "$tmp/ptxas.txt" <<'PY'
import re, subprocess, sys
lines = open(sys.argv[1]).read().splitlines()
name = None; rows = []; cur = {}; notes = []
for ln in lines:
    if "Potential Performance Loss" in ln or "warning" in ln.lower() or "(C75" in ln:
        notes.append(re.sub(r"'_Z\w+'", lambda m: subprocess.run(["c++filt", m.group(0)[1:-1]], capture_output=True,
                     text=True).stdout.strip().replace("mk::cuda::(anonymous namespace)::", ""), ln.strip()))
    m = re.search(r"Compiling entry function '(\w+)'", ln)
    if m:
        name = subprocess.run(["c++filt", m.group(1)], capture_output=True, text=True).stdout.strip()
        name = re.sub(r"mk::cuda::\(anonymous namespace\)::", "", name).replace("mk::cuda::", "")
        name = name.replace("(mk::AttentionParams, Sm90Maps)", "").replace("(mk::AttentionParams, Sm90BwdMaps)", "")
        name = name.replace("(mk::AttentionParams, Sm90DdMaps)", "").replace("(mk::AttentionParams, X3Maps)", "").replace("(mk::AttentionParams, X3DqMaps)", "").replace("(mk::AttentionParams, X3DkvMaps)", "")
        cur = {"name": name}
        continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", ln)
    if m and name:
        cur.update(stack=m.group(1), st=m.group(2), ld=m.group(3))
    if name and "Used" in ln:
        cur["regs"] = re.search(r"Used (\d+) registers", ln).group(1)
        s = re.search(r"(\d+) bytes smem", ln)
        cur["smem"] = s.group(1) if s else "0"
        rows.append(cur); name = None
for r in sorted(rows, key=lambda r: r["name"]):
    print(f'{r["name"]} | {r["regs"]} | {r.get("st","0")}/{r.get("ld","0")} | {r.get("stack","0")} | {r["smem"]}')
print()
print("## ptxas performance notes (none: the wgmma chains stay asynchronous; C7519 is a warpgroup.arrive")
print("## inserted, not a serialisation)")
for n in notes: print(n)
PY
cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/tensor_core_sm90.cu"
using namespace mk::cuda;
int main() {
  printf("\n## launch: %d threads per block (1 producer + %d consumer warpgroups), registers per thread set by "
         "setmaxnreg: producer %d, consumers %d (the launch's 168 = 65536 / 384, rounded down to 8)\n",
         Sm90Traits::kThreads, Sm90Traits::kConsumers, Sm90Traits::kProducerRegs, Sm90Traits::kConsumerRegs);
  printf("## dynamic shared memory per block (bytes; Q, 2 K and 2 V stages of %d keys, mbarriers, 1024 of "
         "alignment slack): D 64 %zu, D 128 %zu\n",
         Sm90Traits::kBlockK, Sm90Layout<64>::bytes, Sm90Layout<128>::bytes);
  return 0;
}
CU
if [ "$pass" = bwd ]; then
cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/tensor_core_sm90.cu"
#include "attention/tensor_core_sm90_backward.cu"
using namespace mk::cuda;
int main() {
  printf("\n## launch (both passes): %d threads per block (1 producer + %d consumer warpgroups), registers per "
         "thread set by setmaxnreg: producer %d, consumers %d (the launch's 168 = 65536 / 384, rounded down to 8)\n",
         Sm90BwdTraits::kThreads, Sm90BwdTraits::kConsumers, Sm90BwdTraits::kProducerRegs,
         Sm90BwdTraits::kConsumerRegs);
  printf("## tiles: dQ pass %d query rows per block, BK keys per K/V tile: D 64 %d, D 128 %d; dK/dV pass %d keys per "
         "block, TQ query rows per Q/dO tile: D 64 %d, D 128 %d\n",
         Sm90BwdTraits::kBlockQ, Sm90BwdConfig<64>::BK, Sm90BwdConfig<128>::BK, Sm90BwdTraits::kBlockKV,
         Sm90BwdConfig<64>::TQ, Sm90BwdConfig<128>::TQ);
  printf("## dynamic shared memory per block (bytes; mbarriers and 1024 of alignment slack included):\n");
  printf("##   dQ pass (Q, dO, 2 K and 2 V stages): D 64 %zu, D 128 %zu\n", Sm90DqLayout<64, Sm90BwdConfig<64>::BK>::bytes,
         Sm90DqLayout<128, Sm90BwdConfig<128>::BK>::bytes);
  printf("##   dK/dV pass (K, V, 2 Q and 2 dO stages, lse and D): D 64 %zu, D 128 %zu\n",
         Sm90DkvLayout<64, Sm90BwdConfig<64>::TQ>::bytes, Sm90DkvLayout<128, Sm90BwdConfig<128>::TQ>::bytes);
  return 0;
}
CU
fi
if [ "$pass" = dd ]; then
cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/tensor_core_sm90.cu"
#include "attention/tensor_core_sm90_dd.cu"
using namespace mk::cuda;
int main() {
  printf("\n## launch (every pass): %d threads per block (1 producer + %d consumer warpgroups), registers per "
         "thread set by setmaxnreg: producer %d, consumers %d (the launch's 168 = 65536 / 384, rounded down to 8)\n",
         Sm90DdTraits::kThreads, Sm90DdTraits::kConsumers, Sm90DdTraits::kProducerRegs, Sm90DdTraits::kConsumerRegs);
  printf("## tiles: %d query rows (stats, q', dO') or keys (k', v') per block, ring tiles of %d keys or rows\n",
         Sm90DdTraits::kBlock, Sm90DdTraits::kTile);
  printf("## dynamic shared memory per block (bytes; mbarriers and 1024 of alignment slack included):\n");
  printf("##   query side (Q, gQ, dO; 2 stages of K, gK, V, gV): D 64 %zu, D 128 %zu\n", Sm90DdQueryLayout<64>::bytes,
         Sm90DdQueryLayout<128>::bytes);
  printf("##   key side (K, gK, V, gV; 2 stages of Q, gQ, dO and lse, D, C): D 64 %zu, D 128 %zu\n",
         Sm90DdKeyLayout<64>::bytes, Sm90DdKeyLayout<128>::bytes);
  return 0;
}
CU
fi
if [ "$pass" = f32bwd ]; then
cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/tensor_core_sm90.cu"
#include "attention/tensor_core_sm90_f32.cu"
#include "attention/tensor_core_sm90_f32_backward.cu"
using namespace mk::cuda;
int main() {
  printf("\n## launch (both passes): %d threads per block (1 producer + 1 consumer warpgroup), %d rows (dQ) or "
         "keys (dK/dV) per block, tiles of %d keys (dQ) or rows (dK/dV)\n", X3bTraits::kThreads, X3bTraits::kRows,
         X3bTraits::kTile);
  printf("## dynamic shared memory per block (bytes): dQ pass D 64 %zu, D 128 %zu; dK/dV pass D 64 %zu, D 128 %zu\n",
         X3DqLayout<64>::bytes, X3DqLayout<128>::bytes, X3DkvLayout<64>::bytes, X3DkvLayout<128>::bytes);
  return 0;
}
CU
fi
if [ "$pass" = f32 ]; then
cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/tensor_core_sm90.cu"
#include "attention/tensor_core_sm90_f32.cu"
using namespace mk::cuda;
int main() {
  printf("\n## launch: %d threads per block (1 producer + 1 consumer warpgroup, no setmaxnreg), %d query rows, "
         "K/V tiles of %d keys\n", X3Traits::kThreads, X3Traits::kBlockQ, X3Traits::kBlockK);
  printf("## dynamic shared memory per block (bytes; Q hi/lo, K hi/lo, V hi/lo transposed, one landing tile, "
         "mbarriers, 1024 of alignment slack): D 64 %zu, D 128 %zu\n", X3Layout<64>::bytes, X3Layout<128>::bytes);
  return 0;
}
CU
fi
nvcc -std=c++17 -O1 --expt-relaxed-constexpr -arch=sm_90a "${inc[@]}" "$tmp/sizes.cu" -o "$tmp/sizes" 2>/dev/null
"$tmp/sizes"
