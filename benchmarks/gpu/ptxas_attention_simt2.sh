#!/usr/bin/env bash
# Registers, spills and stack per kernel of the SIMT softmax attention from ptxas -v for sm_90 and
# sm_80, plus the dynamic shared memory of the v2 launches (the same layout code as the launchers,
# printed by a host-only program) and the v1 tiles (pick_tiles; attention_emu_test's tile table
# has them per device). No GPU needed. From the project root:
#   bash benchmarks/gpu/ptxas_attention_simt2.sh [fb|dd]
#   fb (default)  forward and backward: v1 (forward.cu, backward.cu over simt.cuh) beside v2 (simt2.cu)
#                   bash benchmarks/gpu/ptxas_attention_simt2.sh > benchmarks/results/ptxas-attention-simt2-DATE.txt
#   dd            double backward: v1 (backward_backward.cu over simt.cuh: stats, query and key
#                 passes) beside the v2 stats, query and key passes (simt2_dd.cu), H100/H200 limits;
#                 appends to a record
#                   bash benchmarks/gpu/ptxas_attention_simt2.sh dd >> benchmarks/results/ptxas-attention-simt2-DATE.txt
set -euo pipefail
mode=${1:-fb}
case "$mode" in
  fb) files=(forward backward simt2) ;;
  dd) files=(backward_backward simt2_dd) ;;
  *) sed -n '6,12p' "$0" >&2; exit 2 ;;
esac
cd "$(git rev-parse --show-toplevel)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=(-Ikernels/include -Inative/include -Ikernels/cuda)
flags="nvcc -std=c++17 -O3 --expt-relaxed-constexpr -Xptxas -v"
git_note="# (git $(git rev-parse --short HEAD)$(git diff --quiet -- kernels || echo ', kernels/ modified'))"
if [ "$mode" = fb ]; then
  echo "# ptxas -v for the SIMT attention kernels (v1: forward.cu, backward.cu; v2: simt2.cu), $(date -u +%Y-%m-%d), $(nvcc --version | tail -1)"
  echo "# command: bash benchmarks/gpu/ptxas_attention_simt2.sh ($flags)"
  echo "$git_note"
  echo "# 256 threads per block in every kernel: 2 blocks per SM need <= 128 registers (65536 per SM) and"
  echo "# <= ~113 KB of shared memory per block on H100/H200 (228 KB per SM, 1 KB reserved per block)."
else
  echo
  echo "# ---- double backward: ptxas -v, v1 (backward_backward.cu) beside the v2 stats, query and key passes (simt2_dd.cu), $(date -u +%Y-%m-%d), $(nvcc --version | tail -1)"
  echo "# command: bash benchmarks/gpu/ptxas_attention_simt2.sh dd ($flags)"
  echo "$git_note"
  echo "# v2 stats pass <T, BQ, BK, TX> (no column accumulators), query pass <T, BQ, BK, TX, ND, NV>, key pass"
  echo "# <T, BK, BQ, TX, ND, NV>: ND = NV column chunks of 4 per"
  echo "# thread for the wider of D, Dv (2: <= 64, 4: <= 128, 8: <= 256); 32-row (32-key) tiles only where the"
  echo "# 64-row (64-key) tile does not fit."
fi
for arch in 90 80; do
  : > "$tmp/ptxas.txt"
  for f in "${files[@]}"; do
    nvcc -std=c++17 -O3 --expt-relaxed-constexpr -arch=sm_$arch -Xptxas -v "${inc[@]}" \
      -c kernels/cuda/attention/$f.cu -o "$tmp/$f.o" >> "$tmp/ptxas.txt" 2>&1
  done
  echo
  echo "## sm_$arch: kernel | registers | spill stores/loads (bytes) | stack"
  python3 - "$tmp/ptxas.txt" "$mode" <<'PY'
import re, subprocess, sys
lines = open(sys.argv[1]).read().splitlines()
name = None; rows = []; cur = {}
for ln in lines:
    m = re.search(r"Compiling entry function '(\w+)'", ln)
    if m:
        name = subprocess.run(["c++filt", m.group(1)], capture_output=True, text=True).stdout.strip()
        name = re.sub(r"mk::cuda::\(anonymous namespace\)::", "", name)
        name = re.sub(r"\(mk::AttentionParams, [^)]*\)", "", name)
        cur = {"name": name}
        continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", ln)
    if m and name:
        cur.update(stack=m.group(1), st=m.group(2), ld=m.group(3))
    if name and "Used" in ln:
        cur["regs"] = re.search(r"Used (\d+) registers", ln).group(1)
        rows.append(cur); name = None
if sys.argv[2] == "fb":
    want = ("forward_kernel", "backward_query_kernel", "backward_key_kernel", "rowdot_kernel")
else:
    want = ("second_stats_kernel", "second_query_kernel", "second_key_kernel", "simt2_dd_stats_kernel",
            "simt2_dd_query_kernel", "simt2_dd_key_kernel")
