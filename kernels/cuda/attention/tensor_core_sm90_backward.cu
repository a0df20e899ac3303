// Softmax attention backward on Hopper (sm_90a): BF16 / F16, D = Dv in {64, 128}, warpgroup MMAs
// (wgmma) fed by TMA into 2-stage mbarrier rings, a producer and two consumer warpgroups (issue 10).
// The same function and entry as the v1 / v2 backwards of tensor_core.cu (which it falls back to
// elsewhere), and the same three phases, no atomics (every output element has one owner block:
// deterministic, the same bits on every run and for every subset of requested gradients):
//
//   preprocess  D = rowsum(dO ∘ O) (F32) into the workspace (tc_rowdot_kernel, as v1 / v2)
//   dQ pass     block (b, h, 128 query rows); each consumer warpgroup owns 64 rows. Q and dO are
//               loaded once by TMA; K and V tiles of BK keys come through the ring. Per tile:
//                 S = Q Kᵀ, dP = dO Vᵀ       m64nBKk16 wgmmas, both operands from shared (K-major)
//                 P = exp2(S·scale·log2e − lse·log2e), dS = P ∘ (dP − D)   in the accumulators
//                 dQ += dS K                 m64nDk16 wgmmas, dS from registers (the accumulator
//                                            layout is the A fragment), K MN-major (imm-trans-b)
//               The full dS (the bias gradient) is written here when asked.
//   dK/dV pass  block (b, KV head, 128 keys); each consumer warpgroup owns 64 keys. K and V are
//               loaded once; Q and dO tiles of TQ rows (and lse·log2e, D of those rows, written into
//               the stage by the producer warp) come through the ring, over every query head of the
//               KV head (GQA) from the first row that sees the block's first key. Per tile:
//                 Sᵀ = K Qᵀ, dPᵀ = V dOᵀ     m64nTQk16, K / V rows of the warpgroup as A (shared)
//                 Pᵀ, dSᵀ                    in the accumulators
//                 dV += Pᵀ dO, dK += dSᵀ Q   m64nDk16, Pᵀ / dSᵀ from registers, dO / Q MN-major
//               dK and dV stay in registers across the loop (64 + 64 per thread at D = 128).
//
// Tiles (Sm90BwdConfig; registers from ptxas: benchmarks/results/ptxas-attention-sm90-bwd-2026-12-05.txt).
// FlashAttention-3's Hopper backward takes, at head dim 128, 64 query rows x 128 keys per block with
// two MMA warpgroups of 64 keys each, Sᵀ / dPᵀ computed keys-major ("SdP_swapAB") and its dK, dV
// accumulators in registers; at head dim 64, 128 x 128. Its dQ is accumulated with atomics in the
// same kernel; ours is a separate pass (determinism), so the dK/dV consumers carry only dK, dV
// (D / 2 + D / 2 registers), Sᵀ and dPᵀ (TQ / 2 each) and the 16-bit Pᵀ, dSᵀ (TQ / 4 each):
//   dK/dV  TQ = 64 query rows per tile at D = 64 and 128 (D = 128: 128 + 64 + 32 accumulator and
//          fragment registers of the 240 a consumer has; TQ = 128 would need 288).
//   dQ     BK = 128 keys per tile at D = 64 (S, dP 64 + 64, dQ 32, dS 32), BK = 64 at D = 128
//          (S, dP 32 + 32, dQ 64, dS 16): the same budget reasoning.
// Within a warpgroup the products of a tile run in two commit groups (S and dP, then the register-A
// products) with no intra-warpgroup overlap (the forward's S_{j+1}-before-PV_j needs a second set of
// S / dP registers, which D = 128 has no room for); the two consumer warpgroups and the producer
// overlap each other.
//
// Key lengths: the dQ pass multiplies dS by K (dQ += dS K), so the one K tile that straddles L_b
// lands through a private mbarrier and its rows past L_b are zeroed by the producer warp (padding
// keys may hold anything, NaN included: 0 · NaN would poison dQ). Everywhere else masked entries of
// P and dS are set, not multiplied, to zero, so padding rows of K and V (as A operands in the dK/dV
// pass, as B of S and dP in the dQ pass) never reach a result. Keys past Nk and rows past Nq are the
// TMA's out-of-bounds zeros.
//
// Precision as v2 (F32 accumulation, exp2 in F32, P and dS rounded to 16 bit as A operands); the
// emulator test (emu.sm90.bwd) holds it to the criterion of the others: error <= 2x the naive
// 16-bit composition's.
//
// Builds as the forward (tensor_core_sm90.cu): the bodies exist only in the sm_90a device pass and
// in the host emulator; the dispatch runs them only on a 9.0 device of a build with sm_90a code.
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
#include "tensor_core_parts.cuh"
#include "tensor_core_sm90_parts.cuh"

