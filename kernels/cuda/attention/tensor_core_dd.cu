// Softmax attention on tensor cores (sm_80+): the double backward (backward of the backward) and
// the JVP (at the end of the file) in BF16 / F16 on m16n8k16 MMAs with F32 accumulation, and, opt-in
// (AttentionParams::allow_tf32), in F32 on m16n8k8 TF32 MMAs (the operand type E: Bf16, Fp16 or
// Tf32, Operand<E> of mma.cuh). The math
// and its derivation are those of the F32 kernels (kernels/cpu/attention/backward_backward.cpp, the
// oracle; kernels/cuda/attention/backward_backward.cu, SIMT): per tile, with P = exp(S − lse),
// dP = dO vᵀ, D = rowsum(dO ∘ O), G = scale (ĝq kᵀ + q ĝkᵀ) + ĝb, T = dO ĝvᵀ and the row
// statistics C = rowsum(P ∘ G), E = rowsum(P ∘ (T + G ∘ dP)) − 2 C D:
//   dS = P ∘ (dP − D),  ḡS = P ∘ (T + G ∘ (dP − D) − C dP − E),  ḡdP = P ∘ (G − C)
//   q' = scale (ḡS k + dS ĝk),  dO' = P ĝv + ḡdP v,  b' = ḡS
//   k' = scale (ḡSᵀ q + dSᵀ ĝq),  v' = ḡdPᵀ dO
// Precision (as FlashAttention 2 does for P and dS): every product (S, dP, G's two, T, ḡS k, dS ĝk,
// P ĝv, ḡdP v, ḡSᵀ q, dSᵀ ĝq, ḡdPᵀ dO) runs on MMAs with 16-bit operands and F32 accumulation;
// the elementwise parts run in F32 registers; P, dS, ḡS and ḡdP are rounded to 16 bit only as the A
// operand of the next MMA; D, C, E and lse stay F32 (in the workspace); the outputs are rounded
// to 16 bit once. TF32 the same way: the F32 inputs are rounded to TF32 only as MMA operands (in
// shared memory, Operand<Tf32>::to_smem), P, dS, ḡS, ḡdP as A registers (acc_a); D, the biases
// and every elementwise step stay F32, and the outputs are the F32 accumulators. No F32 copies.
//
// Passes (every output element has one owner block, no atomics: deterministic):
//   D      rowsum(dO ∘ O), a warp per row (tc_rowdot_kernel of tensor_core_parts.cuh)
//   stats  blocks of 64 query rows (4 warps x 16), key tiles of 32: S, G, dP, T; C and E per row
//   query  blocks of 64 query rows and one output (part 0: q' and b'; part 1: dO'), key tiles of 32
//   key    blocks of 64 keys (4 warps x 16 keys) and one output (part 0: k'; part 1: v') over the
//          query heads of their KV head (GQA) and query tiles of 32 from the first row that sees
//          the block's first key (causal)
// One output per block keeps one accumulator tile per warp in registers (16 x DP); the part that
// writes dO' or v' needs only P and G (no dP, T products). Head dims: max(D, Dv) ≤ 128, padded
// to DP ∈ {64, 128} with zeros (k-steps and n-blocks past D, Dv skipped). Larger head dims, F32
// without allow_tf32, devices below sm_80 or without the shared memory: KERNEL_UNSUPPORTED, and the
// SIMT kernels run (16-bit: native/ on F32 copies; F32: backward_backward.cu, jvp.cu), as
// mk/attention_tc_choice.h decides (attention_tc_second_applies).
// TF32 tiles (F32 in shared memory) are twice the bytes of the 16-bit ones; they need no transposed
// copies (TF32 reads the B of P-side products from the row-major tiles, Operand<Tf32>::b_kn), and at
// DP = 128 the key tiles (stats, query, JVP) and query tiles (key pass) are 16 wide instead of 32,
// so that every pass fits an A100's 163 KB (H100/H200: one block of 4 warps per SM either way;
// DdTiles). sm_86-class devices (99 KB): KERNEL_UNSUPPORTED where a pass does not fit (SIMT).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../common.cuh"
#include "../mma.cuh"
#include "mk/attention_tc_choice.h"
#include "tensor_core_dd.cuh"
#include "tensor_core_parts.cuh"

