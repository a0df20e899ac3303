// Softmax attention double backward on Hopper (sm_90a): BF16 / F16, D = Dv in {64, 128}, warpgroup
// MMAs (wgmma) fed by TMA into 2-stage mbarrier rings, a producer and two consumer warpgroups per
// block (issue 10: "second order on tensor cores"). The math, the row statistics and the workspace
// are those of tensor_core_dd.cu (whose header derives them; the CPU twin
// kernels/cpu/attention/backward_backward.cpp is the oracle):
//   P = exp(S − lse), S = Q Kᵀ·scale, dP = dO Vᵀ, D = rowsum(dO ∘ O), G = scale (ĝQ Kᵀ + Q ĝKᵀ),
//   T = dO ĝVᵀ, C = rowsum(P ∘ G), E = rowsum(P ∘ (T + G ∘ dP)) − 2 C D,
//   dS = P ∘ (dP − D), ḡS = P ∘ (T + G ∘ (dP − D) − C dP − E), ḡdP = P ∘ (G − C),
//   q' = scale (ḡS K + dS ĝK), dO' = P ĝV + ḡdP V, k' = scale (ḡSᵀ Q + dSᵀ ĝQ), v' = ḡdPᵀ dO.
// Passes (each output element has one owner block, no atomics: deterministic), after the D pass of
// tensor_core_dd.cu (tc_rowdot_kernel), each a kernel of its own:
//   stats  block (b, h, 128 query rows), each consumer warpgroup 64 rows; Q, ĝQ, dO loaded once by
//          TMA, K, ĝK, V, ĝV tiles of 64 keys through the ring. Per tile five m64n64k16 wgmma
//          chains from shared memory (S, the two halves of G into one accumulator, dP, T), then C and
//          the sum of E per row in registers; C and E into the workspace.
//   q'     the same block and ring; the same five products, ḡS and dS in the accumulators, then
//          q' += ḡS K + dS ĝK (m64nDk16, ḡS / dS as register A operands, K / ĝK MN-major).
//   dO'    the same, without dP and T (no dO tile): dO' += P ĝV + ḡdP V.
//   k'     block (b, KV head, 128 keys), each consumer warpgroup 64 keys; K, ĝK, V, ĝV loaded once,
//          Q, ĝQ, dO tiles of 64 rows (and lse·log2e, D, C of those rows, written by the producer
//          warp's lanes) through the ring, over every query head of the KV head (GQA) from the
//          first row that sees the block's first key. Keys-major products (as the Hopper backward's
//          dK/dV pass): Sᵀ = K Qᵀ, Gᵀ = K ĝQᵀ + ĝK Qᵀ, dPᵀ = V dOᵀ, Tᵀ = ĝV dOᵀ, then
//          k' += ḡSᵀ Q + dSᵀ ĝQ. E is read from the workspace by the consumers (the shared memory of
//          D = 128 holds three statistics per row, not four: 231,976 of the H100's 232,448 bytes).
//   v'     the same block, without V, ĝV, dP and T: v' += ḡdPᵀ dO.
// One output per block keeps the register budget: five 64 x 64 F32 accumulator tiles would not fit
// next to a second 64 x D output (the Hopper backward carries dK and dV together because it has
// two products per tile, not five). At D = 128 the q' and k' consumers hold S, G, dP, T (4 x 32) and
// the output (64): 192 accumulator registers of the 240 setmaxnreg gives them.
//
// Scope: what the Hopper forward takes (16-bit, D = Dv in {64, 128}, a 9.0 device, a build with
// sm_90a code, 16-byte aligned inputs); elsewhere KERNEL_UNSUPPORTED before anything is launched, and
// tensor_core_dd.cu runs its own passes. A bias (broadcast as the forward's; −inf entries) is read
// per element where P is formed, ĝb (or the JVP's tb) where G is, and b' = ḡS is written by the q'
// pass per element (a [B, H, Nq, Nk] output: the bias gradient of a full bias). Absent cotangents (ĝQ, ĝK, ĝV null) skip their products.
// Masks: causal, key lengths (the tile that straddles L_b lands through a private mbarrier and its
// rows past L_b are zeroed before any product reads them: K, ĝK, V, ĝV are B operands of q' and
// dO', and padding keys may hold NaN), Nq, Nk not multiples of the tiles (TMA zero fill), rows that
// see no key (lse = −inf: P = 0). Masked entries of P, dS, ḡS, ḡdP are set, not multiplied, to 0.
//
// Precision as tensor_core_dd.cu: F32 accumulation, exp2 in F32, P, dS, ḡS, ḡdP rounded to 16 bit
// only as A operands, the statistics in F32, the outputs rounded once. The emulator test
// (attention_dd_emu_test sm90, emu.sm90.dd) holds it to the same criterion: error <= 2x the naive
// 16-bit composition's, bitwise reruns, guard words.
//
// Selected by MK_ATTN_TC_DD=sm90 (or the programmatic selection second = 3); not the default until
// timed on a GPU (benchmarks/gpu/attention_harness.cu times it beside tensor_core_dd.cu's passes).
// Builds as the Hopper forward: the bodies exist only in the sm_90a device pass and the emulator.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../common.cuh"
#include "../mma.cuh"
#include "../sm90.cuh"
#include "mk/attention_tc_choice.h"
#include "tensor_core.cuh"
#include "tensor_core_dd.cuh"
#include "tensor_core_parts.cuh"
#include "tensor_core_sm90_parts.cuh"

#if defined(MK_CUDA_EMU) || MK_SM90_DEVICE
#define MK_SM90D_BODY 1
#else
#define MK_SM90D_BODY 0
#endif
#if !MK_SM90D_BODY && defined(__CUDA_ARCH__)
#pragma nv_diag_suppress 177
#endif

