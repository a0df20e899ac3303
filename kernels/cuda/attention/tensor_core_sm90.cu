// Softmax attention forward on Hopper (sm_90a): BF16 / F16, D = Dv in {64, 128}, warpgroup MMAs
// (wgmma) fed by TMA into a 2-stage shared ring, producer / consumer warp specialisation (issue 10).
// The same function as the v1 / v2 forwards of tensor_core.cu (which it falls back to elsewhere):
//
//   S = scale q kᵀ + bias (masked)   P = softmax(S)   O = P v   lse = logsumexp(S)  (F32)
//   q: [B, H, Nq, D]   k: [B, Hkv, Nk, D]   v: [B, Hkv, Nk, D]   16-bit, contiguous
//   masks (causal, key lengths), bias and GQA as in mk/attention.h
//
// Block: (b, h, 128 query rows), 3 warpgroups (384 threads):
//   warpgroup 0, the producer: its registers lowered to 24 (setmaxnreg); one thread of warp 0
//     loads Q once and the K and V tiles (128 keys each) by TMA (cp.async.bulk.tensor, 3D tensor
//     maps [B·H(kv), N, D] built on the host, 64-column boxes, 128-byte swizzle) into a 2-stage
//     ring: K and V of a stage each complete on their own mbarrier ("full"), and a stage is reused
//     once the 8 consumer warps have arrived on its "empty" mbarrier.
//   warpgroups 1 and 2, the consumers: registers raised to 240; each owns 64 query rows.
//     S = Q Kᵀ: m64n128k16 wgmmas, Q and K from shared memory through descriptors (K-major).
//     O += P V: m64nDk16 wgmmas, P from registers (the S accumulators rounded to 16 bit: the wgmma
//     accumulator layout per warp is the m16n8 one, so it is the A fragment with no shuffles), V
//     from shared memory MN-major (imm-trans-b).
//     Overlap (as FlashAttention-3's intra-warpgroup pipelining): S of tile j + 1 is issued before
//     O += P_j V_j, and the softmax of tile j + 1 (in F32, in the score registers) runs while that
//     product is in flight; O is rescaled and P_{j+1} rounded to 16 bit once it has landed.
// Key lengths: keys past L_b are masked in the scores, and the one V tile that straddles L_b is
// landed through a private mbarrier and its rows past L_b zeroed by the producer warp before the
// consumers see it (padding keys may hold anything, NaN included: 0 · NaN would poison O).
// Keys past Nk and query rows past Nq are the TMA's out-of-bounds zeros.
//
// Precision as v2 (F32 accumulation, softmax in F32 with exp2, P rounded to 16 bit); the emulator
// test holds it to the same criterion (error <= 2x the naive 16-bit composition's).
//
// Builds: the body exists only in the sm_90a device pass (MK_SM90_DEVICE) and in the host emulator;
// the sm_80 and compute_90 passes compile an empty kernel that the dispatch never launches: it runs
// the kernel only on a device of compute capability 9.0 and only when the library was built with
// 90a machine code (MK_CUDA_SM90A, cmake/CMakeLists.txt).
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
#define MK_SM90_BODY 1
#else
#define MK_SM90_BODY 0
#endif
#if !MK_SM90_BODY && defined(__CUDA_ARCH__)
// (the sm_80 and compute_90 passes compile an empty kernel: its helpers are unused there)
#pragma nv_diag_suppress 177
#endif

