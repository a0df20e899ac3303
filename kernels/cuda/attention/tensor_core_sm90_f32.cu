// Softmax attention forward in F32 on Hopper tensor cores (sm_90a): 3xTF32 (issue 10, the F32
// target). The same function as the SIMT forwards (forward.cu v1, simt2.cu v2):
//
//   S = scale q kᵀ + bias (masked)   P = softmax(S)   O = P v   lse = logsumexp(S)  (F32)
//   q: [B, H, Nq, D]   k, v: [B, Hkv, Nk, D]   F32, contiguous, D = Dv in {64, 128}
//   masks (causal, key lengths), bias and GQA as in mk/attention.h
//
// Why: PyTorch's F32 scaled_dot_product_attention on sm_80+ is the memory-efficient kernel, whose
// F32 GEMMs are CUTLASS's OpMultiplyAddFastF32 on tensor cores (three TF32 MMAs per product), not
// FFMA; no FFMA kernel reaches its throughput (46 TFLOP/s on the H100, 69 % of the card's FFMA
// peak). This kernel does the same on wgmma: every F32 operand x is split into hi = tf32(x) and
// lo = tf32(x - hi) (round to nearest, cvt.rna), and a product a b is taken as
// a_lo b_hi + a_hi b_lo + a_hi b_hi (the small terms first) with F32 accumulation; the dropped
// a_lo b_lo and the rounding of lo are about 2^-21 relative: F32-class accuracy (the emulator test
// holds it to 1e-5 of the output's scale against float64, where one TF32 product gives ~1e-3).
// The softmax is in F32 as in the SIMT kernels. Values of magnitude within 2^-12 of FLT_MAX
// round to infinity in hi (F32 attention inputs that large overflow the scores anyway).
//
// Block: (b, h, 64 query rows), 2 warpgroups (256 threads, no register rebalancing: 255 each):
//   warpgroup 0, the producer: one thread loads Q once and the K and V tiles (64 keys each)
//     by TMA (3D tensor maps [B·H(kv), N, D], boxes of 32 F32 columns, 128-byte swizzle) into one
//     landing buffer, alternately K_j, V_j, K_j+1, ...; all 128 threads then split each landed tile:
//       Q (once, in place) -> Q_hi, Q_lo;  K_j -> K_hi, K_lo (the same swizzled layout);
//       V_j -> V_hiᵀ, V_loᵀ transposed ([D][64 keys], K-major: TF32 wgmma has no transposed-B form),
//       keys past the key length zeroed (padding may hold anything, NaN included), and the keys of
//       each group of 8 stored in the order 0 2 4 6 1 3 5 7 (below);
//     then publish the tile on an mbarrier (kready / vready) and refill the landing buffer as soon
//     as it is free, so that each load overlaps the consumers' work on the previous tile.
//   warpgroup 1, the consumer: 64 query rows (16 per warp).
//     S = Q Kᵀ: 3 x D/8 m64n64k8 wgmmas, Q and K from shared memory (K-major both).
//     softmax in F32 in the S registers (online: running max m and sum l, O rescaled), then P split
//     into hi / lo TF32 A fragments in registers. The m16n8k8 A fragment wants keys (t, t + 4) of a
//     group of 8 where the accumulator holds keys (2t, 2t + 1): V's keys are stored permuted to
//     match (slot s of a group holds key 2s for s < 4, 2(s - 4) + 1 else), so no shuffles.
//     O += P V: 3 x 8 m64nDk8 wgmmas, P from registers, Vᵀ from shared memory.
//   K_hi/lo and V_hiᵀ/loᵀ are single buffers released on kfree / vfree as soon as each product has
//   landed; the landing buffer is the only one the TMA writes.
// Shared memory (D = 128): Q 64 KB + K 64 KB + Vᵀ 64 KB + landing 32 KB = 224 KB (1 block per SM);
// D = 64: 112 KB.
//
// Builds: the body exists only in the sm_90a device pass and in the host emulator; elsewhere the
// dispatch answers KERNEL_UNSUPPORTED before launching (as tensor_core_sm90.cu).
// Selection: forward version x3 of mk/attention_simt_choice.h (MK_ATTN_SIMT=x3, or
// mk_attention_simt_select(3, ..)): opt-in until timed on a GPU.
//
// The same kernel with kTerms = 1 (only hi operands, one TF32 product per MMA) is a Hopper forward
// for F32 with TF32 allowed (allow_tf32; tc_sm90_tf32_forward), reached through the 16-bit kernels'
// forward choice sm90 (MK_ATTN_TC=sm90, mk_attention_tc_select(4, ..)): opt-in too; the default TF32
// forward stays tensor_core.cu's m16n8k8 v1 until timed.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../common.cuh"
#include "../mma.cuh"
#include "../sm90.cuh"
#include "tensor_core.cuh"
#include "tensor_core_parts.cuh"
#include "tensor_core_sm90_f32_parts.cuh"