namespace mk {
namespace cuda {

// (tensor_core_sm90.cu) a [planes, rows, d] 16-bit tensor map with boxes of 64 columns x box_rows
// rows, 128-byte swizzle; 0 or KERNEL_UNSUPPORTED
int tc_sm90_encode_map(CUtensorMap* map, const void* base, int64_t planes, int64_t rows, int64_t d, int box_rows,
                       bool bf16);
bool tc_sm90_device();

namespace {

struct Sm90DdTraits {
  static constexpr int kConsumers = 2;                           // consumer warpgroups
  static constexpr int kThreads = 128 * (1 + kConsumers);        // + the producer warpgroup
  static constexpr int kBlock = 64 * kConsumers;                 // query rows or keys per block
  static constexpr int kTile = 64;                               // keys (query side) or rows (key side) per tile
  static constexpr int kStages = 2;                              // ring depth
  static constexpr int kProducerRegs = 24, kConsumerRegs = 240;  // setmaxnreg per role
};
using D9 = Sm90DdTraits;
static_assert(D9::kStages == 2, "the ring indexing assumes two stages: stage it & 1, parity (it >> 1) & 1");
static_assert(D9::kProducerRegs * 128 + D9::kConsumerRegs * 128 * D9::kConsumers <= 65536,
              "the register budgets of the roles fit the SM's register file");

// (kDdJvp: the JVP, a query-side pass of its own: no workspace, tO and tlse)
enum Sm90DdMode { kDdStats = 0, kDdQ = 1, kDdDout = 2, kDdK = 3, kDdV = 4, kDdJvp = 5 };

// The byte layout of both kernels: three or four block-constant tiles [D/64][128][64] (query side:
// Q, ĝQ, dO; key side: K, ĝK, V, ĝV) and a ring of 2 stages of four or three [D/64][64][64] tiles
// (query side: K, ĝK, V, ĝV; key side: Q, ĝQ, dO), the key side's per-row statistics, mbarriers.
template <int D, int kFixed, int kRing, int kStats>
struct Sm90DdLayout {
  static_assert(D == 64 || D == 128, "head dims 64 and 128");
  static constexpr int kAtoms = D / 64;
  static constexpr uint32_t fixed_atom = D9::kBlock * 128;  // [128][64] 16-bit
  static constexpr uint32_t fixed = kAtoms * fixed_atom;    // one block-constant tile
  static constexpr uint32_t ring_atom = D9::kTile * 128;    // [64][64] 16-bit
  static constexpr uint32_t tile = kAtoms * ring_atom;      // one ring tensor of a stage
  static constexpr uint32_t stage = kRing * tile;
  static constexpr uint32_t ring = kFixed * fixed;  // ring tensor r of stage s at ring + s * stage + r * tile
  static constexpr uint32_t stats = ring + D9::kStages * stage;  // F32 [2][kStats][64]
  static constexpr uint32_t bars = stats + D9::kStages * kStats * D9::kTile * 4;
  static constexpr uint32_t bar_fixed = bars, bar_full = bars + 8, bar_empty = bars + 24;
  // (a function: the key side never lands a straddling tile, and an unused member warns in nvcc)
  static constexpr uint32_t bar_tmp() { return bars + 40; }
  static constexpr size_t bytes = size_t(bars + 48) + 1024;  // + the alignment slack of the dynamic base
  static_assert(fixed_atom % 1024 == 0 && ring_atom % 1024 == 0, "swizzle atoms 1024-byte aligned");
};
template <int D>
using Sm90DdQueryLayout = Sm90DdLayout<D, 3, 4, 0>;  // fixed Q, ĝQ, dO; ring K, ĝK, V, ĝV
template <int D>
using Sm90DdKeyLayout = Sm90DdLayout<D, 4, 3, 3>;  // fixed K, ĝK, V, ĝV; ring Q, ĝQ, dO; lse·log2e, D, C

struct Sm90DdMaps {
  // query side: the first three fixed (Q, ĝQ, dO), the next four in the ring (K, ĝK, V, ĝV); key
  // side: fixed K, ĝK, V, ĝV, ring Q, ĝQ, dO. A null tensor's map is left zero and never read.
  CUtensorMap map[7];
};


template <int N>
__device__ __forceinline__ void sm90dd_zero(float (&a)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) a[i] = 0.f;
}

// ---- query side: stats, q', dO' ------------------------------------------------------------------------
// kBias: a bias or ĝb (tb) is read per element (a variant of its own: the pointers and their tests cost
// the no-bias kernels registers, and spills at D = 128)
template <class E, int D, int MODE, bool kBias>
__global__ void __launch_bounds__(D9::kThreads, 1)
    tc_sm90_dd_query_kernel(const AttentionParams p, const __grid_constant__ Sm90DdMaps maps) {
#if MK_SM90D_BODY
  using L = Sm90DdQueryLayout<D>;
  constexpr bool kBf16 = E::kBf16;
  constexpr int BK = D9::kTile;
  constexpr bool kStatsMode = MODE == kDdStats, kQMode = MODE == kDdQ, kDoutMode = MODE == kDdDout;
  constexpr bool kJvpMode = MODE == kDdJvp;
  constexpr bool kNeedDp = kStatsMode || kQMode;  // dP and T (stats, q')
  const uint32_t raw = sm90::smem_addr(mk_attention_smem);
  const uint32_t sb = (raw + 1023u) & ~1023u;
  unsigned char* const base = mk_attention_smem + (sb - raw);
  const int64_t tiles = (p.nq + D9::kBlock - 1) / D9::kBlock;
  const int64_t bh = blockIdx.x / tiles;
  int64_t qt = blockIdx.x % tiles;
  if (p.causal) qt = tiles - 1 - qt;  // the longest rows first
  const int64_t q0 = qt * D9::kBlock;
  const TcHead<uint16_t> x = tc_head<uint16_t>(p, bh / p.heads, bh % p.heads);
  const bool has_gq = x.gq != nullptr, has_gk = x.gk != nullptr, has_gv = x.gv != nullptr;
  const int R = int(std::min<int64_t>(D9::kBlock, p.nq - q0));
  const int64_t end = x.key_end(q0 + R - 1);  // the block's last row sees the most keys
  const int ntiles = int((end + BK - 1) / BK);
  const int wg = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32;
  // the ring tensors present (K always; ĝK, V, ĝV when given and used)
  const bool ring_on[4] = {true, has_gk, true, has_gv};
  int ring_n = 0;
#pragma unroll
  for (int r = 0; r < 4; ++r) ring_n += ring_on[r] ? 1 : 0;

  sm90_ring_init(sb + L::bar_fixed, sb + L::bar_full, sb + L::bar_empty, sb + L::bar_tmp(), 4 * D9::kConsumers);
  __syncthreads();

  if (wg == 0) {
    // ---- producer -----------------------------------------------------------------------------------
    sm90::setmaxnreg_dec<D9::kProducerRegs>();
    if (warp != 0 || ntiles == 0) return;
    const bool leader = lane == 0;
    if (leader) {
      const bool fixed_on[3] = {true, has_gq, kNeedDp};
      uint32_t n = 0;
#pragma unroll
      for (int f = 0; f < 3; ++f) n += fixed_on[f] ? L::fixed : 0;
      sm90::mbar_arrive_expect_tx(sb + L::bar_fixed, n);
#pragma unroll
      for (int f = 0; f < 3; ++f)
        if (fixed_on[f])
          for (int a = 0; a < L::kAtoms; ++a)
            sm90::tma_load_3d(sb + f * L::fixed + a * L::fixed_atom, &maps.map[f], 64 * a, int(q0), int(bh),
                              sb + L::bar_fixed);
    }
    const int len = int(x.len), kh = int(x.kh);
    const bool padded = x.len < x.nk;
    int tmp_uses = 0;
    for (int it = 0; it < ntiles; ++it) {
      const int st = it & 1;
      const int j0 = it * BK;
      const uint32_t stage = sb + L::ring + st * L::stage;
      const uint32_t full = sb + L::bar_full + 8 * st;
      if (it >= D9::kStages) sm90::mbar_wait(sb + L::bar_empty + 8 * st, ((it >> 1) & 1) ^ 1);
      const bool straddles = padded && j0 + BK > len;
      // the tile that straddles the key length lands through bar_tmp; its rows past L_b are zeroed
      // (they are B operands of q' and dO') before the consumers are told
      const uint32_t bar = straddles ? sb + L::bar_tmp() : full;
      if (leader) {
        sm90::mbar_arrive_expect_tx(bar, uint32_t(ring_n) * L::tile);
#pragma unroll
        for (int r = 0; r < 4; ++r)
          if (ring_on[r])
            for (int a = 0; a < L::kAtoms; ++a)
              sm90::tma_load_3d(stage + r * L::tile + a * L::ring_atom, &maps.map[3 + r], 64 * a, j0, kh, bar);
      }
      if (straddles) {
        sm90::mbar_wait(sb + L::bar_tmp(), tmp_uses & 1);
        ++tmp_uses;
#pragma unroll
        for (int r = 0; r < 4; ++r)
          if (ring_on[r])
            sm90b_zero_rows(base + (stage - sb) + r * L::tile, L::kAtoms, L::ring_atom, BK, std::max(0, len - j0),
                            lane);
        if (leader) sm90::mbar_arrive(full);
      }
    }
    return;
  }

  // ---- consumers ------------------------------------------------------------------------------------
  sm90::setmaxnreg_inc<D9::kConsumerRegs>();
  const int cw = wg - 1;
  const int g = lane >> 2, t = lane & 3;
  const int64_t r0 = q0 + 64 * cw;    // this warpgroup's first row
  const int64_t w0 = r0 + 16 * warp;  // this warp's first row
  const int64_t row0 = w0 + g;        // this thread's rows: row0, row0 + 8
  const int wg_end = r0 < p.nq ? int(x.key_end(std::min<int64_t>(r0 + 63, p.nq - 1))) : 0;
  const int wtiles = std::min(ntiles, (wg_end + BK - 1) / BK);  // tiles some row of the warpgroup sees
  const DdStats stt = kJvpMode ? DdStats{nullptr, nullptr, nullptr} : dd_stats(p);
  int kend[2];
  float lse2[2], drow[2], crow[2], erow[2];
  for (int h = 0; h < 2; ++h) {
    const int64_t i = row0 + 8 * h;
    const bool in = i < p.nq;
    lse2[h] = in ? x.lse[i] * kSm90bLog2e : 0.f;
    kend[h] = in && lse2[h] != -INFINITY ? int(x.key_end(i)) : 0;  // (lse −inf: no key, P = 0)
    drow[h] = in && !kJvpMode ? stt.d[x.base + i] : 0.f;
    crow[h] = in && (kQMode || kDoutMode) ? stt.c[x.base + i] : 0.f;
    erow[h] = in && kQMode ? stt.e[x.base + i] : 0.f;
  }
  const float sl2 = float(p.scale) * kSm90bLog2e, scale = float(p.scale);
  const bool has_g = has_gq || has_gk;
  using O = Operand<E>;
  const uint16_t* const bias = kBias ? x.bias : nullptr;    // (added to S; −inf entries: rows may see no key)
  const uint16_t* const gbias = kBias ? x.gbias : nullptr;  // ĝb (double backward) or tb (JVP): added to G
  uint16_t* const bias_out = kBias && kQMode ? static_cast<uint16_t*>(p.cot_bias_full) : nullptr;  // b' = ḡS
  uint16_t* const out = static_cast<uint16_t*>(kQMode ? p.cot_q : kDoutMode ? p.cot_dout : kJvpMode ? p.tan_out : nullptr);

  constexpr int NA = kStatsMode ? 1 : D / 2;
  constexpr int NP = kNeedDp ? BK / 2 : 1;
  float acc[NA];
  sm90dd_zero(acc);
  float s[BK / 2], gg[BK / 2], dp[NP], tt[NP];
  uint32_t a1[BK / 16][4], a2[BK / 16][4];
  float csum[2] = {0.f, 0.f}, fsum[2] = {0.f, 0.f};

  // descriptors: fixed tile f (rows of this warpgroup, K-major); ring tensor r of stage st as the B
  // of S-side products (K-major, N = keys) or of the output products (MN-major: N = D in 64-column
  // atoms ring_atom apart, k = keys in 8-key groups 1024 bytes apart)
  auto adesc = [&](int f, int kk) {
    return sm90::desc_sw128(sb + f * L::fixed + (kk / 4) * L::fixed_atom + cw * 64 * 128 + (kk % 4) * 32, 16, 1024);
  };
  auto bdesc = [&](int r, int st, int kk) {
    return sm90::desc_sw128(sb + L::ring + st * L::stage + r * L::tile + (kk / 4) * L::ring_atom + (kk % 4) * 32, 16,
                            1024);
  };
  auto tdesc = [&](int r, int st, int kk) {
    return sm90::desc_sw128(sb + L::ring + st * L::stage + r * L::tile + kk * 16 * 128, L::ring_atom, 1024);
  };
  constexpr int fQ = 0, fGQ = 1, fDO = 2, rK = 0, rGK = 1, rV = 2, rGV = 3;

  if (wtiles > 0) sm90::mbar_wait(sb + L::bar_fixed, 0);
  for (int it = 0; it < wtiles; ++it) {
    const int st = it & 1, ph = (it >> 1) & 1;
    const int j0 = it * BK;
    sm90::mbar_wait(sb + L::bar_full + 8 * st, ph);
    // S = Q Kᵀ, G = ĝQ Kᵀ + Q ĝKᵀ, dP = dO Vᵀ, T = dO ĝVᵀ (the absent ones zero)
    sm90::reg_fence(s);
    sm90::reg_fence(gg);
    sm90::reg_fence(dp);
    sm90::reg_fence(tt);
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, BK>(s, adesc(fQ, kk), bdesc(rK, st, kk), kk > 0);
    if (has_gq) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, BK>(gg, adesc(fGQ, kk), bdesc(rK, st, kk), kk > 0);
    }
    if (has_gk) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        sm90::wgmma_ss<kBf16, BK>(gg, adesc(fQ, kk), bdesc(rGK, st, kk), has_gq || kk > 0);
    }
    if constexpr (kNeedDp) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, BK>(dp, adesc(fDO, kk), bdesc(rV, st, kk), kk > 0);
      if (has_gv) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, BK>(tt, adesc(fDO, kk), bdesc(rGV, st, kk), kk > 0);
      }
    }
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
    sm90::reg_fence(s);
    sm90::reg_fence(gg);
    sm90::reg_fence(dp);
    sm90::reg_fence(tt);
    // elementwise, in place: s <- P (dO') or ḡS (q'), gg <- ḡdP (dO'), dp <- dS (q')