namespace mk {
namespace cuda {
namespace {

struct Sm90Traits {
  static constexpr int kConsumers = 2;                           // consumer warpgroups
  static constexpr int kThreads = 128 * (1 + kConsumers);        // + the producer warpgroup
  static constexpr int kBlockQ = 64 * kConsumers;                // query rows per block
  static constexpr int kBlockK = 128;                            // keys per K/V tile
  static constexpr int kStages = 2;                              // K/V ring depth
  static constexpr int kProducerRegs = 24, kConsumerRegs = 240;  // setmaxnreg per role
};
using S9 = Sm90Traits;
static_assert(S9::kStages == 2, "the ring indexing assumes two stages: stage it & 1, parity (it >> 1) & 1");
static_assert(S9::kProducerRegs * 128 + S9::kConsumerRegs * 128 * S9::kConsumers <= 65536,
              "the register budgets of the roles fit the SM's register file");

// Byte offsets in the 1024-byte aligned shared block. A [rows, D] tile is D / 64 column atoms of
// [rows][64] 16-bit values (128-byte rows, the TMA's 128-byte swizzle), rows * 128 bytes apart.
template <int D>
struct Sm90Layout {
  static_assert(D == 64 || D == 128, "head dims 64 and 128");
  static constexpr int kAtoms = D / 64;
  static constexpr uint32_t q = 0;  // Q [D/64][128][64]
  static constexpr uint32_t q_atom = S9::kBlockQ * 128;
  static constexpr uint32_t k = q + kAtoms * q_atom;  // K [2][D/64][BK][64]
  static constexpr uint32_t kv_atom = S9::kBlockK * 128;
  static constexpr uint32_t stage = kAtoms * kv_atom;
  static constexpr uint32_t v = k + S9::kStages * stage;     // V [2][D/64][BK][64]
  static constexpr uint32_t bars = v + S9::kStages * stage;  // mbarriers, 8 bytes each
  static constexpr uint32_t bar_q = bars, bar_kfull = bars + 8, bar_vfull = bars + 24, bar_empty = bars + 40,
                            bar_vtmp = bars + 56;
  static constexpr uint32_t used = bars + 64;
  static constexpr size_t bytes = size_t(used) + 1024;  // + the alignment slack of the dynamic base
  static_assert(q_atom % 1024 == 0 && kv_atom % 1024 == 0, "swizzle atoms 1024-byte aligned");
};

struct Sm90Maps {
  CUtensorMap q, k, v;  // [B·H, Nq, D], [B·Hkv, Nk, D], [B·Hkv, Nk, D]; boxes 64 x rows x 1
};

constexpr float kSm90Log2e = 1.4426950408889634f;
constexpr float kSm90Ln2 = 0.6931471805599453f;

__device__ __forceinline__ float sm90_quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

// The softmax of one score tile in place: s (the m64n128 accumulators of this thread: rows g, g + 8
// of its warp, keys 8i + 2t + {0, 1}) becomes P = exp2(S - m) in F32; m, l the running row max (log2
// units) and sum; corr the factor O must take. (P is rounded to 16 bit by sm90b_pack once the
// previous P V product, which reads the A registers, has landed: FlashAttention-3's order, which
// keeps one 16-bit copy of P live.)
template <class E, int BK>
__device__ __forceinline__ void sm90_softmax(float (&s)[BK / 2], float (&m)[2], float (&l)[2], float (&corr)[2],
                                             const TcHead<uint16_t>& x, int64_t row0, int j0, bool full,
                                             const int (&kend)[2], int t, float sl2) {
  using O = Operand<E>;
  float mx[2] = {-INFINITY, -INFINITY};
  if (full) {
#pragma unroll
    for (int i = 0; i < BK / 8; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        s[4 * i + r] *= sl2;
        mx[r >> 1] = fmaxf(mx[r >> 1], s[4 * i + r]);
      }
  } else {
#pragma unroll
    for (int i = 0; i < BK / 8; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int hr = r >> 1;
        const int j = j0 + 8 * i + 2 * t + (r & 1);
        float v = -INFINITY;
        if (j < kend[hr]) {
          v = s[4 * i + r] * sl2;
          if (x.bias) v += kSm90Log2e * O::to_float(x.bias[(row0 + 8 * hr) * x.nk + j]);
        }
        s[4 * i + r] = v;
        mx[hr] = fmaxf(mx[hr], v);
      }
  }
  float base[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float mn = fmaxf(m[hr], sm90_quad_max(mx[hr]));
    base[hr] = mn == -INFINITY ? 0.f : mn;
    corr[hr] = exp2f(m[hr] - base[hr]);
    m[hr] = mn;
    l[hr] *= corr[hr];
  }
#pragma unroll
  for (int i = 0; i < BK / 8; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const float pv = exp2f(s[4 * i + r] - base[r >> 1]);
      s[4 * i + r] = pv;
      l[r >> 1] += pv;
    }
}

template <class E, int D>
__global__ void __launch_bounds__(S9::kThreads, 1)
    tc_sm90_forward_kernel(const AttentionParams p, const __grid_constant__ Sm90Maps maps) {
#if MK_SM90_BODY
  using L = Sm90Layout<D>;
  constexpr int BK = S9::kBlockK;
  constexpr bool kBf16 = E::kBf16;
  // the 1024-byte aligned base (the 128-byte swizzle repeats every 1024 bytes)
  const uint32_t raw = sm90::smem_addr(mk_attention_smem);
  const uint32_t sb = (raw + 1023u) & ~1023u;
  unsigned char* const base = mk_attention_smem + (sb - raw);
  const int64_t tiles = (p.nq + S9::kBlockQ - 1) / S9::kBlockQ;
  const int64_t bh = blockIdx.x / tiles;
  int64_t qt = blockIdx.x % tiles;
  if (p.causal) qt = tiles - 1 - qt;  // the longest rows first
  const int64_t q0 = qt * S9::kBlockQ;
  const TcHead<uint16_t> x = tc_head<uint16_t>(p, bh / p.heads, bh % p.heads);
  const int R = int(std::min<int64_t>(S9::kBlockQ, p.nq - q0));
  const int64_t end = x.key_end(q0 + R - 1);  // the block's last row sees the most keys
  const int ntiles = int((end + BK - 1) / BK);
  const int wg = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32;

  if (threadIdx.x == 0) {
    sm90::mbar_init(sb + L::bar_q, 1);
    for (int s = 0; s < S9::kStages; ++s) {
      sm90::mbar_init(sb + L::bar_kfull + 8 * s, 1);
      sm90::mbar_init(sb + L::bar_vfull + 8 * s, 1);
      sm90::mbar_init(sb + L::bar_empty + 8 * s, 4 * S9::kConsumers);  // one arrival per consumer warp
    }
    sm90::mbar_init(sb + L::bar_vtmp, 1);
    sm90::mbar_init_fence();
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer -----------------------------------------------------------------------------------
    sm90::setmaxnreg_dec<S9::kProducerRegs>();
    if (warp != 0 || ntiles == 0) return;
    const bool leader = lane == 0;
    if (leader) {
      sm90::mbar_arrive_expect_tx(sb + L::bar_q, uint32_t(L::kAtoms * L::q_atom));
      for (int a = 0; a < L::kAtoms; ++a)
        sm90::tma_load_3d(sb + L::q + a * L::q_atom, &maps.q, 64 * a, int(q0), int(bh), sb + L::bar_q);
    }
    int vtmp_uses = 0;
    for (int it = 0; it < ntiles; ++it) {
      const int st = it & 1;
      const int j0 = it * BK;
      const uint32_t kst = sb + L::k + st * L::stage, vst = sb + L::v + st * L::stage;
      if (it >= S9::kStages) sm90::mbar_wait(sb + L::bar_empty + 8 * st, ((it >> 1) & 1) ^ 1);
      if (leader) {
        sm90::mbar_arrive_expect_tx(sb + L::bar_kfull + 8 * st, L::stage);
        for (int a = 0; a < L::kAtoms; ++a)
          sm90::tma_load_3d(kst + a * L::kv_atom, &maps.k, 64 * a, j0, int(x.kh), sb + L::bar_kfull + 8 * st);
      }
      if (x.len < x.nk && j0 + BK > x.len) {
        // the tile that straddles the key length: land it, zero the rows past L_b, then publish
        if (leader) {
          sm90::mbar_arrive_expect_tx(sb + L::bar_vtmp, L::stage);
          for (int a = 0; a < L::kAtoms; ++a)
            sm90::tma_load_3d(vst + a * L::kv_atom, &maps.v, 64 * a, j0, int(x.kh), sb + L::bar_vtmp);
        }
        sm90::mbar_wait(sb + L::bar_vtmp, vtmp_uses & 1);
        ++vtmp_uses;
        const int keep = int(std::max<int64_t>(0, x.len - j0));
        for (int idx = lane; idx < L::kAtoms * (BK - keep) * 8; idx += 32) {
          const int a = idx / ((BK - keep) * 8), rest = idx % ((BK - keep) * 8);
          const int row = keep + rest / 8, chunk = rest % 8;  // whole rows: the swizzle permutes within a row
          *reinterpret_cast<uint4*>(base + (vst - sb) + a * L::kv_atom + row * 128 + chunk * 16) = uint4{0, 0, 0, 0};
        }
        sm90::fence_proxy_async();  // these generic writes before the consumers' wgmma (async proxy) reads
        __syncwarp();
        if (leader) sm90::mbar_arrive(sb + L::bar_vfull + 8 * st);
      } else if (leader) {
        sm90::mbar_arrive_expect_tx(sb + L::bar_vfull + 8 * st, L::stage);
        for (int a = 0; a < L::kAtoms; ++a)
          sm90::tma_load_3d(vst + a * L::kv_atom, &maps.v, 64 * a, j0, int(x.kh), sb + L::bar_vfull + 8 * st);
      }
    }
    return;
  }

  // ---- consumers ------------------------------------------------------------------------------------
  sm90::setmaxnreg_inc<S9::kConsumerRegs>();
  const int cw = wg - 1;
  const int g = lane >> 2, t = lane & 3;
  const int64_t r0 = q0 + 64 * cw;    // this warpgroup's first row
  const int64_t w0 = r0 + 16 * warp;  // this warp's first row
  const int64_t row0 = w0 + g;        // this thread's rows: row0, row0 + 8
  const int wg_end = r0 < p.nq ? int(x.key_end(std::min<int64_t>(r0 + 63, p.nq - 1))) : 0;
  const int wtiles = std::min(ntiles, (wg_end + BK - 1) / BK);  // tiles some row of the warpgroup sees
  const int wfull = w0 < p.nq ? int(x.key_end(w0)) : 0;         // keys every row of the warp sees
  int kend[2];
  for (int h = 0; h < 2; ++h) kend[h] = row0 + 8 * h < p.nq ? int(x.key_end(row0 + 8 * h)) : 0;
  const float sl2 = float(p.scale) * kSm90Log2e;

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float s[BK / 2];
  uint32_t pa[BK / 16][4];

  // descriptors: Q rows of this warpgroup (K-major, 8-row groups 1024 bytes apart), K of a stage
  // (K-major), V of a stage (MN-major: 64-column atoms kv_atom apart, 8-key groups 1024 apart)
  auto qdesc = [&](int kk) {
    return sm90::desc_sw128(sb + L::q + (kk / 4) * L::q_atom + cw * 64 * 128 + (kk % 4) * 32, 16, 1024);
  };
  auto kdesc = [&](int st, int kk) {
    return sm90::desc_sw128(sb + L::k + st * L::stage + (kk / 4) * L::kv_atom + (kk % 4) * 32, 16, 1024);
  };
  auto vdesc = [&](int st, int kk) {
    return sm90::desc_sw128(sb + L::v + st * L::stage + kk * 16 * 128, L::kv_atom, 1024);
  };
  // reg_fence before each wgmma.fence: the register writes of s, o and P (softmax, o *= corr,
  // pack) are issued before the fence, not sunk between it and the wgmma (PTX: registers an
  // in-flight wgmma accesses must not be written after the fence)
  // reg_fence before each wgmma.fence: the register writes of s, o and P (softmax, o *= corr,
  // pack) are issued before the fence, not sunk between it and the wgmma (PTX: registers an
  // in-flight wgmma accesses must not be written after the fence)
  auto issue_s = [&](int st) {
    sm90::reg_fence(s);
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) sm90::wgmma_ss<kBf16, BK>(s, qdesc(kk), kdesc(st, kk), kk > 0);
    sm90::wgmma_commit();
  };
  auto issue_pv = [&](int st) {
    sm90::reg_fence(o);
    sm90::reg_fence(pa);
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) sm90::wgmma_rs_tn<kBf16, D>(o, pa[kk], vdesc(st, kk));
    sm90::wgmma_commit();
  };
  auto release = [&](int st) {  // this warp is done with the stage
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + L::bar_empty + 8 * st);
  };