namespace mk {
namespace cuda {
namespace {

struct DdTraits {
  static constexpr int kBlockQ = TT::kBlockQ;  // query rows per block (stats, query passes)
  static constexpr int kBlockK = TT::kBlockK;  // keys per block of the key pass (16 per warp)
};
using DT = DdTraits;

// The tile shapes of operand type E at padded head dim DP. BK: keys per tile of the stats, query
// and JVP passes; TQ: query rows per tile of the key pass. 16-bit: 32 (two k-steps of 16 for the
// P-side products). TF32 at DP = 128: 16 (two k-steps of 8), so that every pass fits 163 KB.
template <class E, int DP>
struct DdTiles {
  using O = Operand<E>;
  static constexpr int kElem = int(sizeof(typename O::Raw));
  static constexpr int BK = (kElem == 4 && DP > 64) ? 16 : 32;
  static constexpr int TQ = BK;
  static constexpr int LD = DP + TT::kPad;  // row-major tiles of head-dim width
  // transposed copies (16-bit only: the B of the P-side products; TF32 reads the row-major tiles)
  static constexpr int LTK = O::kTransposed ? BK + TT::kPad : 0;
  static constexpr int LTQ = O::kTransposed ? TQ + TT::kPad : 0;
  static_assert(BK % 16 == 0 && TQ % 16 == 0, "whole k-steps (16 or 8) of the P-side products");
};

// Shared layouts in elements of E's raw type (16-bit or F32); LD = DP + pad (row-major tiles),
// LT = tile rows + pad (transposed copies: the B operands of the P-side products, 16-bit only).
template <class E, int DP>
struct DdStatsLayout {
  using Ti = DdTiles<E, DP>;
  static constexpr int LD = Ti::LD, BK = Ti::BK;
  static constexpr int q = 0;                         // Q   [64][LD]
  static constexpr int gq = q + DT::kBlockQ * LD;     // ĝQ  [64][LD]
  static constexpr int dout = gq + DT::kBlockQ * LD;  // dO  [64][LD]
  static constexpr int k = dout + DT::kBlockQ * LD;   // K   [BK][LD]
  static constexpr int gk = k + BK * LD;              // ĝK  [BK][LD]
  static constexpr int v = gk + BK * LD;              // V   [BK][LD]
  static constexpr int gv = v + BK * LD;              // ĝV  [BK][LD]
  static constexpr int total = gv + BK * LD;
  static constexpr size_t bytes = size_t(total) * Ti::kElem;
};

template <class E, int DP>
struct DdQueryLayout {
  using Ti = DdTiles<E, DP>;
  static constexpr int LD = Ti::LD, LT = Ti::LTK, BK = Ti::BK;
  static constexpr int q = 0;                         // Q   [64][LD]
  static constexpr int gq = q + DT::kBlockQ * LD;     // ĝQ  [64][LD]
  static constexpr int dout = gq + DT::kBlockQ * LD;  // dO  [64][LD]
  static constexpr int k = dout + DT::kBlockQ * LD;   // K   [BK][LD]
  static constexpr int gk = k + BK * LD;              // ĝK  [BK][LD]
  static constexpr int v = gk + BK * LD;              // V   [BK][LD]
  static constexpr int gv = v + BK * LD;              // ĝV  [BK][LD]
  static constexpr int xt = gv + BK * LD;             // Kᵀ (part 0) or Vᵀ (part 1)    [DP][LT] (16-bit)
  static constexpr int yt = xt + DP * LT;             // ĝKᵀ (part 0) or ĝVᵀ (part 1)  [DP][LT] (16-bit)
  static constexpr int total = yt + DP * LT;
  static constexpr size_t bytes = size_t(total) * Ti::kElem;
};

template <class E, int DP>
struct DdKeyLayout {
  using Ti = DdTiles<E, DP>;
  static constexpr int LD = Ti::LD, LT = Ti::LTQ, TQ = Ti::TQ;
  static constexpr int k = 0;                        // K   [64][LD]
  static constexpr int gk = k + DT::kBlockK * LD;    // ĝK  [64][LD]
  static constexpr int v = gk + DT::kBlockK * LD;    // V   [64][LD]
  static constexpr int gv = v + DT::kBlockK * LD;    // ĝV  [64][LD]
  static constexpr int q = gv + DT::kBlockK * LD;    // Q   [TQ][LD]
  static constexpr int gq = q + TQ * LD;             // ĝQ  [TQ][LD]
  static constexpr int dout = gq + TQ * LD;          // dO  [TQ][LD]
  static constexpr int xt = dout + TQ * LD;          // Qᵀ (part 0) or dOᵀ (part 1)  [DP][LT] (16-bit)
  static constexpr int yt = xt + DP * LT;            // ĝQᵀ (part 0)                  [DP][LT] (16-bit)
  static constexpr int stats = yt + DP * LT;         // lse·log2e, D, C, E  4 x [TQ] F32
  static constexpr int total = stats + 4 * TQ * 4 / Ti::kElem;
  static constexpr size_t bytes = size_t(total) * Ti::kElem;
};
static_assert(DdKeyLayout<Bf16, 64>::stats % 2 == 0 && DdKeyLayout<Bf16, 128>::stats % 2 == 0,
              "F32 statistics 4-byte aligned");

// ---- stats pass -----------------------------------------------------------------------------------
// Block: (b, h, 64 query rows); lanes as in v1 (rows g and g + 8 of the warp's 16, keys 8nb + 2t +
// {0, 1} of the tile). C = Σ P G, F = Σ P (T + G dP); E = F − 2 C D.
template <class E, int DP>
__global__ void __launch_bounds__(TT::kThreads, 2) tc_dd_stats_kernel(const AttentionParams p, const int vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  using L = DdStatsLayout<E, DP>;
  constexpr int BK = L::BK;
  Raw* const sm = reinterpret_cast<Raw*>(mk_attention_smem);
  Raw *qs = sm + L::q, *gqs = sm + L::gq, *dos = sm + L::dout, *ks = sm + L::k, *gks = sm + L::gk, *vs = sm + L::v,
      *gvs = sm + L::gv;
  const int64_t tiles = (p.nq + DT::kBlockQ - 1) / DT::kBlockQ;
  const int64_t bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * DT::kBlockQ;
  const TcHead<Raw> x = tc_head<Raw>(p, bh / p.heads, bh % p.heads);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int R = int(std::min<int64_t>(DT::kBlockQ, p.nq - q0));
  const int d = int(p.d), dv = int(p.dv);
  const int ksteps = (d + O::kK - 1) / O::kK, vsteps = (dv + O::kK - 1) / O::kK;
  const float sl2 = float(p.scale) * kLog2e, scale = float(p.scale);
  const bool have_g = x.gq || x.gk;
  const DdStats st = dd_stats(p);

  load_tile<E, DT::kBlockQ, DP>(qs, L::LD, x.q + q0 * d, d, R, 0, vec != 0);
  load_tile<E, DT::kBlockQ, DP>(dos, L::LD, x.dout + q0 * dv, dv, R, 0, vec != 0);
  if (x.gq) load_tile<E, DT::kBlockQ, DP>(gqs, L::LD, x.gq + q0 * d, d, R, 0, vec != 0);
  const int64_t row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  int64_t kend[2];
  float lse2[2];
  for (int h = 0; h < 2; ++h) {
    const bool in = row[h] < p.nq;
    lse2[h] = in ? x.lse[row[h]] * kLog2e : 0.f;
    kend[h] = in && lse2[h] != -INFINITY ? x.key_end(row[h]) : 0;  // (lse -inf: no key, P = 0)
  }
  float csum[2] = {0.f, 0.f}, fsum[2] = {0.f, 0.f};
  const int64_t end = x.key_end(q0 + R - 1);
  const Raw* qw = qs + warp * 16 * L::LD;
  const Raw* gqw = gqs + warp * 16 * L::LD;
  const Raw* dow = dos + warp * 16 * L::LD;
  for (int64_t j0 = 0; j0 < end; j0 += BK) {
    const int C = int(std::min<int64_t>(BK, end - j0));
    __syncthreads();  // the previous tile is consumed
    load_tile<E, BK, DP>(ks, L::LD, x.k + j0 * d, d, C, 0, vec != 0);
    load_tile<E, BK, DP>(vs, L::LD, x.v + j0 * dv, dv, C, 0, vec != 0);
    if (x.gk) load_tile<E, BK, DP>(gks, L::LD, x.gk + j0 * d, d, C, 0, vec != 0);
    if (x.gv) load_tile<E, BK, DP>(gvs, L::LD, x.gv + j0 * dv, dv, C, 0, vec != 0);
    __syncthreads();
    float s[BK / 8][4], dp[BK / 8][4], gg[BK / 8][4], tt[BK / 8][4];
    zero_acc(s);
    zero_acc(dp);
    zero_acc(gg);
    zero_acc(tt);
    product_abt<E, DP>(s, qw, L::LD, ks, L::LD, ksteps, g, t);               // S = Q Kᵀ
    product_abt<E, DP>(dp, dow, L::LD, vs, L::LD, vsteps, g, t);             // dP = dO Vᵀ
    if (x.gq) product_abt<E, DP>(gg, gqw, L::LD, ks, L::LD, ksteps, g, t);   // ĝQ Kᵀ
    if (x.gk) product_abt<E, DP>(gg, qw, L::LD, gks, L::LD, ksteps, g, t);   // + Q ĝKᵀ
    if (x.gv) product_abt<E, DP>(tt, dow, L::LD, gvs, L::LD, vsteps, g, t);  // T = dO ĝVᵀ
#pragma unroll
    for (int nb = 0; nb < BK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int hr = r >> 1;
        const int64_t j = j0 + nb * 8 + 2 * t + (r & 1);
        if (j < kend[hr]) {
          float v = s[nb][r] * sl2;
          if (x.bias) v += kLog2e * O::to_float(x.bias[row[hr] * x.nk + j]);
          const float P = exp2f(v - lse2[hr]);
          float G = have_g ? gg[nb][r] * scale : 0.f;
          if (x.gbias) G += O::to_float(x.gbias[row[hr] * x.nk + j]);
          const float pg = P * G;
          csum[hr] += pg;
          fsum[hr] += P * tt[nb][r] + pg * dp[nb][r];
        }
      }
  }
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float c = quad_sum(csum[hr]), f = quad_sum(fsum[hr]);
    if (row[hr] < p.nq && t == 0) {
      const int64_t at = x.base + row[hr];
      st.c[at] = c;
      st.e[at] = f - 2.f * c * st.d[at];
    }
  }
}

// ---- query pass -----------------------------------------------------------------------------------
// Block: (b, h, 64 query rows, part); part 0: q' = scale (ḡS K + dS ĝK) and b' = ḡS (full, written
// per tile); part 1: dO' = P ĝV + ḡdP V.
template <class E, int DP>
__global__ void __launch_bounds__(TT::kThreads, 2) tc_dd_query_kernel(const AttentionParams p, const int vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  using L = DdQueryLayout<E, DP>;
  constexpr int BK = L::BK;
  Raw* const sm = reinterpret_cast<Raw*>(mk_attention_smem);
  Raw *qs = sm + L::q, *gqs = sm + L::gq, *dos = sm + L::dout, *ks = sm + L::k, *gks = sm + L::gk, *vs = sm + L::v,
      *gvs = sm + L::gv, *xt = sm + L::xt, *yt = sm + L::yt;
  const int64_t tiles = (p.nq + DT::kBlockQ - 1) / DT::kBlockQ;
  const int part = int(blockIdx.x % 2);
  const int64_t tile = blockIdx.x / 2;
  const int64_t bh = tile / tiles, q0 = (tile % tiles) * DT::kBlockQ;
  const TcHead<Raw> x = tc_head<Raw>(p, bh / p.heads, bh % p.heads);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int d = int(p.d), dv = int(p.dv);
  const int ksteps = (d + O::kK - 1) / O::kK, vsteps = (dv + O::kK - 1) / O::kK;
  Raw* const out = static_cast<Raw*>(part == 0 ? p.cot_q : p.cot_dout);
  Raw* const bias_out = part == 0 ? static_cast<Raw*>(p.cot_bias_full) : nullptr;
  if (!out && !bias_out) return;  // (uniform over the block)
  const int width = part == 0 ? d : dv;
  const int nblocks = out ? (width + 7) / 8 : 0;
  const int R = int(std::min<int64_t>(DT::kBlockQ, p.nq - q0));
  const float sl2 = float(p.scale) * kLog2e, scale = float(p.scale);
  const bool have_g = x.gq || x.gk;
  // part 0 needs every tile (ḡS, dS); part 1 only P and G
  const bool full = part == 0;
  const DdStats st = dd_stats(p);
  // B of the P-side products: the transposed copies (16-bit) or the row-major tiles (TF32)
  const Raw* const xb = O::kTransposed ? xt : full ? ks : vs;
  const Raw* const yb = O::kTransposed ? yt : full ? gks : gvs;
  constexpr int ldb = O::kTransposed ? L::LT : L::LD;

  load_tile<E, DT::kBlockQ, DP>(qs, L::LD, x.q + q0 * d, d, R, 0, vec != 0);
  if (full) load_tile<E, DT::kBlockQ, DP>(dos, L::LD, x.dout + q0 * dv, dv, R, 0, vec != 0);
  if (x.gq) load_tile<E, DT::kBlockQ, DP>(gqs, L::LD, x.gq + q0 * d, d, R, 0, vec != 0);
  const int64_t row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  int64_t kend[2];
  float lse2[2], dr[2], cr[2], er[2];
  for (int h = 0; h < 2; ++h) {
    const bool in = row[h] < p.nq;
    lse2[h] = in ? x.lse[row[h]] * kLog2e : 0.f;
    kend[h] = in && lse2[h] != -INFINITY ? x.key_end(row[h]) : 0;
    dr[h] = in ? st.d[x.base + row[h]] : 0.f;
    cr[h] = in ? st.c[x.base + row[h]] : 0.f;
    er[h] = in ? st.e[x.base + row[h]] : 0.f;
  }
  float acc[DP / 8][4];
  zero_acc(acc);
  const int64_t end = x.key_end(q0 + R - 1);
  const Raw* qw = qs + warp * 16 * L::LD;
  const Raw* gqw = gqs + warp * 16 * L::LD;
  const Raw* dow = dos + warp * 16 * L::LD;
  for (int64_t j0 = 0; j0 < end; j0 += BK) {
    const int C = int(std::min<int64_t>(BK, end - j0));
    __syncthreads();
    load_tile<E, BK, DP>(ks, L::LD, x.k + j0 * d, d, C, 0, vec != 0);
    if (x.gk) load_tile<E, BK, DP>(gks, L::LD, x.gk + j0 * d, d, C, 0, vec != 0);
    if (full || !O::kTransposed) {  // (TF32, part 1: V and ĝV are the B of ḡdP V and P ĝV)
      load_tile<E, BK, DP>(vs, L::LD, x.v + j0 * dv, dv, C, 0, vec != 0);
      if (x.gv) load_tile<E, BK, DP>(gvs, L::LD, x.gv + j0 * dv, dv, C, 0, vec != 0);
    }
    if (O::kTransposed) {
      if (full) {
        if (out) {
          load_tile_t<E, BK, DP>(xt, L::LT, x.k + j0 * d, d, C, 0, vec != 0);
          if (x.gk) load_tile_t<E, BK, DP>(yt, L::LT, x.gk + j0 * d, d, C, 0, vec != 0);
        }
      } else {
        load_tile_t<E, BK, DP>(xt, L::LT, x.v + j0 * dv, dv, C, 0, vec != 0);
        if (x.gv) load_tile_t<E, BK, DP>(yt, L::LT, x.gv + j0 * dv, dv, C, 0, vec != 0);
      }
    }
    __syncthreads();
    float s[BK / 8][4], dp[BK / 8][4], gg[BK / 8][4], tt[BK / 8][4];
    zero_acc(s);
    zero_acc(dp);
    zero_acc(gg);
    zero_acc(tt);
    product_abt<E, DP>(s, qw, L::LD, ks, L::LD, ksteps, g, t);              // S = Q Kᵀ
    if (x.gq) product_abt<E, DP>(gg, gqw, L::LD, ks, L::LD, ksteps, g, t);  // ĝQ Kᵀ
    if (x.gk) product_abt<E, DP>(gg, qw, L::LD, gks, L::LD, ksteps, g, t);  // + Q ĝKᵀ
    if (full) {
      product_abt<E, DP>(dp, dow, L::LD, vs, L::LD, vsteps, g, t);             // dP = dO Vᵀ
      if (x.gv) product_abt<E, DP>(tt, dow, L::LD, gvs, L::LD, vsteps, g, t);  // T = dO ĝVᵀ
    }
    // elementwise, in place: s <- P, gg <- ḡdP (part 1) or ḡS (part 0), dp <- dS (part 0)
#pragma unroll
    for (int nb = 0; nb < BK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int hr = r >> 1;
        const int64_t j = j0 + nb * 8 + 2 * t + (r & 1);
        float P = 0.f, G = 0.f;
        if (j < kend[hr]) {
          float v = s[nb][r] * sl2;
          if (x.bias) v += kLog2e * O::to_float(x.bias[row[hr] * x.nk + j]);
          P = exp2f(v - lse2[hr]);
          G = have_g ? gg[nb][r] * scale : 0.f;
          if (x.gbias) G += O::to_float(x.gbias[row[hr] * x.nk + j]);
        }
        s[nb][r] = P;
        if (full) {
          const float dpv = dp[nb][r];
          const float gs = P * (tt[nb][r] + G * (dpv - dr[hr]) - cr[hr] * dpv - er[hr]);
          dp[nb][r] = P * (dpv - dr[hr]);
          gg[nb][r] = gs;
          if (bias_out && row[hr] < p.nq && j < p.nk) bias_out[(x.base + row[hr]) * p.nk + j] = O::from_float(gs);
        } else {
          gg[nb][r] = P * (G - cr[hr]);
        }
      }
    if (nblocks > 0) {
      if (full) {
        product_pb<E>(acc, gg, xb, ldb, nblocks, g, t);            // += ḡS K
        if (x.gk) product_pb<E>(acc, dp, yb, ldb, nblocks, g, t);  // += dS ĝK
      } else {
        product_pb<E>(acc, gg, xb, ldb, nblocks, g, t);           // += ḡdP V
        if (x.gv) product_pb<E>(acc, s, yb, ldb, nblocks, g, t);  // += P ĝV
      }
    }
  }
  if (!out) return;
  const float f = full ? scale : 1.f;
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    if (row[hr] >= p.nq) continue;
#pragma unroll
    for (int nb = 0; nb < DP / 8; ++nb)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = nb * 8 + 2 * t + c;
        if (col < width) out[(x.base + row[hr]) * width + col] = O::from_float(acc[nb][2 * hr + c] * f);
      }
  }
}