seen = set()
for r in sorted(rows, key=lambda r: ("simt2" in r["name"], r["name"])):
    if not any(w in r["name"] for w in want) or r["name"] in seen: continue
    seen.add(r["name"])
    tag = "v2" if "simt2" in r["name"] else "v1" if "rowdot" not in r["name"] else "v1/v2"
    print(f'{tag} {r["name"]} | {r["regs"]} | {r.get("st","0")}/{r.get("ld","0")} | {r.get("stack","0")}')
PY
done
if [ "$mode" = fb ]; then
  cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/simt2.cu"
using namespace mk::cuda;
int main() {
  printf("\n## v2 dynamic shared memory per block (KB): forward tiles (query rows x keys), dQ pass (64 rows x 32 keys), dK/dV pass (64 keys x 32 rows)\n");
  for (int es : {4, 8})
    for (int d : {64, 128, 256}) {
      if (es == 8 && d > 128) continue;
      printf("%s D=Dv=%3d: fwd 64x64 %6.1f  fwd 64x32 %6.1f  fwd 128x64 %6.1f  dQ %6.1f  dK/dV %6.1f\n",
             es == 4 ? "F32" : "F64", d, simt2_fwd_dims<64, 64>(d, d, es).total * es / 1024.0,
             simt2_fwd_dims<64, 32>(d, d, es).total * es / 1024.0, simt2_fwd_dims<128, 64>(d, d, es).total * es / 1024.0,
             simt2_bwdq_dims<64, 32>(d, d, es).total * es / 1024.0, simt2_bwdk_dims<64, 32>(d, d, es).total * es / 1024.0);
    }
  printf("(F64 runs the 64x32 forward tile only; 128x64 needs Dv <= 128; 2 blocks per SM on H100/H200 need <= ~113 KB)\n");
  printf("\n## v1 tiles (pick_tiles of simt.cuh) and shared memory per block (KB), H100/H200 limits\n");
  Limits lim;
  lim.optin = 232448;
  lim.per_sm = 233472;
  for (int es : {4, 8})
    for (int d : {64, 128, 256}) {
      Tiles t;
      size_t b = 0;
      printf("%s D=Dv=%3d:", es == 4 ? "F32" : "F64", d);
      if (pick_tiles<ForwardLayout>(es, d, d, lim, &t, &b)) printf(" fwd %dx%d %6.1f ", t.bq, t.bk, b / 1024.0);
      if (pick_tiles<BackwardQueryLayout>(es, d, d, lim, &t, &b)) printf(" dQ %dx%d %6.1f ", t.bq, t.bk, b / 1024.0);
      if (pick_tiles<BackwardKeyLayout>(es, d, d, lim, &t, &b)) printf(" dK/dV %dx%d %6.1f", t.bq, t.bk, b / 1024.0);
      printf("\n");
    }
  return 0;
}
CU
else
  cat > "$tmp/sizes.cu" <<'CU'
#include <cstdio>
#include "attention/simt2_dd.cu"
using namespace mk::cuda;
int main() {
  printf("\n## double backward, dynamic shared memory per block (KB), every second input present; H100/H200 limits\n");
  Limits lim;
  lim.optin = 232448;
  lim.per_sm = 233472;
  for (int es : {4, 8})
    for (int d : {64, 128, 256}) {
      if (es == 8 && d > 128) continue;
      printf("%s D=Dv=%3d: v2 stats 64x32 %6.1f  32x32 %6.1f  v2 query 64x32 %6.1f  32x32 %6.1f  v2 key 64x32 %6.1f  32x32 %6.1f",
             es == 4 ? "F32" : "F64", d, simt2_dds_dims(64, 32, d, d, es, true, true, true).total * es / 1024.0,
             simt2_dds_dims(32, 32, d, d, es, true, true, true).total * es / 1024.0,
             simt2_ddq_dims(64, 32, d, d, es, true, true, true).total * es / 1024.0,
             simt2_ddq_dims(32, 32, d, d, es, true, true, true).total * es / 1024.0,
             simt2_ddk_dims(64, 32, d, d, es, true, true, true).total * es / 1024.0,
             simt2_ddk_dims(32, 32, d, d, es, true, true, true).total * es / 1024.0);
      Tiles t;
      size_t b = 0;
      if (pick_tiles<SecondStatsLayout>(es, d, d, lim, &t, &b)) printf("  v1 stats %dx%d %6.1f", t.bq, t.bk, b / 1024.0);
      if (pick_tiles<SecondQueryLayout>(es, d, d, lim, &t, &b)) printf("  v1 query %dx%d %6.1f", t.bq, t.bk, b / 1024.0);
      if (pick_tiles<SecondKeyLayout>(es, d, d, lim, &t, &b)) printf("  v1 key %dx%d %6.1f", t.bq, t.bk, b / 1024.0);
      printf("\n");
    }
  printf("(v2: 64 rows (keys) where they fit (optin %d B), else 32, else that pass runs v1; A100 optin 166912 B)\n", int(lim.optin));
  return 0;
}
CU
fi
nvcc -std=c++17 -O1 --expt-relaxed-constexpr -arch=sm_90 "${inc[@]}" "$tmp/sizes.cu" -o "$tmp/sizes" 2>/dev/null
"$tmp/sizes"