#if defined(MK_CUDA_EMU) || MK_SM90_DEVICE
#define MK_SM90X3_BODY 1
#else
#define MK_SM90X3_BODY 0
#endif
#if !MK_SM90X3_BODY && defined(__CUDA_ARCH__)
#pragma nv_diag_suppress 177
#endif

namespace mk {
namespace cuda {

bool tc_sm90_built();
bool tc_sm90_device();
int tc_sm90_encode_map_f32(CUtensorMap* map, const void* base, int64_t planes, int64_t rows, int64_t d,
                           int box_rows);

namespace {

struct X3Traits {
  static constexpr int kThreads = 256;  // producer warpgroup + one consumer warpgroup
  static constexpr int kBlockQ = 64;    // query rows per block
  static constexpr int kBlockK = 64;    // keys per K / V tile
};
using X3 = X3Traits;

// Byte offsets in the 1024-byte aligned shared block. An F32 [rows][D] tile is D / 32 atoms of
// [rows][32] (128-byte rows, the TMA's 128-byte swizzle); Vᵀ is BK / 32 atoms of [D][32 keys].
template <int D>
struct X3Layout {
  static_assert(D == 64 || D == 128, "head dims 64 and 128");
  static constexpr int kAtoms = D / 32;
  static constexpr uint32_t q_atom = X3::kBlockQ * 128;
  static constexpr uint32_t kv_atom = X3::kBlockK * 128;
  static constexpr uint32_t qtile = kAtoms * q_atom;  // one [64][D] F32 tile
  static constexpr uint32_t tile = kAtoms * kv_atom;  // one [BK][D] F32 tile
  static constexpr uint32_t vt_atom = D * 128;
  static constexpr uint32_t qhi = 0, qlo = qhi + qtile;
  static constexpr uint32_t khi = qlo + qtile, klo = khi + tile;
  static constexpr uint32_t vthi = klo + tile, vtlo = vthi + (X3::kBlockK / 32) * vt_atom;
  static constexpr uint32_t land = vtlo + (X3::kBlockK / 32) * vt_atom;
  static constexpr uint32_t bars = land + tile;  // mbarriers, 8 bytes each
  static constexpr uint32_t bar_qland = bars, bar_qready = bars + 8, bar_land = bars + 16, bar_kready = bars + 24,
                            bar_kfree = bars + 32, bar_vready = bars + 40, bar_vfree = bars + 48;
  static constexpr uint32_t used = bars + 56;
  static constexpr size_t bytes = size_t(used) + 1024;  // + the alignment slack of the dynamic base
  static_assert(q_atom % 1024 == 0 && kv_atom % 1024 == 0 && vt_atom % 1024 == 0, "1024-byte aligned atoms");
  static_assert(X3::kBlockK == (X3::kBlockK / 32) * 32, "whole Vᵀ atoms");
};

struct X3Maps {
  CUtensorMap q, k, v;  // [B·H, Nq, D], [B·Hkv, Nk, D] x 2; boxes 32 x 64 x 1
};


// The 128 producer threads: the landed V tile [BK keys][D] -> Vᵀ hi / lo [D][BK slots], the keys of
// each group of 8 in the order 0 2 4 6 1 3 5 7, keys >= keep zero. Thread: column d = tid % D and
// the tid / D-th part of the key groups.
template <int D, bool kLo>
__device__ __forceinline__ void x3_transpose_v(const unsigned char* land, unsigned char* vthi, unsigned char* vtlo,
                                               int keep, int tid) {
  using L = X3Layout<D>;
  constexpr int BK = X3::kBlockK;
  constexpr int kParts = 128 / D, kGroups = BK / 8 / kParts;
  const int d = tid % D, part = tid / D;
#pragma unroll 2
  for (int gi = 0; gi < kGroups; ++gi) {
    const int grp = part * kGroups + gi;
    float v[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int key = 8 * grp + e;
      v[e] = key < keep ? *reinterpret_cast<const float*>(land + x3_at(key, d, L::kv_atom)) : 0.f;
    }
    const X3F4 a{v[0], v[2], v[4], v[6]}, b{v[1], v[3], v[5], v[7]};
    X3F4 ah, al, bh, bl;
    x3_split4(a, ah, al);
    x3_split4(b, bh, bl);
    const uint32_t oa = x3_at(d, 8 * grp, L::vt_atom), ob = x3_at(d, 8 * grp + 4, L::vt_atom);
    *reinterpret_cast<X3F4*>(vthi + oa) = ah;
    *reinterpret_cast<X3F4*>(vthi + ob) = bh;
    if (kLo) {
      *reinterpret_cast<X3F4*>(vtlo + oa) = al;
      *reinterpret_cast<X3F4*>(vtlo + ob) = bl;
    }
  }
}

// The online softmax of one score tile in place (as tensor_core_sm90.cu's, with an F32 bias): s (the
// m64n64 accumulators of this thread: rows g, g + 8 of its warp, keys 8i + 2t + {0, 1}) becomes
// P = exp2(S - m); m, l the running row max (log2 units) and sum; corr the factor O must take.
template <int BK>
__device__ __forceinline__ void x3_softmax(float (&s)[BK / 2], float (&m)[2], float (&l)[2], float (&corr)[2],
                                           const TcHead<float>& x, int64_t row0, int j0, bool full, const int (&kend)[2],
                                           int t, float sl2) {
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
          if (x.bias) v += kX3Log2e * x.bias[(row0 + 8 * hr) * x.nk + j];
        }
        s[4 * i + r] = v;
        mx[hr] = fmaxf(mx[hr], v);
      }
  }
  float base[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float mn = fmaxf(m[hr], x3_quad_max(mx[hr]));
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

// kTerms 3: 3xTF32 (F32-class); 1: one TF32 product per MMA (the opt-in TF32 forward, allow_tf32:
// the same kernel with the lo operands neither made nor used)
template <int D, int kTerms>
__global__ void __launch_bounds__(X3::kThreads, 1)
    tc_sm90_x3_forward_kernel(const AttentionParams p, const __grid_constant__ X3Maps maps) {
#if MK_SM90X3_BODY
  static_assert(kTerms == 1 || kTerms == 3, "3xTF32 or TF32");
  constexpr bool kLo = kTerms == 3;
  using L = X3Layout<D>;
  constexpr int BK = X3::kBlockK;
  const uint32_t raw = sm90::smem_addr(mk_attention_smem);
  const uint32_t sb = (raw + 1023u) & ~1023u;
  unsigned char* const base = mk_attention_smem + (sb - raw);
  const int64_t tiles = (p.nq + X3::kBlockQ - 1) / X3::kBlockQ;
  const int64_t bh = blockIdx.x / tiles;
  int64_t qt = blockIdx.x % tiles;
  if (p.causal) qt = tiles - 1 - qt;  // the longest rows first
  const int64_t q0 = qt * X3::kBlockQ;
  const TcHead<float> x = tc_head<float>(p, bh / p.heads, bh % p.heads);
  const int R = int(std::min<int64_t>(X3::kBlockQ, p.nq - q0));
  const int64_t end = x.key_end(q0 + R - 1);  // the block's last row sees the most keys
  const int ntiles = int((end + BK - 1) / BK);
  const int wg = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32;

  if (threadIdx.x == 0) {
    sm90::mbar_init(sb + L::bar_qland, 1);
    sm90::mbar_init(sb + L::bar_qready, 1);
    sm90::mbar_init(sb + L::bar_land, 1);
    sm90::mbar_init(sb + L::bar_kready, 1);
    sm90::mbar_init(sb + L::bar_kfree, 4);  // one arrival per consumer warp
    sm90::mbar_init(sb + L::bar_vready, 1);
    sm90::mbar_init(sb + L::bar_vfree, 4);
    sm90::mbar_init_fence();
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer: TMA into the landing buffer, split (and transpose) into the operand buffers ----
    if (ntiles == 0) return;
    const bool leader = tid == 0;
    if (leader) {
      sm90::mbar_arrive_expect_tx(sb + L::bar_qland, L::qtile);
      for (int a = 0; a < L::kAtoms; ++a)
        sm90::tma_load_3d(sb + L::qhi + a * L::q_atom, &maps.q, 32 * a, int(q0), int(bh), sb + L::bar_qland);
      sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
      for (int a = 0; a < L::kAtoms; ++a)
        sm90::tma_load_3d(sb + L::land + a * L::kv_atom, &maps.k, 32 * a, 0, int(x.kh), sb + L::bar_land);
    }
    auto publish = [&](uint32_t bar) {  // every producer thread's writes, then one arrival
      sm90::fence_proxy_async();
      sm90::named_barrier(1, 128);
      if (leader) sm90::mbar_arrive(bar);
    };
    sm90::mbar_wait(sb + L::bar_qland, 0);
    x3_split_tile<kLo>(base + L::qhi, base + L::qhi, base + L::qlo, L::qtile, tid);
    publish(sb + L::bar_qready);
    for (int j = 0; j < ntiles; ++j) {
      const int j0 = j * BK;
      // K_j (landing fill 2j): split once the consumer is done with K_{j-1}
      if (j > 0) sm90::mbar_wait(sb + L::bar_kfree, (j - 1) & 1);
      sm90::mbar_wait(sb + L::bar_land, 0);
      x3_split_tile<kLo>(base + L::land, base + L::khi, base + L::klo, L::tile, tid);
      publish(sb + L::bar_kready);
      if (leader) {  // (the named barrier above: every thread has read the landing buffer)
        sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
        for (int a = 0; a < L::kAtoms; ++a)
          sm90::tma_load_3d(sb + L::land + a * L::kv_atom, &maps.v, 32 * a, j0, int(x.kh), sb + L::bar_land);
      }
      // V_j (fill 2j + 1): transposed once the consumer is done with V_{j-1}
      if (j > 0) sm90::mbar_wait(sb + L::bar_vfree, (j - 1) & 1);
      sm90::mbar_wait(sb + L::bar_land, 1);
      const int keep = int(std::min<int64_t>(BK, std::max<int64_t>(0, x.len - j0)));
      x3_transpose_v<D, kLo>(base + L::land, base + L::vthi, base + L::vtlo, keep, tid);
      publish(sb + L::bar_vready);
      if (leader && j + 1 < ntiles) {
        sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
        for (int a = 0; a < L::kAtoms; ++a)
          sm90::tma_load_3d(sb + L::land + a * L::kv_atom, &maps.k, 32 * a, j0 + BK, int(x.kh), sb + L::bar_land);
      }
    }
    return;
  }

  // ---- consumer ----------------------------------------------------------------------------------
  const int g = lane >> 2, t = lane & 3;
  const int64_t w0 = q0 + 16 * warp;  // this warp's first row
  const int64_t row0 = w0 + g;        // this thread's rows: row0, row0 + 8
  const int wfull = w0 < p.nq ? int(x.key_end(w0)) : 0;  // keys every row of the warp sees
  int kend[2];
  for (int h = 0; h < 2; ++h) kend[h] = row0 + 8 * h < p.nq ? int(x.key_end(row0 + 8 * h)) : 0;
  const float sl2 = float(p.scale) * kX3Log2e;

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float s[BK / 2];
  uint32_t phi[BK / 8][4], plo[BK / 8][4];

  // descriptors (K-major, 8-row groups 1024 bytes apart; a k-step of 8 F32 is 32 bytes, 4 per atom)
  auto qdesc = [&](uint32_t at, int kk) {
    return sm90::desc_sw128(sb + at + (kk / 4) * L::q_atom + (kk % 4) * 32, 16, 1024);
  };
  auto kdesc = [&](uint32_t at, int kk) {
    return sm90::desc_sw128(sb + at + (kk / 4) * L::kv_atom + (kk % 4) * 32, 16, 1024);
  };
  auto vdesc = [&](uint32_t at, int ks) {
    return sm90::desc_sw128(sb + at + (ks / 4) * L::vt_atom + (ks % 4) * 32, 16, 1024);
  };
  auto release = [&](uint32_t bar) {
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(bar);
  };

  if (ntiles > 0) sm90::mbar_wait(sb + L::bar_qready, 0);
  for (int j = 0; j < ntiles; ++j) {
    const int j0 = j * BK;
    sm90::mbar_wait(sb + L::bar_kready, j & 1);
    sm90::reg_fence(s);
    sm90::wgmma_fence();
    if (kLo) {
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<BK>(s, qdesc(L::qhi, kk), kdesc(L::klo, kk), kk > 0);
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<BK>(s, qdesc(L::qlo, kk), kdesc(L::khi, kk), true);
    }
#pragma unroll
    for (int kk = 0; kk < D / 8; ++kk)
      sm90::wgmma_ss_tf32<BK>(s, qdesc(L::qhi, kk), kdesc(L::khi, kk), kLo || kk > 0);
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
    sm90::reg_fence(s);
    release(sb + L::bar_kfree);
    float corr[2];
    x3_softmax<BK>(s, m, l, corr, x, row0, j0, !x.bias && j0 + BK <= wfull, kend, t, sl2);
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      o[4 * i + 0] *= corr[0];
      o[4 * i + 1] *= corr[0];
      o[4 * i + 2] *= corr[1];
      o[4 * i + 3] *= corr[1];
    }
    // P -> TF32 A fragments: k-step i is key block i; slot t holds key 2t, slot t + 4 key 2t + 1
#pragma unroll
    for (int i = 0; i < BK / 8; ++i) {
      const float f[4] = {s[4 * i + 0], s[4 * i + 2], s[4 * i + 1], s[4 * i + 3]};
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float h = x3_round(f[r]);
        phi[i][r] = x3_bits(h);
        plo[i][r] = kLo ? x3_bits(x3_round(f[r] - h)) : 0u;
      }
    }
    sm90::mbar_wait(sb + L::bar_vready, j & 1);
    sm90::reg_fence(o);
    sm90::reg_fence(phi);
    sm90::reg_fence(plo);
    sm90::wgmma_fence();
    if (kLo) {
#pragma unroll
      for (int ks = 0; ks < BK / 8; ++ks) sm90::wgmma_rs_tf32<D>(o, plo[ks], vdesc(L::vthi, ks));
#pragma unroll
      for (int ks = 0; ks < BK / 8; ++ks) sm90::wgmma_rs_tf32<D>(o, phi[ks], vdesc(L::vtlo, ks));
    }
#pragma unroll
    for (int ks = 0; ks < BK / 8; ++ks) sm90::wgmma_rs_tf32<D>(o, phi[ks], vdesc(L::vthi, ks));
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
    sm90::reg_fence(o);
    sm90::reg_fence(phi);
    sm90::reg_fence(plo);
    release(sb + L::bar_vfree);
  }