// ---- key pass -------------------------------------------------------------------------------------
// Block: (b, KV head, 64 keys, part); warp w owns keys [16w, 16w + 16), lane (g, t) keys g and g + 8
// of them and query columns 8nb + 2t + {0, 1} of the tile: the transposed tiles Sᵀ = K Qᵀ,
// Gᵀ = scale (K ĝQᵀ + ĝK Qᵀ) + ĝbᵀ, dPᵀ = V dOᵀ, Tᵀ = ĝV dOᵀ. Part 0: k' = scale (ḡSᵀ Q + dSᵀ ĝQ);
// part 1: v' = ḡdPᵀ dO (P and G only).
template <class E, int DP>
__global__ void __launch_bounds__(TT::kThreads, 2) tc_dd_key_kernel(const AttentionParams p, const int vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  using L = DdKeyLayout<E, DP>;
  constexpr int TQ = L::TQ;
  Raw* const sm = reinterpret_cast<Raw*>(mk_attention_smem);
  Raw *ks = sm + L::k, *gks = sm + L::gk, *vs = sm + L::v, *gvs = sm + L::gv, *qs = sm + L::q, *gqs = sm + L::gq,
      *dos = sm + L::dout, *xt = sm + L::xt, *yt = sm + L::yt;
  float* const lse_s = reinterpret_cast<float*>(sm + L::stats);
  float *const d_s = lse_s + TQ, *const c_s = lse_s + 2 * TQ, *const e_s = lse_s + 3 * TQ;
  const int64_t tiles = (p.nk + DT::kBlockK - 1) / DT::kBlockK;
  const int part = int(blockIdx.x % 2);
  const int64_t tile = blockIdx.x / 2;
  const int64_t bk = tile / tiles, k0 = (tile % tiles) * DT::kBlockK;
  const int64_t b = bk / p.kv_heads, hk = bk % p.kv_heads, group = p.heads / p.kv_heads;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int d = int(p.d), dv = int(p.dv);
  const int ksteps = (d + O::kK - 1) / O::kK, vsteps = (dv + O::kK - 1) / O::kK;
  Raw* const outp = static_cast<Raw*>(part == 0 ? p.cot_k : p.cot_v);
  const int64_t len = p.key_lengths ? p.key_lengths[b] : p.nk;
  if (!outp || k0 >= len) return;  // (padding keys: the cotangents stay 0)
  const bool full = part == 0;
  const int width = full ? d : dv;
  const int nblocks = (width + 7) / 8;
  const int C = int(std::min<int64_t>(DT::kBlockK, p.nk - k0));
  const float sl2 = float(p.scale) * kLog2e, scale = float(p.scale);
  const DdStats st = dd_stats(p);
  const TcHead<Raw> x0 = tc_head<Raw>(p, b, hk * group);
  const bool have_g = x0.gq || x0.gk;  // (present for every head or none)
  // B of the P-side products: the transposed copies (16-bit) or the row-major tiles (TF32)
  const Raw* const xb = O::kTransposed ? xt : full ? qs : dos;
  const Raw* const yb = O::kTransposed ? yt : gqs;
  constexpr int ldb = O::kTransposed ? L::LT : L::LD;

  load_tile<E, DT::kBlockK, DP>(ks, L::LD, x0.k + k0 * d, d, C, 0, vec != 0);
  if (x0.gk) load_tile<E, DT::kBlockK, DP>(gks, L::LD, x0.gk + k0 * d, d, C, 0, vec != 0);
  if (full) {
    load_tile<E, DT::kBlockK, DP>(vs, L::LD, x0.v + k0 * dv, dv, C, 0, vec != 0);
    if (x0.gv) load_tile<E, DT::kBlockK, DP>(gvs, L::LD, x0.gv + k0 * dv, dv, C, 0, vec != 0);
  }
  const int64_t key0 = k0 + warp * 16 + g;  // the lane's keys: key0 and key0 + 8
  float acc[DP / 8][4];
  zero_acc(acc);
  const Raw* kw = ks + warp * 16 * L::LD;
  const Raw* gkw = gks + warp * 16 * L::LD;
  const Raw* vw = vs + warp * 16 * L::LD;
  const Raw* gvw = gvs + warp * 16 * L::LD;

  for (int64_t hq = 0; hq < group; ++hq) {
    const TcHead<Raw> x = tc_head<Raw>(p, b, hk * group + hq);
    for (int64_t i0 = (x.first_row(k0) / TQ) * TQ; i0 < p.nq; i0 += TQ) {
      const int R = int(std::min<int64_t>(TQ, p.nq - i0));
      __syncthreads();  // the previous query tile is consumed (and the key tiles loaded, the first time)
      load_tile<E, TQ, DP>(qs, L::LD, x.q + i0 * d, d, R, 0, vec != 0);
      if (x.gq) load_tile<E, TQ, DP>(gqs, L::LD, x.gq + i0 * d, d, R, 0, vec != 0);
      if (full || !O::kTransposed)  // (TF32, part 1: dO is the B of ḡdPᵀ dO)
        load_tile<E, TQ, DP>(dos, L::LD, x.dout + i0 * dv, dv, R, 0, vec != 0);
      if (O::kTransposed) {
        if (full) {
          load_tile_t<E, TQ, DP>(xt, L::LT, x.q + i0 * d, d, R, 0, vec != 0);
          if (x.gq) load_tile_t<E, TQ, DP>(yt, L::LT, x.gq + i0 * d, d, R, 0, vec != 0);
        } else {
          load_tile_t<E, TQ, DP>(xt, L::LT, x.dout + i0 * dv, dv, R, 0, vec != 0);
        }
      }
      for (int r = threadIdx.x; r < TQ; r += TT::kThreads) {
        const bool in = r < R;
        const int64_t at = x.base + i0 + r;
        lse_s[r] = in ? x.lse[i0 + r] * kLog2e : 0.f;
        d_s[r] = in ? st.d[at] : 0.f;
        c_s[r] = in ? st.c[at] : 0.f;
        e_s[r] = in ? st.e[at] : 0.f;
      }
      __syncthreads();
      float s[TQ / 8][4], dp[TQ / 8][4], gg[TQ / 8][4], tt[TQ / 8][4];
      zero_acc(s);
      zero_acc(dp);
      zero_acc(gg);
      zero_acc(tt);
      product_abt<E, DP>(s, kw, L::LD, qs, L::LD, ksteps, g, t);              // Sᵀ = K Qᵀ
      if (x.gq) product_abt<E, DP>(gg, kw, L::LD, gqs, L::LD, ksteps, g, t);  // K ĝQᵀ
      if (x.gk) product_abt<E, DP>(gg, gkw, L::LD, qs, L::LD, ksteps, g, t);  // + ĝK Qᵀ
      if (full) {
        product_abt<E, DP>(dp, vw, L::LD, dos, L::LD, vsteps, g, t);             // dPᵀ = V dOᵀ
        if (x.gv) product_abt<E, DP>(tt, gvw, L::LD, dos, L::LD, vsteps, g, t);  // Tᵀ = ĝV dOᵀ
      }
#pragma unroll
      for (int nb = 0; nb < TQ / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int qc = nb * 8 + 2 * t + (r & 1);
          const int64_t i = i0 + qc, j = key0 + 8 * (r >> 1);
          // masked entries set, not multiplied: padding keys may hold anything, NaN included (0 · NaN)
          float a = 0.f, ds = 0.f;
          if (i < p.nq && j < x.key_end(i) && lse_s[qc] != -INFINITY) {  // (lse -inf: no key, P = 0)
            float v = s[nb][r] * sl2;
            if (x.bias) v += kLog2e * O::to_float(x.bias[i * x.nk + j]);
            const float P = exp2f(v - lse_s[qc]);
            float G = have_g ? gg[nb][r] * scale : 0.f;
            if (x.gbias) G += O::to_float(x.gbias[i * x.nk + j]);
            if (full) {
              const float dpv = dp[nb][r], dd = d_s[qc], cc = c_s[qc];
              a = P * (tt[nb][r] + G * (dpv - dd) - cc * dpv - e_s[qc]);  // ḡSᵀ
              ds = P * (dpv - dd);                                         // dSᵀ
            } else {
              a = P * (G - c_s[qc]);  // ḡdPᵀ
            }
          }
          gg[nb][r] = a;
          if (full) dp[nb][r] = ds;
        }
      product_pb<E>(acc, gg, xb, ldb, nblocks, g, t);                    // += ḡSᵀ Q or ḡdPᵀ dO
      if (full && x.gq) product_pb<E>(acc, dp, yb, ldb, nblocks, g, t);  // += dSᵀ ĝQ
    }
  }
  const float f = full ? scale : 1.f;
  Raw* const o = outp + bk * p.nk * width;
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t j = key0 + 8 * hr;
    if (j >= p.nk) continue;
#pragma unroll
    for (int nb = 0; nb < DP / 8; ++nb)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = nb * 8 + 2 * t + c;
        if (col < width) o[j * width + col] = O::from_float(acc[nb][2 * hr + c] * f);
      }
  }
}