  if (wtiles > 0) {
    sm90::mbar_wait(sb + L::bar_q, 0);
    sm90::mbar_wait(sb + L::bar_kfull, 0);
    issue_s(0);
    sm90::wgmma_wait<0>();
    sm90::reg_fence(s);
    float corr[2];
    sm90_softmax<E, BK>(s, m, l, corr, x, row0, 0, !x.bias && BK <= wfull, kend, t, sl2);
    sm90b_pack<E, BK>(s, pa);
  }
  // the steady state: every iteration has a next tile (the last one is peeled below, so that the
  // wgmma groups in flight are the same on every path: ptxas can then keep them asynchronous)
  for (int it = 0; it + 1 < wtiles; ++it) {
    const int st = it & 1, ph = (it >> 1) & 1;
    sm90::mbar_wait(sb + L::bar_kfull + 8 * (st ^ 1), ((it + 1) >> 1) & 1);
    issue_s(st ^ 1);
    sm90::mbar_wait(sb + L::bar_vfull + 8 * st, ph);
    issue_pv(st);
    sm90::wgmma_wait<1>();  // S of the next tile; P V of this one still in flight
    sm90::reg_fence(s);
    float corr[2];
    const int j1 = (it + 1) * BK;
    sm90_softmax<E, BK>(s, m, l, corr, x, row0, j1, !x.bias && j1 + BK <= wfull, kend, t, sl2);
    sm90::wgmma_wait<0>();
    sm90::reg_fence(o);
    sm90::reg_fence(pa);  // (P of this tile was read by the wgmma until here)
    release(st);
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      o[4 * i + 0] *= corr[0];
      o[4 * i + 1] *= corr[0];
      o[4 * i + 2] *= corr[1];
      o[4 * i + 3] *= corr[1];
    }
    sm90b_pack<E, BK>(s, pa);
  }
  if (wtiles > 0) {
    const int it = wtiles - 1, st = it & 1, ph = (it >> 1) & 1;
    sm90::mbar_wait(sb + L::bar_vfull + 8 * st, ph);
    issue_pv(st);
    sm90::wgmma_wait<0>();
    sm90::reg_fence(o);
    sm90::reg_fence(pa);
    release(st);
  }
  // tiles only the other warpgroup sees: wait for them (so that this warpgroup's arrivals on the
  // stage's empty barrier belong to its current phase) and release them
  for (int it = wtiles; it < ntiles; ++it) {
    const int st = it & 1, ph = (it >> 1) & 1;
    sm90::mbar_wait(sb + L::bar_kfull + 8 * st, ph);
    sm90::mbar_wait(sb + L::bar_vfull + 8 * st, ph);
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + L::bar_empty + 8 * st);
  }

  // out = O / l, lse = m + log l (F32, natural log)
  uint16_t* const out = static_cast<uint16_t*>(p.out);
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    float lr = l[hr];
    lr += __shfl_xor_sync(0xffffffffu, lr, 1);
    lr += __shfl_xor_sync(0xffffffffu, lr, 2);
    const float inv = lr > 0.f ? 1.f / lr : 0.f;
    const int64_t i = row0 + 8 * hr;
    if (i < p.nq) {
      if (out) {
#pragma unroll
        for (int nb = 0; nb < D / 8; ++nb) {
          const int col = nb * 8 + 2 * t;
          *reinterpret_cast<uint32_t*>(out + (x.base + i) * D + col) =
              pack_half2<E>(o[4 * nb + 2 * hr] * inv, o[4 * nb + 2 * hr + 1] * inv);
        }
      }
      if (p.lse && t == 0)
        static_cast<float*>(p.lse)[x.base + i] = lr > 0.f ? (m[hr] + log2f(lr)) * kSm90Ln2 : -INFINITY;
    }
  }