#if defined(MK_CUDA_EMU) || MK_SM90_DEVICE
#define MK_SM90B_BODY 1
#else
#define MK_SM90B_BODY 0
#endif
#if !MK_SM90B_BODY && defined(__CUDA_ARCH__)
#pragma nv_diag_suppress 177
#endif

namespace mk {
namespace cuda {

// (tensor_core_sm90.cu) a [planes, rows, d] 16-bit tensor map with boxes of 64 columns x box_rows
// rows, 128-byte swizzle; 0 or KERNEL_UNSUPPORTED (no driver entry point, or the driver refuses)
int tc_sm90_encode_map(CUtensorMap* map, const void* base, int64_t planes, int64_t rows, int64_t d, int box_rows,
                       bool bf16);
// (tensor_core_sm90.cu) whether the current device has compute capability 9.0
bool tc_sm90_device();

namespace {

struct Sm90BwdTraits {
  static constexpr int kConsumers = 2;                           // consumer warpgroups
  static constexpr int kThreads = 128 * (1 + kConsumers);        // + the producer warpgroup
  static constexpr int kBlockQ = 64 * kConsumers;                // dQ pass: query rows per block
  static constexpr int kBlockKV = 64 * kConsumers;               // dK/dV pass: keys per block
  static constexpr int kStages = 2;                              // ring depth of both passes
  static constexpr int kProducerRegs = 24, kConsumerRegs = 240;  // setmaxnreg per role
};
using B9 = Sm90BwdTraits;
static_assert(B9::kStages == 2, "the ring indexing assumes two stages: stage it & 1, parity (it >> 1) & 1");
static_assert(B9::kProducerRegs * 128 + B9::kConsumerRegs * 128 * B9::kConsumers <= 65536,
              "the register budgets of the roles fit the SM's register file");

// BK: keys per K/V tile of the dQ pass; TQ: query rows per Q/dO tile of the dK/dV pass (see above)
template <int D>
struct Sm90BwdConfig;
template <>
struct Sm90BwdConfig<64> {
  static constexpr int BK = 128, TQ = 64;
};
template <>
struct Sm90BwdConfig<128> {
  static constexpr int BK = 64, TQ = 64;
};

// Byte offsets in the 1024-byte aligned shared block; a [rows, D] tile is D / 64 column atoms of
// [rows][64] 16-bit values (128-byte rows, the TMA's 128-byte swizzle).
template <int D, int BK>
struct Sm90DqLayout {
  static_assert(D == 64 || D == 128, "head dims 64 and 128");
  static constexpr int kAtoms = D / 64;
  static constexpr uint32_t q_atom = B9::kBlockQ * 128;
  static constexpr uint32_t q = 0;                       // Q  [D/64][128][64]
  static constexpr uint32_t dout = q + kAtoms * q_atom;  // dO [D/64][128][64]
  static constexpr uint32_t kv_atom = BK * 128;
  static constexpr uint32_t stage = kAtoms * kv_atom;
  static constexpr uint32_t k = dout + kAtoms * q_atom;      // K  [2][D/64][BK][64]
  static constexpr uint32_t v = k + B9::kStages * stage;     // V  [2][D/64][BK][64]
  static constexpr uint32_t bars = v + B9::kStages * stage;  // mbarriers, 8 bytes each
  static constexpr uint32_t bar_q = bars, bar_full = bars + 8, bar_empty = bars + 24, bar_ktmp = bars + 40;
  static constexpr size_t bytes = size_t(bars + 48) + 1024;  // + the alignment slack of the dynamic base
  static_assert(q_atom % 1024 == 0 && kv_atom % 1024 == 0, "swizzle atoms 1024-byte aligned");
};

template <int D, int TQ>
struct Sm90DkvLayout {
  static_assert(D == 64 || D == 128, "head dims 64 and 128");
  static_assert(TQ == 64 || TQ == 128, "the wgmma N of Sᵀ, dPᵀ");
  static constexpr int kAtoms = D / 64;
  static constexpr uint32_t k_atom = B9::kBlockKV * 128;
  static constexpr uint32_t k = 0;                    // K  [D/64][128][64]
  static constexpr uint32_t v = k + kAtoms * k_atom;  // V  [D/64][128][64]
  static constexpr uint32_t q_atom = TQ * 128;
  static constexpr uint32_t stage = kAtoms * q_atom;
  static constexpr uint32_t q = v + kAtoms * k_atom;             // Q  [2][D/64][TQ][64]
  static constexpr uint32_t dout = q + B9::kStages * stage;      // dO [2][D/64][TQ][64]
  static constexpr uint32_t stats = dout + B9::kStages * stage;  // F32 [2][lse·log2e, D][TQ]
  static constexpr uint32_t bars = stats + B9::kStages * 2 * TQ * 4;
  static constexpr uint32_t bar_kv = bars, bar_full = bars + 8, bar_empty = bars + 24;
  static constexpr size_t bytes = size_t(bars + 40) + 1024;
  static_assert(k_atom % 1024 == 0 && q_atom % 1024 == 0, "swizzle atoms 1024-byte aligned");
};

struct Sm90BwdMaps {
  CUtensorMap q, k, v, dout;  // [B·H, Nq, D], [B·Hkv, Nk, D], [B·Hkv, Nk, D], [B·H, Nq, D]
};

// ---- dQ pass -----------------------------------------------------------------------------------------
template <class E, int D, int BK>
__global__ void __launch_bounds__(B9::kThreads, 1)
    tc_sm90_backward_query_kernel(const AttentionParams p, const __grid_constant__ Sm90BwdMaps maps) {
#if MK_SM90B_BODY
  using L = Sm90DqLayout<D, BK>;
  using O = Operand<E>;
  constexpr bool kBf16 = E::kBf16;
  const uint32_t raw = sm90::smem_addr(mk_attention_smem);
  const uint32_t sb = (raw + 1023u) & ~1023u;
  unsigned char* const base = mk_attention_smem + (sb - raw);
  const int64_t tiles = (p.nq + B9::kBlockQ - 1) / B9::kBlockQ;
  const int64_t bh = blockIdx.x / tiles;
  int64_t qt = blockIdx.x % tiles;
  if (p.causal) qt = tiles - 1 - qt;  // the longest rows first
  const int64_t q0 = qt * B9::kBlockQ;
  const TcHead<uint16_t> x = tc_head<uint16_t>(p, bh / p.heads, bh % p.heads);
  const int R = int(std::min<int64_t>(B9::kBlockQ, p.nq - q0));
  const int64_t end = x.key_end(q0 + R - 1);  // the block's last row sees the most keys
  const int ntiles = int((end + BK - 1) / BK);
  const int wg = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32;

  sm90_ring_init(sb + L::bar_q, sb + L::bar_full, sb + L::bar_empty, sb + L::bar_ktmp, 4 * B9::kConsumers);
  __syncthreads();

  if (wg == 0) {
    // ---- producer -----------------------------------------------------------------------------------
    sm90::setmaxnreg_dec<B9::kProducerRegs>();
    if (warp != 0 || ntiles == 0) return;
    const bool leader = lane == 0;
    if (leader) {
      sm90::mbar_arrive_expect_tx(sb + L::bar_q, uint32_t(2 * L::kAtoms * L::q_atom));
      for (int a = 0; a < L::kAtoms; ++a) {
        sm90::tma_load_3d(sb + L::q + a * L::q_atom, &maps.q, 64 * a, int(q0), int(bh), sb + L::bar_q);
        sm90::tma_load_3d(sb + L::dout + a * L::q_atom, &maps.dout, 64 * a, int(q0), int(bh), sb + L::bar_q);
      }
    }
    // (32-bit state: the producer has 24 registers; Nq, Nk < 2^31 and B·Hkv < 2^31 are checked at launch)
    const int len = int(x.len), kh = int(x.kh);
    const bool padded = x.len < x.nk;
    int ktmp_uses = 0;
    for (int it = 0; it < ntiles; ++it) {
      const int st = it & 1;
      const int j0 = it * BK;
      const uint32_t kst = sb + L::k + st * L::stage, vst = sb + L::v + st * L::stage;
      const uint32_t full = sb + L::bar_full + 8 * st;
      if (it >= B9::kStages) sm90::mbar_wait(sb + L::bar_empty + 8 * st, ((it >> 1) & 1) ^ 1);
      if (padded && j0 + BK > len) {
        // the K tile that straddles the key length: land it, zero the rows past L_b, then publish
        if (leader) {
          sm90::mbar_arrive_expect_tx(sb + L::bar_ktmp, L::stage);
          for (int a = 0; a < L::kAtoms; ++a)
            sm90::tma_load_3d(kst + a * L::kv_atom, &maps.k, 64 * a, j0, kh, sb + L::bar_ktmp);
        }
        sm90::mbar_wait(sb + L::bar_ktmp, ktmp_uses & 1);
        ++ktmp_uses;
        sm90b_zero_rows(base + (kst - sb), L::kAtoms, L::kv_atom, BK, std::max(0, len - j0), lane);
        if (leader) {
          sm90::mbar_arrive_expect_tx(full, L::stage);
          for (int a = 0; a < L::kAtoms; ++a) sm90::tma_load_3d(vst + a * L::kv_atom, &maps.v, 64 * a, j0, kh, full);
        }
      } else if (leader) {
        sm90::mbar_arrive_expect_tx(full, 2 * L::stage);
        for (int a = 0; a < L::kAtoms; ++a) {
          sm90::tma_load_3d(kst + a * L::kv_atom, &maps.k, 64 * a, j0, kh, full);
          sm90::tma_load_3d(vst + a * L::kv_atom, &maps.v, 64 * a, j0, kh, full);
        }
      }
    }
    return;
  }

  // ---- consumers ------------------------------------------------------------------------------------
  sm90::setmaxnreg_inc<B9::kConsumerRegs>();
  const int cw = wg - 1;
  const int g = lane >> 2, t = lane & 3;
  const int64_t r0 = q0 + 64 * cw;    // this warpgroup's first row
  const int64_t w0 = r0 + 16 * warp;  // this warp's first row
  const int64_t row0 = w0 + g;        // this thread's rows: row0, row0 + 8
  const int wg_end = r0 < p.nq ? int(x.key_end(std::min<int64_t>(r0 + 63, p.nq - 1))) : 0;
  const int wtiles = std::min(ntiles, (wg_end + BK - 1) / BK);  // tiles some row of the warpgroup sees
  const int wfull = w0 < p.nq ? int(x.key_end(w0)) : 0;         // keys every row of the warp sees
  int kend[2];
  float lse2[2], drow[2];
  for (int h = 0; h < 2; ++h) {
    const int64_t i = row0 + 8 * h;
    const bool in = i < p.nq;
    lse2[h] = in ? x.lse[i] * kSm90bLog2e : 0.f;
    // a row whose lse is -inf (every key masked, also by -inf bias entries) has P = 0: no key
    kend[h] = in && lse2[h] != -INFINITY ? int(x.key_end(i)) : 0;
    drow[h] = in ? x.drow[i] : 0.f;
  }
  const float sl2 = float(p.scale) * kSm90bLog2e;
  const bool want_dq = p.grad_q != nullptr;
  uint16_t* const dsfull = static_cast<uint16_t*>(p.grad_bias_full);

  float dq[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dq[i] = 0.f;
  float s[BK / 2], dp[BK / 2];
  uint32_t da[BK / 16][4];

  // descriptors: Q, dO rows of this warpgroup (K-major), K and V of a stage as the B of S, dP
  // (K-major, N = keys), K of a stage as the B of dS K (MN-major: N = D in 64-column atoms kv_atom
  // apart, k = keys in 8-key groups 1024 bytes apart)
  auto adesc = [&](uint32_t tile, int kk) {
    return sm90::desc_sw128(sb + tile + (kk / 4) * L::q_atom + cw * 64 * 128 + (kk % 4) * 32, 16, 1024);
  };
  auto bdesc = [&](uint32_t tile, int st, int kk) {
    return sm90::desc_sw128(sb + tile + st * L::stage + (kk / 4) * L::kv_atom + (kk % 4) * 32, 16, 1024);
  };
  auto ktdesc = [&](int st, int kk) {
    return sm90::desc_sw128(sb + L::k + st * L::stage + kk * 16 * 128, L::kv_atom, 1024);
  };
  auto release = [&](int st) {  // this warp is done with the stage
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + L::bar_empty + 8 * st);
  };

  if (wtiles > 0) sm90::mbar_wait(sb + L::bar_q, 0);
  for (int it = 0; it < wtiles; ++it) {
    const int st = it & 1, ph = (it >> 1) & 1;
    const int j0 = it * BK;
    sm90::mbar_wait(sb + L::bar_full + 8 * st, ph);
    // S = Q Kᵀ, dP = dO Vᵀ (reg_fence before each wgmma.fence: see tensor_core_sm90.cu)
    sm90::reg_fence(s);
    sm90::reg_fence(dp);
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, BK>(s, adesc(L::q, kk), bdesc(L::k, st, kk), kk > 0);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, BK>(dp, adesc(L::dout, kk), bdesc(L::v, st, kk), kk > 0);
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
    sm90::reg_fence(s);
    sm90::reg_fence(dp);
    // dS = P ∘ (dP − D) into s; masked entries set to 0 (not multiplied: V past L_b may be NaN)
    if (!x.bias && j0 + BK <= wfull) {
#pragma unroll
      for (int i = 0; i < BK / 2; ++i) {
        const int hr = (i >> 1) & 1;
        s[i] = exp2f(s[i] * sl2 - lse2[hr]) * (dp[i] - drow[hr]);
      }
    } else {
#pragma unroll
      for (int i = 0; i < BK / 2; ++i) {
        const int hr = (i >> 1) & 1;
        const int j = j0 + 8 * (i >> 2) + 2 * t + (i & 1);
        float ds = 0.f;
        if (j < kend[hr]) {
          float v = s[i] * sl2;
          if (x.bias) v += kSm90bLog2e * O::to_float(x.bias[(row0 + 8 * hr) * x.nk + j]);
          ds = exp2f(v - lse2[hr]) * (dp[i] - drow[hr]);
        }
        s[i] = ds;
      }
    }
    if (dsfull) {  // the bias gradient: every entry of the tile's keys below Nk
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const int64_t i = row0 + 8 * hr;
        if (i >= p.nq) continue;
        uint16_t* const out = dsfull + (x.base + i) * p.nk;
#pragma unroll
        for (int nb = 0; nb < BK / 8; ++nb) {
          const int j = j0 + nb * 8 + 2 * t;
          if (j < p.nk) out[j] = O::from_float(s[4 * nb + 2 * hr]);
          if (j + 1 < p.nk) out[j + 1] = O::from_float(s[4 * nb + 2 * hr + 1]);
        }
      }
    }
    // dQ += dS K
    if (want_dq) {
      sm90b_pack<E, BK>(s, da);
      sm90::reg_fence(dq);
      sm90::reg_fence(da);
      sm90::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(dq, da[kk], ktdesc(st, kk));
      sm90::wgmma_commit();
      sm90::wgmma_wait<0>();
      sm90::reg_fence(dq);
      sm90::reg_fence(da);  // (dS was read by the wgmma until here)
    }
    release(st);
  }
  // tiles only the other warpgroup sees: wait for them (so that this warpgroup's arrivals on the
  // stage's empty barrier belong to its current phase) and release them
  for (int it = wtiles; it < ntiles; ++it) {
    const int st = it & 1, ph = (it >> 1) & 1;
    sm90::mbar_wait(sb + L::bar_full + 8 * st, ph);
    release(st);
  }