  // out = O / l, lse = m + log l (natural log)
  float* const out = static_cast<float*>(p.out);
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
          *reinterpret_cast<X3F2*>(out + (x.base + i) * D + col) = X3F2{o[4 * nb + 2 * hr] * inv, o[4 * nb + 2 * hr + 1] * inv};
        }
      }
      if (p.lse && t == 0)
        static_cast<float*>(p.lse)[x.base + i] = lr > 0.f ? (m[hr] + log2f(lr)) * kX3Ln2 : -INFINITY;
    }
  }
#else
  (void)p, (void)maps;
#if defined(__CUDA_ARCH__)
  __trap();  // (launched from code without the sm_90a body: fail, not skip)
#endif
#endif
}

template <int D, int kTerms>
int x3_forward_dp(const AttentionParams& p, cudaStream_t stream) {
  using L = X3Layout<D>;
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (L::bytes > optin) return KERNEL_UNSUPPORTED;
  X3Maps maps;
  std::memset(&maps, 0, sizeof maps);
  if (tc_sm90_encode_map_f32(&maps.q, p.q, p.batch * p.heads, p.nq, D, X3::kBlockQ) ||
      tc_sm90_encode_map_f32(&maps.k, p.k, p.batch * p.kv_heads, p.nk, D, X3::kBlockK) ||
      tc_sm90_encode_map_f32(&maps.v, p.v, p.batch * p.kv_heads, p.nk, D, X3::kBlockK))
    return KERNEL_UNSUPPORTED;
  const int64_t blocks = p.batch * p.heads * ((p.nq + X3::kBlockQ - 1) / X3::kBlockQ);
  return tc_launch_n(tc_sm90_x3_forward_kernel<D, kTerms>, blocks, X3::kThreads, L::bytes, stream, p, maps);
}

}  // namespace