#pragma unroll
    for (int i = 0; i < BK / 2; ++i) {
      const int hr = (i >> 1) & 1;
      const int j = j0 + 8 * (i >> 2) + 2 * t + (i & 1);
      const bool vis = j < kend[hr];  // (a per-element test: a whole-tile fast path cost ptxas spills)
      const int64_t row = row0 + 8 * hr;
      float sv = s[i] * sl2;
      if constexpr (kBias)
        if (bias && vis) sv += kSm90bLog2e * O::to_float(bias[row * x.nk + j]);
      const float P = vis ? exp2f(sv - lse2[hr]) : 0.f;
      float G = vis && has_g ? gg[i] * scale : 0.f;
      if constexpr (kBias)
        if (gbias && vis) G += O::to_float(gbias[row * x.nk + j]);
      if constexpr (kStatsMode) {
        const float T = vis && has_gv ? tt[i] : 0.f, dpv = vis ? dp[i] : 0.f;
        const float pg = P * G;
        csum[hr] += pg;
        fsum[hr] += P * T + pg * dpv;
      } else if constexpr (kQMode) {
        const float T = vis && has_gv ? tt[i] : 0.f, dpv = vis ? dp[i] : 0.f;
        s[i] = P * (T + G * (dpv - drow[hr]) - crow[hr] * dpv - erow[hr]);  // ḡS
        dp[i] = P * (dpv - drow[hr]);                                      // dS
        if constexpr (kBias)
          if (bias_out && row < p.nq && j < p.nk) bias_out[(x.base + row) * p.nk + j] = O::from_float(s[i]);
      } else if constexpr (kDoutMode) {
        s[i] = P;                    // P
        gg[i] = P * (G - crow[hr]);  // ḡdP
      } else {
        s[i] = P;       // P
        gg[i] = P * G;  // P ∘ tS
        csum[hr] += gg[i];
      }
    }
    if constexpr (!kStatsMode) {
      if (out) {
        // q' += ḡS K + dS ĝK;  dO' += ḡdP V + P ĝV;  (JVP) tO += (P ∘ tS) V + P tV
        if constexpr (kQMode) {
          sm90b_pack<E, BK>(s, a1);
          sm90b_pack<E, BK>(dp, a2);
        } else {
          sm90b_pack<E, BK>(gg, a1);
          sm90b_pack<E, BK>(s, a2);
        }
        constexpr int rX = kQMode ? rK : rV, rY = kQMode ? rGK : rGV;
        const bool has_y = kQMode ? has_gk : has_gv;
        sm90::reg_fence(acc);
        sm90::reg_fence(a1);
        sm90::reg_fence(a2);
        sm90::wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(acc, a1[kk], tdesc(rX, st, kk));
        if (has_y) {
#pragma unroll
          for (int kk = 0; kk < BK / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(acc, a2[kk], tdesc(rY, st, kk));
        }
        sm90::wgmma_commit();
        sm90::wgmma_wait<0>();
        sm90::reg_fence(acc);
        sm90::reg_fence(a1);
        sm90::reg_fence(a2);
      }
    }
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + L::bar_empty + 8 * st);
  }
  // tiles only the other warpgroup sees: wait for them (so that this warpgroup's arrivals on the
  // stage's empty barrier belong to its current phase) and release them
  for (int it = wtiles; it < ntiles; ++it) {
    const int st = it & 1, ph = (it >> 1) & 1;
    sm90::mbar_wait(sb + L::bar_full + 8 * st, ph);
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + L::bar_empty + 8 * st);
  }

  if constexpr (kStatsMode) {
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const float c = quad_sum(csum[hr]), f = quad_sum(fsum[hr]);
      const int64_t i = row0 + 8 * hr;
      if (i < p.nq && t == 0) {
        stt.c[x.base + i] = c;
        stt.e[x.base + i] = f - 2.f * c * drow[hr];
      }
    }
  } else if constexpr (kJvpMode) {
    // tO = acc − c O (16-bit), tlse = c (F32)
    float* const tl = static_cast<float*>(p.tan_lse);
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const float c = quad_sum(csum[hr]);
      const int64_t i = row0 + 8 * hr;
      if (i >= p.nq) continue;
      if (tl && t == 0) tl[x.base + i] = c;
      if (!out) continue;
#pragma unroll
      for (int nb = 0; nb < D / 8; ++nb) {
        const uint32_t ow = *reinterpret_cast<const uint32_t*>(x.out + i * D + nb * 8 + 2 * t);
        const float o0 = Operand<E>::to_float(uint16_t(ow & 0xffffu)), o1 = Operand<E>::to_float(uint16_t(ow >> 16));
        *reinterpret_cast<uint32_t*>(out + (x.base + i) * D + nb * 8 + 2 * t) =
            pack_half2<E>(acc[4 * nb + 2 * hr] - c * o0, acc[4 * nb + 2 * hr + 1] - c * o1);
      }
    }
  } else {
    if (out) sm90_store_tile<E, D>(out + x.base * D, row0, p.nq, acc, kQMode ? scale : 1.f, t);
  }