// ---- JVP --------------------------------------------------------------------------------------------
// The forward-mode product (kernels/cpu/attention/jvp.cpp, jvp.cu): tangents tq, tk, tv, tb (full).
// Block: (b, h, 64 query rows); per key tile of 32: S = Q Kᵀ, tS = scale (tQ Kᵀ + Q tKᵀ) + tb,
// P = exp(S − lse), c += rowsum(P ∘ tS), acc += (P ∘ tS) V + P tV. Reduce: tO = acc − c O (16-bit
// or F32), tlse = c (F32). (Key tiles of DdTiles::BK.)
template <class E, int DP>
struct TcJvpLayout {
  using Ti = DdTiles<E, DP>;
  static constexpr int LD = Ti::LD, LT = Ti::LTK, BK = Ti::BK;
  // V and tV: transposed [DP][LT] (16-bit) or row-major [BK][LD] (TF32)
  static constexpr int vsize = Operand<E>::kTransposed ? DP * LT : BK * LD;
  static constexpr int ldv = Operand<E>::kTransposed ? LT : LD;
  static constexpr int q = 0;                      // Q   [64][LD]
  static constexpr int gq = q + DT::kBlockQ * LD;  // tQ  [64][LD]
  static constexpr int k = gq + DT::kBlockQ * LD;  // K   [BK][LD]
  static constexpr int gk = k + BK * LD;           // tK  [BK][LD]
  static constexpr int vt = gk + BK * LD;          // Vᵀ or V
  static constexpr int gvt = vt + vsize;           // tVᵀ or tV
  static constexpr int total = gvt + vsize;
  static constexpr size_t bytes = size_t(total) * Ti::kElem;
};