  // dQ = scale · acc
  uint16_t* const dqo = static_cast<uint16_t*>(p.grad_q);
  if (!dqo) return;
  sm90_store_tile<E, D>(dqo + x.base * D, row0, p.nq, dq, float(p.scale), t);
#else
  (void)p, (void)maps;
#if defined(__CUDA_ARCH__)
  __trap();  // (launched from code without the sm_90a body, e.g. a JIT of the compute_90 PTX: fail, not skip)
#endif
#endif
}

// ---- dK/dV pass ----------------------------------------------------------------------------------------
template <class E, int D, int TQ>
__global__ void __launch_bounds__(B9::kThreads, 1)
    tc_sm90_backward_key_kernel(const AttentionParams p, const __grid_constant__ Sm90BwdMaps maps) {
#if MK_SM90B_BODY
  using L = Sm90DkvLayout<D, TQ>;
  using O = Operand<E>;
  constexpr bool kBf16 = E::kBf16;
  const uint32_t raw = sm90::smem_addr(mk_attention_smem);
  const uint32_t sb = (raw + 1023u) & ~1023u;
  unsigned char* const base = mk_attention_smem + (sb - raw);
  const int64_t tiles = (p.nk + B9::kBlockKV - 1) / B9::kBlockKV;
  const int64_t bk = blockIdx.x / tiles, k0 = (blockIdx.x % tiles) * B9::kBlockKV;
  const int64_t b = bk / p.kv_heads, hk = bk % p.kv_heads, group = p.heads / p.kv_heads;
  const int64_t len = p.key_lengths ? p.key_lengths[b] : p.nk;
  if (k0 >= len || (!p.grad_k && !p.grad_v)) return;  // padding keys: gradients stay 0 (as v1, v2)
  // the masks (len, offset, causal) are those of the batch entry: the same for every query head
  const TcHead<uint16_t> x0 = tc_head<uint16_t>(p, b, hk * group);
  const int64_t istart = (x0.first_row(k0) / TQ) * TQ;
  const int64_t nt = istart < p.nq ? (p.nq - istart + TQ - 1) / TQ : 0;  // query tiles per head
  const int64_t total = group * nt;
  const int wg = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32;

  sm90_ring_init(sb + L::bar_kv, sb + L::bar_full, sb + L::bar_empty, 0, 4 * B9::kConsumers);
  __syncthreads();

  if (wg == 0) {
    // ---- producer: K, V once; per tile Q, dO by TMA and lse·log2e, D by the warp's lanes ------------
    sm90::setmaxnreg_dec<B9::kProducerRegs>();
    if (warp != 0 || total == 0) return;
    const bool leader = lane == 0;
    if (leader) {
      sm90::mbar_arrive_expect_tx(sb + L::bar_kv, uint32_t(2 * L::kAtoms * L::k_atom));
      for (int a = 0; a < L::kAtoms; ++a) {
        sm90::tma_load_3d(sb + L::k + a * L::k_atom, &maps.k, 64 * a, int(k0), int(bk), sb + L::bar_kv);
        sm90::tma_load_3d(sb + L::v + a * L::k_atom, &maps.v, 64 * a, int(k0), int(bk), sb + L::bar_kv);
      }
    }
    const float* const lse = static_cast<const float*>(p.lse);
    const float* const drow = static_cast<const float*>(p.workspace);
    int64_t hq = 0, ti = 0;
    for (int64_t it = 0; it < total; ++it) {
      const int st = int(it & 1);
      const int64_t qh = b * p.heads + hk * group + hq, i0 = istart + ti * TQ;
      if (++ti == nt) {
        ti = 0;
        ++hq;
      }
      if (it >= B9::kStages) sm90::mbar_wait(sb + L::bar_empty + 8 * st, uint32_t(((it >> 1) & 1) ^ 1));
      float* const stats = reinterpret_cast<float*>(base + L::stats) + st * 2 * TQ;
      for (int r = lane; r < TQ; r += 32) {
        const int64_t i = i0 + r;
        stats[r] = i < p.nq ? lse[qh * p.nq + i] * kSm90bLog2e : 0.f;
        stats[TQ + r] = i < p.nq ? drow[qh * p.nq + i] : 0.f;
      }
      __syncwarp();  // (the leader's arrival publishes the lanes' writes)
      if (leader) {
        const uint32_t full = sb + L::bar_full + 8 * st;
        sm90::mbar_arrive_expect_tx(full, 2 * L::stage);
        for (int a = 0; a < L::kAtoms; ++a) {
          sm90::tma_load_3d(sb + L::q + st * L::stage + a * L::q_atom, &maps.q, 64 * a, int(i0), int(qh), full);
          sm90::tma_load_3d(sb + L::dout + st * L::stage + a * L::q_atom, &maps.dout, 64 * a, int(i0), int(qh), full);
        }
      }
    }
    return;
  }

  // ---- consumers ------------------------------------------------------------------------------------
  sm90::setmaxnreg_inc<B9::kConsumerRegs>();
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
  const float sl2 = float(p.scale) * kSm90bLog2e;
  const bool want_k = p.grad_k != nullptr, want_v = p.grad_v != nullptr;

  float dk[D / 2], dvv[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dk[i] = dvv[i] = 0.f;
  float s[TQ / 2], dp[TQ / 2];
  uint32_t pa[TQ / 16][4], da[TQ / 16][4];

  // descriptors: K, V rows of this warpgroup (A, K-major); Q, dO of a stage as the B of Sᵀ, dPᵀ
  // (K-major, N = queries) and of dK, dV (MN-major: N = D in 64-column atoms q_atom apart, k =
  // queries in 8-row groups 1024 bytes apart)
  auto adesc = [&](uint32_t tile, int kk) {
    return sm90::desc_sw128(sb + tile + (kk / 4) * L::k_atom + cw * 64 * 128 + (kk % 4) * 32, 16, 1024);
  };
  auto bdesc = [&](uint32_t tile, int st, int kk) {
    return sm90::desc_sw128(sb + tile + st * L::stage + (kk / 4) * L::q_atom + (kk % 4) * 32, 16, 1024);
  };
  auto tdesc = [&](uint32_t tile, int st, int kk) {
    return sm90::desc_sw128(sb + tile + st * L::stage + kk * 16 * 128, L::q_atom, 1024);
  };

  if (total > 0) sm90::mbar_wait(sb + L::bar_kv, 0);
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
      // Sᵀ = K Qᵀ, dPᵀ = V dOᵀ (the warpgroup's 64 keys x TQ queries)
      sm90::reg_fence(s);
      sm90::reg_fence(dp);
      sm90::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, TQ>(s, adesc(L::k, kk), bdesc(L::q, st, kk), kk > 0);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        sm90::wgmma_ss<kBf16, TQ>(dp, adesc(L::v, kk), bdesc(L::dout, st, kk), kk > 0);
      sm90::wgmma_commit();
      sm90::wgmma_wait<0>();
      sm90::reg_fence(s);
      sm90::reg_fence(dp);
      // Pᵀ into s, dSᵀ = Pᵀ ∘ (dPᵀ − D) into dp (element (key, query)); masked entries set to 0
      const float* const lse_s = reinterpret_cast<const float*>(base + L::stats) + st * 2 * TQ;
      const float* const d_s = lse_s + TQ;
      const uint16_t* const bias = p.bias ? tc_head<uint16_t>(p, b, hk * group + hcur).bias : nullptr;
      if (!bias && i0 + TQ <= nq && x0.key_end(i0) >= kwarp + 16) {
#pragma unroll
        for (int e = 0; e < TQ / 2; ++e) {
          const int qc = 8 * (e >> 2) + 2 * t + (e & 1);
          const float pv = exp2f(s[e] * sl2 - lse_s[qc]);
          s[e] = pv;
          dp[e] = pv * (dp[e] - d_s[qc]);
        }
      } else {
#pragma unroll
        for (int e = 0; e < TQ / 2; ++e) {
          const int qc = 8 * (e >> 2) + 2 * t + (e & 1);
          const int i = i0 + qc;
          const int hr = (e >> 1) & 1;
          float pv = 0.f, ds = 0.f;
          if (i < nq && jin[hr] && i >= jfirst[hr] && lse_s[qc] != -INFINITY) {  // (lse -inf: no key, P = 0)
            float v = s[e] * sl2;
            if (bias) v += kSm90bLog2e * O::to_float(bias[int64_t(i) * x0.nk + kwarp + g + 8 * hr]);
            pv = exp2f(v - lse_s[qc]);
            ds = pv * (dp[e] - d_s[qc]);
          }
          s[e] = pv;
          dp[e] = ds;
        }
      }
      // dV += Pᵀ dO, dK += dSᵀ Q (only those asked for; ptxas adds a warpgroup.arrive around these
      // branches (C7519). Issuing both unconditionally removes that note but spills 172 bytes at
      // D = 128 (nvcc 13.0, 2026-12-05), so the branches stay.)
      sm90b_pack<E, TQ>(s, pa);
      sm90b_pack<E, TQ>(dp, da);
      sm90::reg_fence(dvv);
      sm90::reg_fence(dk);
      sm90::reg_fence(pa);
      sm90::reg_fence(da);
      sm90::wgmma_fence();
      if (want_v) {
#pragma unroll
        for (int kk = 0; kk < TQ / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(dvv, pa[kk], tdesc(L::dout, st, kk));
      }
      if (want_k) {
#pragma unroll
        for (int kk = 0; kk < TQ / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(dk, da[kk], tdesc(L::q, st, kk));
      }
      sm90::wgmma_commit();
      sm90::wgmma_wait<0>();
      sm90::reg_fence(dvv);
      sm90::reg_fence(dk);
      sm90::reg_fence(pa);
      sm90::reg_fence(da);
    }
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + L::bar_empty + 8 * st);
  }

  // dK = scale · acc, dV = acc (keys below Nk; those past L_b are zeros: every entry masked)
  if (want_k) sm90_store_tile<E, D>(static_cast<uint16_t*>(p.grad_k) + bk * p.nk * D, kwarp + g, p.nk, dk, float(p.scale), t);
  if (want_v) sm90_store_tile<E, D>(static_cast<uint16_t*>(p.grad_v) + bk * p.nk * D, kwarp + g, p.nk, dvv, 1.f, t);
#else
  (void)p, (void)maps;
#if defined(__CUDA_ARCH__)
  __trap();  // (launched from code without the sm_90a body, e.g. a JIT of the compute_90 PTX: fail, not skip)
#endif
#endif
}

// ---- host side --------------------------------------------------------------------------------------
template <class E, int D>
int sm90_backward_dp(const AttentionParams& p, cudaStream_t stream) {
  using C = Sm90BwdConfig<D>;
  using LQ = Sm90DqLayout<D, C::BK>;
  using LK = Sm90DkvLayout<D, C::TQ>;
  const bool query_pass = p.grad_q || p.grad_bias_full, key_pass = p.grad_k || p.grad_v;
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if ((query_pass && LQ::bytes > optin) || (key_pass && LK::bytes > optin)) return KERNEL_UNSUPPORTED;
  const bool bf16 = E::kBf16;
  // every map before any launch: a refusal leaves nothing half done (the caller then runs v2)
  Sm90BwdMaps mq, mk;
  std::memset(&mq, 0, sizeof mq);
  std::memset(&mk, 0, sizeof mk);
  const int64_t qplanes = p.batch * p.heads, kplanes = p.batch * p.kv_heads;
  if (query_pass && (tc_sm90_encode_map(&mq.q, p.q, qplanes, p.nq, D, B9::kBlockQ, bf16) ||
                     tc_sm90_encode_map(&mq.dout, p.dout, qplanes, p.nq, D, B9::kBlockQ, bf16) ||
                     tc_sm90_encode_map(&mq.k, p.k, kplanes, p.nk, D, C::BK, bf16) ||
                     tc_sm90_encode_map(&mq.v, p.v, kplanes, p.nk, D, C::BK, bf16)))
    return KERNEL_UNSUPPORTED;
  if (key_pass && (tc_sm90_encode_map(&mk.q, p.q, qplanes, p.nq, D, C::TQ, bf16) ||
                   tc_sm90_encode_map(&mk.dout, p.dout, qplanes, p.nq, D, C::TQ, bf16) ||
                   tc_sm90_encode_map(&mk.k, p.k, kplanes, p.nk, D, B9::kBlockKV, bf16) ||
                   tc_sm90_encode_map(&mk.v, p.v, kplanes, p.nk, D, B9::kBlockKV, bf16)))
    return KERNEL_UNSUPPORTED;
  // preprocess: D = rowsum(dO ∘ O) (F32) into the workspace (v1's kernel)
  using Raw = typename Operand<E>::Raw;
  const int64_t rows = p.batch * p.heads * p.nq;
  const int64_t rblocks = std::min<int64_t>((rows + TT::kWarps - 1) / TT::kWarps, 65535LL * 32);
  if (int e = tc_launch(tc_rowdot_kernel<E>, rblocks, 0, stream, rows, int(p.dv), static_cast<const Raw*>(p.out),
                        static_cast<const Raw*>(p.dout), static_cast<float*>(p.workspace)))
    return e;
  if (query_pass) {
    const int64_t blocks = qplanes * ((p.nq + B9::kBlockQ - 1) / B9::kBlockQ);
    if (int e = tc_launch_n(tc_sm90_backward_query_kernel<E, D, C::BK>, blocks, B9::kThreads, LQ::bytes, stream, p, mq))
      return e;
  }
  if (key_pass) {
    const int64_t blocks = kplanes * ((p.nk + B9::kBlockKV - 1) / B9::kBlockKV);
    if (int e = tc_launch_n(tc_sm90_backward_key_kernel<E, D, C::TQ>, blocks, B9::kThreads, LK::bytes, stream, p, mk))
      return e;
  }
  return 0;
}

}  // namespace

int tc_sm90_backward(const AttentionParams& p, void* stream) {
  auto aligned = [](const void* ptr, uintptr_t a) { return (reinterpret_cast<uintptr_t>(ptr) & (a - 1)) == 0; };
  if (!tc_sm90_built() || !tc_sm90_device()) return KERNEL_UNSUPPORTED;
  if (!attention_tc_sm90_applies(p.dtype, p.d, p.dv, 9, 0)) return KERNEL_UNSUPPORTED;
  if (p.nq > INT_MAX || p.nk > INT_MAX || p.batch * p.heads > INT_MAX) return KERNEL_UNSUPPORTED;
  if (!p.workspace || !p.out || !p.dout || !p.lse) return KERNEL_UNSUPPORTED;
  // TMA sources 16-byte aligned; the gradients are stored as pairs of 16-bit values
  if (!aligned(p.q, 16) || !aligned(p.k, 16) || !aligned(p.v, 16) || !aligned(p.dout, 16) || !aligned(p.grad_q, 4) ||
      !aligned(p.grad_k, 4) || !aligned(p.grad_v, 4))
    return KERNEL_UNSUPPORTED;
  const cudaStream_t s = as_stream(stream);
  if (p.d == 64) return p.dtype == MK_BF16 ? sm90_backward_dp<Bf16, 64>(p, s) : sm90_backward_dp<Fp16, 64>(p, s);
  return p.dtype == MK_BF16 ? sm90_backward_dp<Bf16, 128>(p, s) : sm90_backward_dp<Fp16, 128>(p, s);
}

}  // namespace cuda
}  // namespace mk