#else
  (void)p, (void)maps;
#if defined(__CUDA_ARCH__)
  __trap();  // (launched from code without the sm_90a body, e.g. a JIT of the compute_90 PTX: fail, not skip)
#endif
#endif
}

// ---- key side: k', v' --------------------------------------------------------------------------------
template <class E, int D, int MODE, bool kBias>
__global__ void __launch_bounds__(D9::kThreads, 1)
    tc_sm90_dd_key_kernel(const AttentionParams p, const __grid_constant__ Sm90DdMaps maps) {
#if MK_SM90D_BODY
  using L = Sm90DdKeyLayout<D>;
  constexpr bool kBf16 = E::kBf16;
  constexpr int TQ = D9::kTile;
  constexpr bool kKMode = MODE == kDdK;  // else v'
  const uint32_t raw = sm90::smem_addr(mk_attention_smem);
  const uint32_t sb = (raw + 1023u) & ~1023u;
  unsigned char* const base = mk_attention_smem + (sb - raw);
  const int64_t tiles = (p.nk + D9::kBlock - 1) / D9::kBlock;
  const int64_t bk = blockIdx.x / tiles, k0 = (blockIdx.x % tiles) * D9::kBlock;
  const int64_t b = bk / p.kv_heads, hk = bk % p.kv_heads, group = p.heads / p.kv_heads;
  const int64_t len = p.key_lengths ? p.key_lengths[b] : p.nk;
  uint16_t* const outp = static_cast<uint16_t*>(kKMode ? p.cot_k : p.cot_v);
  if (k0 >= len || !outp) return;  // padding keys: the cotangents stay 0 (as tensor_core_dd.cu)
  // the masks (len, offset, causal) are those of the batch entry: the same for every query head
  const TcHead<uint16_t> x0 = tc_head<uint16_t>(p, b, hk * group);
  const bool has_gq = x0.gq != nullptr, has_gk = x0.gk != nullptr, has_gv = x0.gv != nullptr;
  const int64_t istart = (x0.first_row(k0) / TQ) * TQ;
  const int64_t nt = istart < p.nq ? (p.nq - istart + TQ - 1) / TQ : 0;  // query tiles per head
  const int64_t total = group * nt;
  const int wg = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32;
  const DdStats stt = dd_stats(p);

  sm90_ring_init(sb + L::bar_fixed, sb + L::bar_full, sb + L::bar_empty, 0, 4 * D9::kConsumers);
  // an absent ĝQ (both ring stages) or ĝK (fixed) as zeros, read by the Gᵀ products; written before
  // any TMA or wgmma touches shared memory, ordered for the async proxy by the fence and the barrier
  if (!has_gq || !has_gk) {
    const uint4 z{0, 0, 0, 0};
    if (!has_gq)
      for (int s = 0; s < D9::kStages; ++s)
        for (uint32_t o = 16 * threadIdx.x; o < L::tile; o += 16 * D9::kThreads)
          *reinterpret_cast<uint4*>(base + L::ring + s * L::stage + 1 * L::tile + o) = z;
    if (!has_gk)
      for (uint32_t o = 16 * threadIdx.x; o < L::fixed; o += 16 * D9::kThreads)
        *reinterpret_cast<uint4*>(base + 1 * L::fixed + o) = z;
    sm90::fence_proxy_async();
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer: K, ĝK (V, ĝV) once; per tile Q, ĝQ, dO by TMA and lse·log2e, D, C by the lanes ----
    sm90::setmaxnreg_dec<D9::kProducerRegs>();
    if (warp != 0 || total == 0) return;
    const bool leader = lane == 0;
    const bool ring_on[3] = {true, has_gq, true};
    if (leader) {
      const bool fixed_on[4] = {true, has_gk, kKMode, kKMode && has_gv};
      uint32_t n = 0;
#pragma unroll
      for (int f = 0; f < 4; ++f) n += fixed_on[f] ? L::fixed : 0;
      sm90::mbar_arrive_expect_tx(sb + L::bar_fixed, n);
#pragma unroll
      for (int f = 0; f < 4; ++f)
        if (fixed_on[f])
          for (int a = 0; a < L::kAtoms; ++a)
            sm90::tma_load_3d(sb + f * L::fixed + a * L::fixed_atom, &maps.map[f], 64 * a, int(k0), int(bk),
                              sb + L::bar_fixed);
    }
    const float* const lse = static_cast<const float*>(p.lse);
    uint32_t ring_bytes = 0;
#pragma unroll
    for (int r = 0; r < 3; ++r) ring_bytes += ring_on[r] ? L::tile : 0;
    int64_t hq = 0, ti = 0;
    for (int64_t it = 0; it < total; ++it) {
      const int st = int(it & 1);
      const int64_t qh = b * p.heads + hk * group + hq, i0 = istart + ti * TQ;
      if (++ti == nt) {
        ti = 0;
        ++hq;
      }
      if (it >= D9::kStages) sm90::mbar_wait(sb + L::bar_empty + 8 * st, uint32_t(((it >> 1) & 1) ^ 1));
      float* const stats = reinterpret_cast<float*>(base + L::stats) + st * 3 * TQ;
      for (int r = lane; r < TQ; r += 32) {
        const int64_t i = i0 + r, at = qh * p.nq + i;
        const bool in = i < p.nq;
        stats[r] = in ? lse[at] * kSm90bLog2e : 0.f;
        stats[TQ + r] = in ? stt.d[at] : 0.f;
        stats[2 * TQ + r] = in ? stt.c[at] : 0.f;
      }
      __syncwarp();  // (the leader's arrival publishes the lanes' writes)
      if (leader) {
        const uint32_t full = sb + L::bar_full + 8 * st;
        sm90::mbar_arrive_expect_tx(full, ring_bytes);
#pragma unroll
        for (int r = 0; r < 3; ++r)
          if (ring_on[r])
            for (int a = 0; a < L::kAtoms; ++a)
              sm90::tma_load_3d(sb + L::ring + st * L::stage + r * L::tile + a * L::ring_atom, &maps.map[4 + r],
                                64 * a, int(i0), int(qh), full);
      }
    }
    return;
  }

  // ---- consumers ------------------------------------------------------------------------------------
  sm90::setmaxnreg_inc<D9::kConsumerRegs>();
  const int cw = wg - 1;
  const int g = lane >> 2, t = lane & 3;
  const int64_t kw0 = k0 + 64 * cw;       // this warpgroup's first key
  const int64_t kwarp = kw0 + 16 * warp;  // this warp's first key
  // the thread's keys j (rows g, g + 8 of the warp's 16): seen by the rows i >= jfirst (causal) when j < len
  int jfirst[2];
  bool jin[2];
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t j = kwarp + g + 8 * hr;
    jin[hr] = j < len;
    jfirst[hr] = x0.causal ? int(std::max<int64_t>(j - x0.off, 0)) : 0;
  }
  const float sl2 = float(p.scale) * kSm90bLog2e, scale = float(p.scale);
  const bool has_g = has_gq || has_gk;

  constexpr int NP = kKMode ? TQ / 2 : 1;
  float acc[D / 2];
  sm90dd_zero(acc);
  float s[TQ / 2], gg[TQ / 2], dp[NP], tt[NP];
  uint32_t a1[TQ / 16][4], a2[TQ / 16][4];

  // descriptors: fixed tile f (keys of this warpgroup, A, K-major); ring tensor r of a stage as the
  // B of the Sᵀ-side products (K-major, N = queries) and of the output products (MN-major: N = D in
  // 64-column atoms ring_atom apart, k = queries in 8-row groups 1024 bytes apart)
  auto adesc = [&](int f, int kk) {
    return sm90::desc_sw128(sb + f * L::fixed + (kk / 4) * L::fixed_atom + cw * 64 * 128 + (kk % 4) * 32, 16, 1024);
  };
  auto bdesc = [&](int r, int st, int kk) {
    return sm90::desc_sw128(sb + L::ring + st * L::stage + r * L::tile + (kk / 4) * L::ring_atom + (kk % 4) * 32, 16,
                            1024);
  };
  auto tdesc = [&](int r, int st, int kk) {
    return sm90::desc_sw128(sb + L::ring + st * L::stage + r * L::tile + kk * 16 * 128, L::ring_atom, 1024);
  };
  constexpr int fK = 0, fGK = 1, fV = 2, fGV = 3, rQ = 0, rGQ = 1, rDO = 2;

  if (total > 0) sm90::mbar_wait(sb + L::bar_fixed, 0);
  // (32-bit loop state: registers; Nq < 2^31 is checked at launch)
  int hq = 0, ti = 0;
  const int nt32 = int(nt), istart32 = int(istart), nq = int(p.nq);
  for (int64_t it = 0; it < total; ++it) {
    const int st = int(it & 1), ph = int((it >> 1) & 1);
    const int hcur = hq, i0 = istart32 + ti * TQ;
    if (++ti == nt32) {
      ti = 0;
      ++hq;
    }
    sm90::mbar_wait(sb + L::bar_full + 8 * st, ph);
    // (warpgroup-uniform) some row of the tile sees a key of this warpgroup (key_end grows with the row)
    if (kw0 < x0.key_end(std::min(i0 + TQ, nq) - 1)) {
      // Sᵀ = K Qᵀ, Gᵀ = K ĝQᵀ + ĝK Qᵀ, dPᵀ = V dOᵀ, Tᵀ = ĝV dOᵀ (the warpgroup's 64 keys x TQ rows)
      sm90::reg_fence(s);
      sm90::reg_fence(gg);
      if constexpr (kKMode) {
        sm90::reg_fence(dp);
        sm90::reg_fence(tt);
      }
      sm90::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, TQ>(s, adesc(fK, kk), bdesc(rQ, st, kk), kk > 0);
      // (both halves of Gᵀ unconditionally, an absent ĝQ or ĝK read as the zero tiles set up at the
      // start: a branch around them made ptxas serialise the wgmma chains of the v' pass, C7515)
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, TQ>(gg, adesc(fK, kk), bdesc(rGQ, st, kk), kk > 0);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, TQ>(gg, adesc(fGK, kk), bdesc(rQ, st, kk), true);
      if constexpr (kKMode) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, TQ>(dp, adesc(fV, kk), bdesc(rDO, st, kk), kk > 0);
        if (has_gv) {
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk)
            sm90::wgmma_ss<kBf16, TQ>(tt, adesc(fGV, kk), bdesc(rDO, st, kk), kk > 0);
        }
      }
      sm90::wgmma_commit();
      sm90::wgmma_wait<0>();
      sm90::reg_fence(s);
      sm90::reg_fence(gg);
      if constexpr (kKMode) {
        sm90::reg_fence(dp);
        sm90::reg_fence(tt);
      }
      const float* const lse_s = reinterpret_cast<const float*>(base + L::stats) + st * 3 * TQ;
      const float* const d_s = lse_s + TQ;
      const float* const c_s = lse_s + 2 * TQ;
      const int64_t qh = b * p.heads + hk * group + hcur;
      const float* const e_g = stt.e + qh * p.nq;  // E from the workspace (see the header)
      // the bias and ĝb of this query head (rows i, keys j: [i · Nk + j]); with a bias (−inf entries)
      // every element checks its row's lse
      const uint16_t* bias = nullptr;
      const uint16_t* gbias = nullptr;
      if constexpr (kBias) {
        const TcHead<uint16_t> xh = tc_head<uint16_t>(p, b, hk * group + hcur);
        bias = xh.bias;
        gbias = xh.gbias;
      }
      const bool whole = (!kBias || !bias) && i0 + TQ <= nq && x0.key_end(i0) >= kwarp + 16;
      // elementwise (element (key, query)), in place: s <- ḡSᵀ (k') , dp <- dSᵀ (k'), gg <- ḡdPᵀ (v')