template <class E, int DP>
__global__ void __launch_bounds__(TT::kThreads, 2) tc_jvp_kernel(const AttentionParams p, const int vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  using L = TcJvpLayout<E, DP>;
  constexpr int BK = L::BK;
  Raw* const sm = reinterpret_cast<Raw*>(mk_attention_smem);
  Raw *qs = sm + L::q, *gqs = sm + L::gq, *ks = sm + L::k, *gks = sm + L::gk, *vt = sm + L::vt, *gvt = sm + L::gvt;
  const int64_t tiles = (p.nq + DT::kBlockQ - 1) / DT::kBlockQ;
  const int64_t bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * DT::kBlockQ;
  const TcHead<Raw> x = tc_head<Raw>(p, bh / p.heads, bh % p.heads);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int R = int(std::min<int64_t>(DT::kBlockQ, p.nq - q0));
  const int d = int(p.d), dv = int(p.dv);
  const int ksteps = (d + O::kK - 1) / O::kK, nblocks = (dv + 7) / 8;
  const float sl2 = float(p.scale) * kLog2e, scale = float(p.scale);
  const bool have_g = x.gq || x.gk;

  load_tile<E, DT::kBlockQ, DP>(qs, L::LD, x.q + q0 * d, d, R, 0, vec != 0);
  if (x.gq) load_tile<E, DT::kBlockQ, DP>(gqs, L::LD, x.gq + q0 * d, d, R, 0, vec != 0);
  const int64_t row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  int64_t kend[2];
  float lse2[2];
  for (int h = 0; h < 2; ++h) {
    const bool in = row[h] < p.nq;
    lse2[h] = in ? x.lse[row[h]] * kLog2e : 0.f;
    kend[h] = in && lse2[h] != -INFINITY ? x.key_end(row[h]) : 0;
  }
  float csum[2] = {0.f, 0.f};
  float acc[DP / 8][4];
  zero_acc(acc);
  const int64_t end = x.key_end(q0 + R - 1);
  const Raw* qw = qs + warp * 16 * L::LD;
  const Raw* gqw = gqs + warp * 16 * L::LD;
  for (int64_t j0 = 0; j0 < end; j0 += BK) {
    const int C = int(std::min<int64_t>(BK, end - j0));
    __syncthreads();
    load_tile<E, BK, DP>(ks, L::LD, x.k + j0 * d, d, C, 0, vec != 0);
    if (x.gk) load_tile<E, BK, DP>(gks, L::LD, x.gk + j0 * d, d, C, 0, vec != 0);
    if (O::kTransposed) {
      load_tile_t<E, BK, DP>(vt, L::LT, x.v + j0 * dv, dv, C, 0, vec != 0);
      if (x.gv) load_tile_t<E, BK, DP>(gvt, L::LT, x.gv + j0 * dv, dv, C, 0, vec != 0);
    } else {
      load_tile<E, BK, DP>(vt, L::LD, x.v + j0 * dv, dv, C, 0, vec != 0);
      if (x.gv) load_tile<E, BK, DP>(gvt, L::LD, x.gv + j0 * dv, dv, C, 0, vec != 0);
    }
    __syncthreads();
    float s[BK / 8][4], gg[BK / 8][4];
    zero_acc(s);
    zero_acc(gg);
    product_abt<E, DP>(s, qw, L::LD, ks, L::LD, ksteps, g, t);              // S = Q Kᵀ
    if (x.gq) product_abt<E, DP>(gg, gqw, L::LD, ks, L::LD, ksteps, g, t);  // tQ Kᵀ
    if (x.gk) product_abt<E, DP>(gg, qw, L::LD, gks, L::LD, ksteps, g, t);  // + Q tKᵀ
#pragma unroll
    for (int nb = 0; nb < BK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int hr = r >> 1;
        const int64_t j = j0 + nb * 8 + 2 * t + (r & 1);
        float P = 0.f, G = 0.f;
        if (j < kend[hr]) {
          float v = s[nb][r] * sl2;
          if (x.bias) v += kLog2e * O::to_float(x.bias[row[hr] * x.nk + j]);
          P = exp2f(v - lse2[hr]);
          G = have_g ? gg[nb][r] * scale : 0.f;
          if (x.gbias) G += O::to_float(x.gbias[row[hr] * x.nk + j]);
        }
        s[nb][r] = P;
        gg[nb][r] = P * G;  // P ∘ tS
        csum[hr] += gg[nb][r];
      }
    product_pb<E>(acc, gg, vt, L::ldv, nblocks, g, t);            // += (P ∘ tS) V
    if (x.gv) product_pb<E>(acc, s, gvt, L::ldv, nblocks, g, t);  // += P tV
  }
  Raw* const to = static_cast<Raw*>(p.tan_out);
  float* const tl = static_cast<float*>(p.tan_lse);
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float c = quad_sum(csum[hr]);
    if (row[hr] >= p.nq) continue;
    const int64_t at = x.base + row[hr];
    if (tl && t == 0) tl[at] = c;
    if (!to) continue;
#pragma unroll
    for (int nb = 0; nb < DP / 8; ++nb)
#pragma unroll
      for (int cc = 0; cc < 2; ++cc) {
        const int col = nb * 8 + 2 * t + cc;
        if (col < dv)
          to[at * dv + col] = O::from_float(acc[nb][2 * hr + cc] - c * O::to_float(x.out[row[hr] * dv + col]));
      }
  }
}