bool tc_sm90_x3_applies(const AttentionParams& p) {
  return p.dtype == MK_F32 && p.d == p.dv && (p.d == 64 || p.d == 128);
}

bool tc_sm90_x3_launchable(const AttentionParams& p) {
  auto aligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  return tc_sm90_x3_applies(p) && tc_sm90_built() && tc_sm90_device() && p.nq <= INT_MAX && p.nk <= INT_MAX &&
         p.batch * p.heads <= INT_MAX && aligned(p.q) && aligned(p.k) && aligned(p.v);
}

namespace {
int x3_entry(const AttentionParams& p, void* stream, int terms) {
  if (!tc_sm90_x3_launchable(p) || (reinterpret_cast<uintptr_t>(p.out) & 7)) return KERNEL_UNSUPPORTED;
  const cudaStream_t s = as_stream(stream);
  if (terms == 1) return p.d == 64 ? x3_forward_dp<64, 1>(p, s) : x3_forward_dp<128, 1>(p, s);
  return p.d == 64 ? x3_forward_dp<64, 3>(p, s) : x3_forward_dp<128, 3>(p, s);
}
}  // namespace

int tc_sm90_x3_forward(const AttentionParams& p, void* stream) { return x3_entry(p, stream, 3); }

int tc_sm90_tf32_forward(const AttentionParams& p, void* stream) {
  if (!p.allow_tf32) return KERNEL_UNSUPPORTED;
  return x3_entry(p, stream, 1);
}

}  // namespace cuda
}  // namespace mk