#pragma unroll
      for (int e = 0; e < TQ / 2; ++e) {
        const int qc = 8 * (e >> 2) + 2 * t + (e & 1);
        const int i = i0 + qc;
        const int hr = (e >> 1) & 1;
        const bool vis = whole || (i < nq && jin[hr] && i >= jfirst[hr] && lse_s[qc] != -INFINITY);
        // (the no-bias variant keeps these two expressions as they are: equivalent rewrites of them
        // moved ptxas's k' spills at D = 128 from 24/72 to 128/220 bytes, nvcc 13.0)
        float P, G;
        if constexpr (!kBias) {
          P = vis ? exp2f(s[e] * sl2 - lse_s[qc]) : 0.f;
          G = vis && has_g ? gg[e] * scale : 0.f;
        } else {
          const int64_t at = int64_t(i) * x0.nk + kwarp + g + 8 * hr;
          float sv = s[e] * sl2;
          if (bias && vis) sv += kSm90bLog2e * Operand<E>::to_float(bias[at]);
          P = vis ? exp2f(sv - lse_s[qc]) : 0.f;
          G = vis && has_g ? gg[e] * scale : 0.f;
          if (gbias && vis) G += Operand<E>::to_float(gbias[at]);
        }
        if constexpr (kKMode) {
          const float T = vis && has_gv ? tt[e] : 0.f, dpv = vis ? dp[e] : 0.f;
          const float dd = d_s[qc];
          const float ee = vis ? e_g[i] : 0.f;
          s[e] = P * (T + G * (dpv - dd) - c_s[qc] * dpv - ee);  // ḡSᵀ
          dp[e] = P * (dpv - dd);                                // dSᵀ
        } else {
          gg[e] = P * (G - c_s[qc]);  // ḡdPᵀ
        }
      }
      // k' += ḡSᵀ Q + dSᵀ ĝQ;  v' += ḡdPᵀ dO
      if constexpr (kKMode) {
        sm90b_pack<E, TQ>(s, a1);
        sm90b_pack<E, TQ>(dp, a2);
      } else {
        sm90b_pack<E, TQ>(gg, a1);
      }
      sm90::reg_fence(acc);
      sm90::reg_fence(a1);
      if constexpr (kKMode) sm90::reg_fence(a2);
      sm90::wgmma_fence();
      if constexpr (kKMode) {
#pragma unroll
        for (int kk = 0; kk < TQ / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(acc, a1[kk], tdesc(rQ, st, kk));
        if (has_gq) {
#pragma unroll
          for (int kk = 0; kk < TQ / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(acc, a2[kk], tdesc(rGQ, st, kk));
        }
      } else {
#pragma unroll
        for (int kk = 0; kk < TQ / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(acc, a1[kk], tdesc(rDO, st, kk));
      }
      sm90::wgmma_commit();
      sm90::wgmma_wait<0>();
      sm90::reg_fence(acc);
      sm90::reg_fence(a1);
      if constexpr (kKMode) sm90::reg_fence(a2);
    }
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + L::bar_empty + 8 * st);
  }

  // k' = scale · acc, v' = acc (keys below Nk; those past L_b are zeros: every entry masked)
  sm90_store_tile<E, D>(outp + bk * p.nk * D, kwarp + g, p.nk, acc, kKMode ? scale : 1.f, t);