// ---- launcher ---------------------------------------------------------------------------------------
// 16-byte vector loads: every tile source 16-byte aligned, widths a multiple of 16 bytes (8 16-bit
// or 4 F32 elements)
template <class E>
int dd_vector_ok(const AttentionParams& p) {
  constexpr int64_t n = 16 / int64_t(sizeof(typename Operand<E>::Raw));
  auto aligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  return p.d % n == 0 && p.dv % n == 0 && aligned(p.q) && aligned(p.k) && aligned(p.v) && aligned(p.dout) &&
         aligned(p.second.q) && aligned(p.second.k) && aligned(p.second.v);
}

template <class E, int DP>
size_t dd_smem_max(bool query_pass, bool key_pass) {
  size_t b = DdStatsLayout<E, DP>::bytes;
  if (query_pass) b = std::max(b, DdQueryLayout<E, DP>::bytes);
  if (key_pass) b = std::max(b, DdKeyLayout<E, DP>::bytes);
  return b;
}

template <class E, int DP>
int backward_backward_dp(const AttentionParams& p, cudaStream_t stream) {
  using Raw = typename Operand<E>::Raw;
  const bool query_pass = p.cot_q || p.cot_dout || p.cot_bias_full, key_pass = p.cot_k || p.cot_v;
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (dd_smem_max<E, DP>(query_pass, key_pass) > optin) return KERNEL_UNSUPPORTED;  // (before any launch)
  const int vec = dd_vector_ok<E>(p);
  const int64_t rows = p.batch * p.heads * p.nq;
  const int64_t rblocks = std::min<int64_t>((rows + TT::kWarps - 1) / TT::kWarps, 65535LL * 32);
  if (int e = tc_launch(tc_rowdot_kernel<E>, rblocks, 0, stream, rows, int(p.dv), static_cast<const Raw*>(p.out),
                        static_cast<const Raw*>(p.dout), static_cast<float*>(p.workspace)))
    return e;
  // the Hopper passes (tensor_core_sm90_dd.cu) where selected and they apply: all of them, or (they
  // answer KERNEL_UNSUPPORTED having launched nothing) the passes below
  if constexpr (!std::is_same<E, Tf32>::value) {
    if (attention_tc_second_sm90(attention_tc_selection().second.load(std::memory_order_relaxed))) {
      const int e = tc_sm90_backward_backward_passes(p, stream);
      if (e != KERNEL_UNSUPPORTED) return e;
    }
  }
  const int64_t qblocks = p.batch * p.heads * ((p.nq + DT::kBlockQ - 1) / DT::kBlockQ);
  if (int e = tc_launch(tc_dd_stats_kernel<E, DP>, qblocks, DdStatsLayout<E, DP>::bytes, stream, p, vec)) return e;
  if (query_pass)
    if (int e = tc_launch(tc_dd_query_kernel<E, DP>, qblocks * 2, DdQueryLayout<E, DP>::bytes, stream, p, vec))
      return e;
  if (key_pass) {
    const int64_t kblocks = p.batch * p.kv_heads * ((p.nk + DT::kBlockK - 1) / DT::kBlockK) * 2;
    if (int e = tc_launch(tc_dd_key_kernel<E, DP>, kblocks, DdKeyLayout<E, DP>::bytes, stream, p, vec)) return e;
  }
  return 0;
}

