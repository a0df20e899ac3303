#!/usr/bin/env bash
# Registers, spills and stack of the SIMT double-backward kernels, v1 (backward_backward.cu over
# simt.cuh: stats, query and key passes) beside the v2 query and key passes (simt2_dd.cu), from ptxas -v for
# sm_90 and sm_80, plus the dynamic shared memory of the v2 passes (its layout code, printed by
# a host-only program) and of v1's tiles (pick_tiles), H100/H200 limits. No GPU needed. From the
# project root (appends to the SIMT v2 ptxas record):
#   bash benchmarks/gpu/ptxas_attention_simt2_dd.sh >> benchmarks/results/ptxas-attention-simt2-DATE.txt
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=(-Ikernels/include -Inative/include -Ikernels/cuda)
echo
echo "# ---- double backward: ptxas -v, v1 (backward_backward.cu) beside the v2 query and key passes (simt2_dd.cu), $(date -u +%Y-%m-%d), $(nvcc --version | tail -1)"
echo "# command: bash benchmarks/gpu/ptxas_attention_simt2_dd.sh (nvcc -std=c++17 -O3 --expt-relaxed-constexpr -Xptxas -v)"
echo "# (git $(git rev-parse --short HEAD)$(git diff --quiet -- kernels || echo ', kernels/ modified'))"
echo "# v2 query pass <T, BQ, BK, TX, ND, NV>, key pass <T, BK, BQ, TX, ND, NV>: ND = NV column chunks of 4 per"
echo "# thread for the wider of D, Dv (2: <= 64, 4: <= 128, 8: <= 256); 32-row (32-key) tiles only where the"
echo "# 64-row (64-key) tile does not fit."
for arch in 90 80; do
  : > "$tmp/ptxas.txt"
  for f in backward_backward simt2_dd; do
    nvcc -std=c++17 -O3 --expt-relaxed-constexpr -arch=sm_$arch -Xptxas -v "${inc[@]}" \
      -c kernels/cuda/attention/$f.cu -o "$tmp/$f.o" >> "$tmp/ptxas.txt" 2>&1
  done
  echo
  echo "## sm_$arch: kernel | registers | spill stores/loads (bytes) | stack"
  python3 - "$tmp/ptxas.txt" <<'PY'
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
want = ("second_stats_kernel", "second_query_kernel", "second_key_kernel", "simt2_dd_query_kernel", "simt2_dd_key_kernel")
seen = set()
for r in sorted(rows, key=lambda r: ("simt2" in r["name"], r["name"])):
    if not any(w in r["name"] for w in want) or r["name"] in seen: continue
    seen.add(r["name"])
    tag = "v2" if "simt2" in r["name"] else "v1"
    print(f'{tag} {r["name"]} | {r["regs"]} | {r.get("st","0")}/{r.get("ld","0")} | {r.get("stack","0")}')
PY
done
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
      printf("%s D=Dv=%3d: v2 query 64x32 %6.1f  32x32 %6.1f  v2 key 64x32 %6.1f  32x32 %6.1f", es == 4 ? "F32" : "F64",
             d, simt2_ddq_dims(64, 32, d, d, es, true, true, true).total * es / 1024.0,
             simt2_ddq_dims(32, 32, d, d, es, true, true, true).total * es / 1024.0,
             simt2_ddk_dims(64, 32, d, d, es, true, true, true).total * es / 1024.0,
             simt2_ddk_dims(32, 32, d, d, es, true, true, true).total * es / 1024.0);
      Tiles t;
      size_t b = 0;
      if (pick_tiles<SecondQueryLayout>(es, d, d, lim, &t, &b)) printf("  v1 query %dx%d %6.1f", t.bq, t.bk, b / 1024.0);
      if (pick_tiles<SecondKeyLayout>(es, d, d, lim, &t, &b)) printf("  v1 key %dx%d %6.1f", t.bq, t.bk, b / 1024.0);
      printf("\n");
    }
  printf("(v2: 64 rows (keys) where they fit (optin %d B), else 32, else that pass runs v1; A100 optin 166912 B)\n", int(lim.optin));
  return 0;
}
CU
nvcc -std=c++17 -O1 --expt-relaxed-constexpr -arch=sm_90 "${inc[@]}" "$tmp/sizes.cu" -o "$tmp/sizes"
"$tmp/sizes"