#else
  (void)p, (void)maps;
#if defined(__CUDA_ARCH__)
  __trap();
#endif
#endif
}

// ---- host side --------------------------------------------------------------------------------------
// Encodes the maps a pass reads; a null tensor's map stays zero (never read). 0 or KERNEL_UNSUPPORTED.
int sm90dd_maps(Sm90DdMaps* m, const void* const* ptrs, const int64_t* planes, const int64_t* rows,
                const int* box_rows, int n, int64_t d, bool bf16) {
  std::memset(m, 0, sizeof *m);
  for (int i = 0; i < n; ++i)
    if (ptrs[i] && tc_sm90_encode_map(&m->map[i], ptrs[i], planes[i], rows[i], d, box_rows[i], bf16))
      return KERNEL_UNSUPPORTED;
  return 0;
}

template <class E, int D>
int sm90_dd_dp(const AttentionParams& p, cudaStream_t stream) {
  using LQ = Sm90DdQueryLayout<D>;
  using LK = Sm90DdKeyLayout<D>;
  const bool qpass = p.cot_q != nullptr || p.cot_bias_full != nullptr, dopass = p.cot_dout != nullptr, kpass = p.cot_k != nullptr,
             vpass = p.cot_v != nullptr;
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (LQ::bytes > optin || ((kpass || vpass) && LK::bytes > optin)) return KERNEL_UNSUPPORTED;
  const bool bf16 = E::kBf16;
  const int64_t qp = p.batch * p.heads, kp = p.batch * p.kv_heads;
  const AttentionSecondInputs& g = p.second;
  // every map before any launch: a refusal leaves nothing done (tensor_core_dd.cu then runs its passes)
  Sm90DdMaps mq, mk;
  {
    const void* ptrs[7] = {p.q, g.q, p.dout, p.k, g.k, p.v, g.v};
    const int64_t planes[7] = {qp, qp, qp, kp, kp, kp, kp};
    const int64_t rows[7] = {p.nq, p.nq, p.nq, p.nk, p.nk, p.nk, p.nk};
    const int box[7] = {D9::kBlock, D9::kBlock, D9::kBlock, D9::kTile, D9::kTile, D9::kTile, D9::kTile};
    if (sm90dd_maps(&mq, ptrs, planes, rows, box, 7, D, bf16)) return KERNEL_UNSUPPORTED;
  }
  if (kpass || vpass) {
    const void* ptrs[7] = {p.k, g.k, p.v, g.v, p.q, g.q, p.dout};
    const int64_t planes[7] = {kp, kp, kp, kp, qp, qp, qp};
    const int64_t rows[7] = {p.nk, p.nk, p.nk, p.nk, p.nq, p.nq, p.nq};
    const int box[7] = {D9::kBlock, D9::kBlock, D9::kBlock, D9::kBlock, D9::kTile, D9::kTile, D9::kTile};
    if (sm90dd_maps(&mk, ptrs, planes, rows, box, 7, D, bf16)) return KERNEL_UNSUPPORTED;
  }
  const int64_t qblocks = qp * ((p.nq + D9::kBlock - 1) / D9::kBlock);
  const int64_t kblocks = kp * ((p.nk + D9::kBlock - 1) / D9::kBlock);
  const bool biased = p.bias || p.second.bias_full;
  // one pass, in the variant with or without the per-element bias reads
  auto launch = [&](auto no_bias, auto with_bias, int64_t blocks, size_t bytes, const Sm90DdMaps& m) {
    return tc_launch_n(biased ? with_bias : no_bias, blocks, D9::kThreads, bytes, stream, p, m);
  };
  if (int e = launch(tc_sm90_dd_query_kernel<E, D, kDdStats, false>, tc_sm90_dd_query_kernel<E, D, kDdStats, true>,
                     qblocks, LQ::bytes, mq))
    return e;
  if (qpass) {
    if (int e = launch(tc_sm90_dd_query_kernel<E, D, kDdQ, false>, tc_sm90_dd_query_kernel<E, D, kDdQ, true>, qblocks,
                       LQ::bytes, mq))
      return e;
  }
  if (dopass) {
    if (int e = launch(tc_sm90_dd_query_kernel<E, D, kDdDout, false>, tc_sm90_dd_query_kernel<E, D, kDdDout, true>,
                       qblocks, LQ::bytes, mq))
      return e;
  }
  if (kpass) {
    if (int e = launch(tc_sm90_dd_key_kernel<E, D, kDdK, false>, tc_sm90_dd_key_kernel<E, D, kDdK, true>, kblocks,
                       LK::bytes, mk))
      return e;
  }
  if (vpass) {
    if (int e = launch(tc_sm90_dd_key_kernel<E, D, kDdV, false>, tc_sm90_dd_key_kernel<E, D, kDdV, true>, kblocks,
                       LK::bytes, mk))
      return e;
  }
  return 0;
}