template <class E>
int backward_backward_t(const AttentionParams& p, cudaStream_t stream) {
  return padded_dim(p) == 64 ? backward_backward_dp<E, 64>(p, stream) : backward_backward_dp<E, 128>(p, stream);
}

template <class E, int DP>
int jvp_dp(const AttentionParams& p, cudaStream_t stream) {
  // the Hopper JVP (tensor_core_sm90_dd.cu) where selected and it applies
  if constexpr (!std::is_same<E, Tf32>::value) {
    if (attention_tc_second_sm90(attention_tc_selection().second.load(std::memory_order_relaxed))) {
      const int e = tc_sm90_jvp(p, stream);
      if (e != KERNEL_UNSUPPORTED) return e;
    }
  }
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (TcJvpLayout<E, DP>::bytes > optin) return KERNEL_UNSUPPORTED;
  const int64_t blocks = p.batch * p.heads * ((p.nq + DT::kBlockQ - 1) / DT::kBlockQ);
  return tc_launch(tc_jvp_kernel<E, DP>, blocks, TcJvpLayout<E, DP>::bytes, stream, p, dd_vector_ok<E>(p));
}

template <class E>
int jvp_t(const AttentionParams& p, cudaStream_t stream) {
  return padded_dim(p) == 64 ? jvp_dp<E, 64>(p, stream) : jvp_dp<E, 128>(p, stream);
}

}  // namespace