#else
  (void)p, (void)maps;
#if defined(__CUDA_ARCH__)
  __trap();  // (launched from code without the sm_90a body, e.g. a JIT of the compute_90 PTX: fail, not skip)
#endif
#endif
}

// ---- host side --------------------------------------------------------------------------------------
using EncodeTiled = PFN_cuTensorMapEncodeTiled_v12000;

// cuTensorMapEncodeTiled from the driver (the library links only cudart); null where absent
EncodeTiled sm90_encoder() {
  static EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      return EncodeTiled(nullptr);
    return reinterpret_cast<EncodeTiled>(f);
  }();
  return fn;
}

// [planes, rows, D] 16-bit (or F32: f32), boxes of 128 bytes of columns (64 16-bit or 32 F32 values)
// x box_rows rows x 1 plane, 128-byte swizzle
int sm90_encode(EncodeTiled enc, CUtensorMap* map, const void* base, int64_t planes, int64_t rows, int64_t d,
                int box_rows, bool bf16, bool f32 = false) {
  const cuuint64_t es = f32 ? 4 : 2;
  const cuuint64_t dims[3] = {cuuint64_t(d), cuuint64_t(rows), cuuint64_t(planes)};
  const cuuint64_t strides[2] = {cuuint64_t(d * es), cuuint64_t(rows * d * es)};
  const cuuint32_t box[3] = {cuuint32_t(128 / es), cuuint32_t(box_rows), 1};
  const cuuint32_t estr[3] = {1, 1, 1};
  const CUtensorMapDataType dt = f32    ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                 : bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                        : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const CUresult r = enc(map, dt, 3, const_cast<void*>(base), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                         CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                         CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? 0 : KERNEL_UNSUPPORTED;
}

template <class E, int D>
int sm90_forward_dp(const AttentionParams& p, cudaStream_t stream) {
  using L = Sm90Layout<D>;
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (L::bytes > optin) return KERNEL_UNSUPPORTED;
  const EncodeTiled enc = sm90_encoder();
  if (!enc) return KERNEL_UNSUPPORTED;
  Sm90Maps maps;
  std::memset(&maps, 0, sizeof maps);
  const bool bf16 = E::kBf16;
  if (sm90_encode(enc, &maps.q, p.q, p.batch * p.heads, p.nq, D, S9::kBlockQ, bf16) ||
      sm90_encode(enc, &maps.k, p.k, p.batch * p.kv_heads, p.nk, D, S9::kBlockK, bf16) ||
      sm90_encode(enc, &maps.v, p.v, p.batch * p.kv_heads, p.nk, D, S9::kBlockK, bf16))
    return KERNEL_UNSUPPORTED;
  const int64_t blocks = p.batch * p.heads * ((p.nq + S9::kBlockQ - 1) / S9::kBlockQ);
  return tc_launch_n(tc_sm90_forward_kernel<E, D>, blocks, S9::kThreads, L::bytes, stream, p, maps);
}

int sm90_device_is_90() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) return 0;
  return major == 9 && minor == 0;
}

}  // namespace