template <class E, int D>
int sm90_jvp_dp(const AttentionParams& p, cudaStream_t stream) {
  using LQ = Sm90DdQueryLayout<D>;
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (LQ::bytes > optin) return KERNEL_UNSUPPORTED;
  const int64_t qp = p.batch * p.heads, kp = p.batch * p.kv_heads;
  const AttentionSecondInputs& g = p.second;
  Sm90DdMaps mq;
  const void* ptrs[7] = {p.q, g.q, nullptr, p.k, g.k, p.v, g.v};  // (no dO)
  const int64_t planes[7] = {qp, qp, qp, kp, kp, kp, kp};
  const int64_t rows[7] = {p.nq, p.nq, p.nq, p.nk, p.nk, p.nk, p.nk};
  const int box[7] = {D9::kBlock, D9::kBlock, D9::kBlock, D9::kTile, D9::kTile, D9::kTile, D9::kTile};
  if (sm90dd_maps(&mq, ptrs, planes, rows, box, 7, D, E::kBf16)) return KERNEL_UNSUPPORTED;
  const int64_t qblocks = qp * ((p.nq + D9::kBlock - 1) / D9::kBlock);
  return tc_launch_n(p.bias || p.second.bias_full ? tc_sm90_dd_query_kernel<E, D, kDdJvp, true>
                                                  : tc_sm90_dd_query_kernel<E, D, kDdJvp, false>,
                     qblocks, D9::kThreads, LQ::bytes, stream, p, mq);
}