int tc_attention_backward_backward(const AttentionParams& in, void* stream) {
  AttentionParams p = in;
  p.second = attention_cotangents(in);
  if (!attention_tc_second_applies(
          p.dtype, p.d, p.dv, device_arch_major(),
          attention_tc_second_code(attention_tc_selection().second.load(std::memory_order_relaxed)), p.allow_tf32 != 0))
    return KERNEL_UNSUPPORTED;
  if (!p.workspace || !p.out || !p.dout || !p.lse || p.heads < 1 || p.kv_heads < 1 || p.heads % p.kv_heads != 0)
    return int(cudaErrorInvalidValue);
  const cudaStream_t s = as_stream(stream);
  return p.dtype == MK_BF16  ? backward_backward_t<Bf16>(p, s)
         : p.dtype == MK_F16 ? backward_backward_t<Fp16>(p, s)
                             : backward_backward_t<Tf32>(p, s);
}

int tc_attention_jvp(const AttentionParams& in, void* stream) {
  AttentionParams p = in;
  p.second = attention_tangents(in);
  if (!attention_tc_second_applies(
          p.dtype, p.d, p.dv, device_arch_major(),
          attention_tc_second_code(attention_tc_selection().second.load(std::memory_order_relaxed)), p.allow_tf32 != 0))
    return KERNEL_UNSUPPORTED;
  if (!p.out || !p.lse || p.heads < 1 || p.kv_heads < 1 || p.heads % p.kv_heads != 0) return int(cudaErrorInvalidValue);
  const cudaStream_t s = as_stream(stream);
  return p.dtype == MK_BF16 ? jvp_t<Bf16>(p, s) : p.dtype == MK_F16 ? jvp_t<Fp16>(p, s) : jvp_t<Tf32>(p, s);
}

int64_t tc_attention_backward_backward_workspace(const AttentionParams& p) { return 12 * p.batch * p.heads * p.nq; }

}  // namespace cuda
}  // namespace mk