bool tc_sm90_built() {
#if defined(MK_CUDA_EMU) || defined(MK_CUDA_SM90A)
  return true;
#else
  return false;
#endif
}

// (for the Hopper backward, tensor_core_sm90_backward.cu: the same encoder and device check)
int tc_sm90_encode_map(CUtensorMap* map, const void* base, int64_t planes, int64_t rows, int64_t d, int box_rows,
                       bool bf16) {
  const EncodeTiled enc = sm90_encoder();
  return enc ? sm90_encode(enc, map, base, planes, rows, d, box_rows, bf16) : KERNEL_UNSUPPORTED;
}
// (F32 tensors, boxes of 32 columns: the 3xTF32 forward, tensor_core_sm90_f32.cu)
int tc_sm90_encode_map_f32(CUtensorMap* map, const void* base, int64_t planes, int64_t rows, int64_t d,
                           int box_rows) {
  const EncodeTiled enc = sm90_encoder();
  return enc ? sm90_encode(enc, map, base, planes, rows, d, box_rows, false, true) : KERNEL_UNSUPPORTED;
}
bool tc_sm90_device() { return sm90_device_is_90() != 0; }

int tc_sm90_forward(const AttentionParams& p, void* stream) {
  auto aligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  if (!tc_sm90_built() || !sm90_device_is_90()) return KERNEL_UNSUPPORTED;
  if (!attention_tc_sm90_applies(p.dtype, p.d, p.dv, 9, 0)) return KERNEL_UNSUPPORTED;
  if (p.nq > INT_MAX || p.nk > INT_MAX || p.batch * p.heads > INT_MAX) return KERNEL_UNSUPPORTED;
  if (!aligned(p.q) || !aligned(p.k) || !aligned(p.v) || (p.out && (reinterpret_cast<uintptr_t>(p.out) & 3)))
    return KERNEL_UNSUPPORTED;
  const cudaStream_t s = as_stream(stream);
  if (p.d == 64) return p.dtype == MK_BF16 ? sm90_forward_dp<Bf16, 64>(p, s) : sm90_forward_dp<Fp16, 64>(p, s);
  return p.dtype == MK_BF16 ? sm90_forward_dp<Bf16, 128>(p, s) : sm90_forward_dp<Fp16, 128>(p, s);
}

}  // namespace cuda
}  // namespace mk