// What both entries need beyond their own pointers: a 9.0 device and a build with sm_90a code, the
// Hopper forward's dtypes and head dims, 32-bit row and plane counts, a GQA grouping, q, k, v and the
// second inputs 16-byte aligned (TMA sources)
bool sm90_second_applies(const AttentionParams& p) {
  auto a16 = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  return tc_sm90_built() && tc_sm90_device() && attention_tc_sm90_applies(p.dtype, p.d, p.dv, 9, 0) &&
         p.nq <= INT_MAX && p.nk <= INT_MAX && p.batch * p.heads <= INT_MAX && p.out && p.lse && p.heads >= 1 &&
         p.kv_heads >= 1 && p.heads % p.kv_heads == 0 && a16(p.q) && a16(p.k) && a16(p.v) && a16(p.second.q) &&
         a16(p.second.k) && a16(p.second.v);
}
bool aligned4(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 3) == 0; }

}  // namespace

int tc_sm90_jvp(const AttentionParams& p, void* stream) {
  // (O is read and tO written as pairs of 16-bit values)
  if (!sm90_second_applies(p) || !aligned4(p.out) || !aligned4(p.tan_out)) return KERNEL_UNSUPPORTED;
  const cudaStream_t s = as_stream(stream);
  if (p.d == 64) return p.dtype == MK_BF16 ? sm90_jvp_dp<Bf16, 64>(p, s) : sm90_jvp_dp<Fp16, 64>(p, s);
  return p.dtype == MK_BF16 ? sm90_jvp_dp<Bf16, 128>(p, s) : sm90_jvp_dp<Fp16, 128>(p, s);
}

int tc_sm90_backward_backward_passes(const AttentionParams& p, void* stream) {
  // (dO a TMA source; the outputs stored as pairs of 16-bit values)
  if (!sm90_second_applies(p) || !p.workspace || !p.dout || (reinterpret_cast<uintptr_t>(p.dout) & 15) ||
      !aligned4(p.cot_q) || !aligned4(p.cot_k) || !aligned4(p.cot_v) || !aligned4(p.cot_dout))
    return KERNEL_UNSUPPORTED;
  const cudaStream_t s = as_stream(stream);
  if (p.d == 64) return p.dtype == MK_BF16 ? sm90_dd_dp<Bf16, 64>(p, s) : sm90_dd_dp<Fp16, 64>(p, s);
  return p.dtype == MK_BF16 ? sm90_dd_dp<Bf16, 128>(p, s) : sm90_dd_dp<Fp16, 128>(p, s);
}

}  // namespace cuda
}  // namespace mk
