// Softmax attention backward in F32 on Hopper tensor cores (sm_90a), 3xTF32 (x3): the backward of
// tensor_core_sm90_f32.cu's forward, the same function as the SIMT backwards (backward.cu v1,
// simt2.cu v2), with every product taken as three TF32 wgmmas of a hi/lo split of its operands
// (a_lo b_hi + a_hi b_lo + a_hi b_hi, F32 accumulation; see tensor_core_sm90_f32.cu). D = Dv in
// {64, 128}, F32, masks, bias (and the full dS for its gradient), key lengths, GQA. Three phases,
// no atomics (each output element has one owner block: deterministic):
//
//   preprocess  D = rowsum(dO ∘ O) into the workspace (tc_rowdot_kernel of tensor_core_parts.cuh)
//   dQ pass     block (b, h, 64 query rows): Q and dO loaded once and split; K and V tiles of 32 keys
//               land (TMA) in one landing buffer and are split into hi / lo (rows past the key
//               length zeroed). Per tile:
//                 S = Q Kᵀ, dP = dO Vᵀ     m64n32k8 wgmmas, both operands from shared memory
//                 P = exp2(S·scale·log2e − lse·log2e), dS = P ∘ (dP − D)  (masked entries set to 0)
//                 dQᵀ += Kᵀ dSᵀ            m64n64k8: Kᵀ as register A fragments gathered from the
//                                          split K tile (TF32 wgmma has no transposed-B form, so
//                                          the product is taken transposed: no Kᵀ copy), dS as B
//                                          written by the consumer into shared memory [q][key]
//               dQ = scale · dQᵀᵀ written at the end; the full dS (the bias gradient) when asked.
//   dK/dV pass  block (b, KV head, 64 keys): K and V loaded once and split (rows past the key
//               length zeroed); Q and dO tiles of 32 rows of every query head of the group (GQA),
//               from the first row that sees the block's first key, land and are split. Per tile:
//                 Sᵀ = K Qᵀ, dPᵀ = V dOᵀ   m64n32k8, K / V as A from shared memory
//                 Pᵀ, dSᵀ                  in the accumulators (lse, D of the tile's rows from global)
//                 dVᵀ += dOᵀ P             m64n64k8: dOᵀ as register A gathered from the dO tile,
//                                          Pᵀ as B written into shared memory [key][q]
//                 dKᵀ += Qᵀ dS             the same, dSᵀ written into the same buffer after the
//                                          dV products have landed
//               dK = scale · dKᵀᵀ, dV = dVᵀᵀ written at the end (zeros for keys no row sees).
// Block: 256 threads: a producer warpgroup (TMA by one thread, the split by all 128) and one
// consumer warpgroup; the K/V (dQ pass) or Q/dO (dK/dV pass) tiles alternate in the landing
// buffer, each split once its previous copy has been released.
// Shared memory at D = 128: dQ pass Q, dO 64 + 64 KB, K, V 16 + 16 KB (hi and lo), landing 16 KB,
// dS 16 KB = 224 KB; dK/dV pass K, V 64 + 64 KB, Q, dO tiles 32 + 32 KB, landing 16 KB, Pᵀ / dSᵀ
// 16 KB = 224 KB. (64 rows x 32 keys per tile: N = 32 wgmmas for S and dP, bounded by shared-memory
// bandwidth; a 3xTF32 split doubles every operand's bytes, which is what limits the tiles.)
//
// The same kernels with one TF32 product per MMA (kTerms = 1: no lo operands made or used) are a
// Hopper backward for F32 with TF32 allowed (tc_sm90_tf32_backward), reached through the
// tensor-core backward choice sm90 (MK_ATTN_TC_BWD=sm90): opt-in, as the TF32 forward.
//
// Builds: the bodies exist only in the sm_90a device pass and the host emulator; elsewhere the
// entry answers KERNEL_UNSUPPORTED before launching anything. Selection: backward version x3 of
// mk/attention_simt_choice.h (MK_ATTN_SIMT_BWD=x3, mk_attention_simt_select(.., 3)); opt-in until
// timed on a GPU.
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
#define MK_SM90X3B_BODY 1
#else
#define MK_SM90X3B_BODY 0
#endif
#if !MK_SM90X3B_BODY && defined(__CUDA_ARCH__)
#pragma nv_diag_suppress 177
#endif

namespace mk {
namespace cuda {

int tc_sm90_encode_map_f32(CUtensorMap* map, const void* base, int64_t planes, int64_t rows, int64_t d,
                           int box_rows);

namespace {

struct X3bTraits {
  static constexpr int kThreads = 256;
  static constexpr int kRows = 64;  // dQ pass: query rows per block; dK/dV pass: keys per block
  static constexpr int kTile = 32;  // dQ pass: keys per K/V tile; dK/dV pass: rows per Q/dO tile
};
using XB = X3bTraits;

// Byte offsets of the dQ pass (1024-byte aligned base). F32 [rows][D] tiles as D/32 atoms of
// [rows][32] (128-byte rows, swizzled).
template <int D>
struct X3DqLayout {
  static constexpr int kAtoms = D / 32;
  static constexpr uint32_t q_atom = XB::kRows * 128, t_atom = XB::kTile * 128;
  static constexpr uint32_t qtile = kAtoms * q_atom, tile = kAtoms * t_atom;
  static constexpr uint32_t qhi = 0, qlo = qhi + qtile, dohi = qlo + qtile, dolo = dohi + qtile;
  static constexpr uint32_t khi = dolo + qtile, klo = khi + tile, vhi = klo + tile, vlo = vhi + tile;
  static constexpr uint32_t land = vlo + tile;
  static constexpr uint32_t ds_atom = XB::kRows * 128;  // dS [64 q][32 keys]: one atom
  static constexpr uint32_t dshi = land + tile, dslo = dshi + ds_atom;
  static constexpr uint32_t bars = dslo + ds_atom;
  static constexpr uint32_t bar_qland = bars, bar_qready = bars + 8, bar_land = bars + 16, bar_kready = bars + 24,
                            bar_kfree = bars + 32, bar_vready = bars + 40, bar_vfree = bars + 48;
  static constexpr uint32_t used = bars + 56;
  static constexpr size_t bytes = size_t(used) + 1024;
  static_assert(q_atom % 1024 == 0 && t_atom % 1024 == 0, "1024-byte aligned atoms");
};

// Byte offsets of the dK/dV pass.
template <int D>
struct X3DkvLayout {
  static constexpr int kAtoms = D / 32;
  static constexpr uint32_t k_atom = XB::kRows * 128, t_atom = XB::kTile * 128;
  static constexpr uint32_t ktile = kAtoms * k_atom, tile = kAtoms * t_atom;
  static constexpr uint32_t khi = 0, klo = khi + ktile, vhi = klo + ktile, vlo = vhi + ktile;
  static constexpr uint32_t qhi = vlo + ktile, qlo = qhi + tile, dohi = qlo + tile, dolo = dohi + tile;
  static constexpr uint32_t land = dolo + tile;
  static constexpr uint32_t pt_atom = XB::kRows * 128;  // Pᵀ / dSᵀ [64 keys][32 q]: one atom
  static constexpr uint32_t pthi = land + tile, ptlo = pthi + pt_atom;
  static constexpr uint32_t bars = ptlo + pt_atom;
  static constexpr uint32_t bar_kvland = bars, bar_kvready = bars + 8, bar_land = bars + 16, bar_qready = bars + 24,
                            bar_qfree = bars + 32, bar_doready = bars + 40, bar_dofree = bars + 48;
  static constexpr uint32_t used = bars + 56;
  static constexpr size_t bytes = size_t(used) + 1024;
  static_assert(k_atom % 1024 == 0 && t_atom % 1024 == 0, "1024-byte aligned atoms");
};

struct X3DqMaps {
  CUtensorMap q, dout, k, v;  // boxes 32 x 64 (q, dO), 32 x 32 (k, v)
};
struct X3DkvMaps {
  CUtensorMap k, v, q, dout;  // boxes 32 x 64 (k, v), 32 x 32 (q, dO)
};

// The TF32 A fragments (m16n8k8 layout: a0 (m, t), a1 (m + 8, t), a2 (m, t + 4), a3 (m + 8, t + 4),
// m = 16w + g of the 64-row block mb) of a transposed operand Xᵀ[m][k] = X[k][m], k-step ks, from
// the split tile X (rows k, columns m; `atom`-byte atoms) at hi and lo.
template <bool kLo>
__device__ __forceinline__ void x3_frags_t(const unsigned char* hi, const unsigned char* lo, uint32_t atom, int m0,
                                           int ks, int t, uint32_t (&ah)[4], uint32_t (&al)[4]) {
  const int k0 = 8 * ks + t;
  const uint32_t o0 = x3_at(k0, m0, atom), o1 = x3_at(k0, m0 + 8, atom), o2 = x3_at(k0 + 4, m0, atom),
                 o3 = x3_at(k0 + 4, m0 + 8, atom);
  ah[0] = *reinterpret_cast<const uint32_t*>(hi + o0);
  ah[1] = *reinterpret_cast<const uint32_t*>(hi + o1);
  ah[2] = *reinterpret_cast<const uint32_t*>(hi + o2);
  ah[3] = *reinterpret_cast<const uint32_t*>(hi + o3);
  if (kLo) {
    al[0] = *reinterpret_cast<const uint32_t*>(lo + o0);
    al[1] = *reinterpret_cast<const uint32_t*>(lo + o1);
    al[2] = *reinterpret_cast<const uint32_t*>(lo + o2);
    al[3] = *reinterpret_cast<const uint32_t*>(lo + o3);
  } else {
    al[0] = al[1] = al[2] = al[3] = 0u;
  }
}

// A consumer tile's values v (the m64nNk accumulator layout: rows 16w + g (+ 8), columns 8i + 2t (+ 1))
// into a one-atom [64][32] K-major buffer (row = accumulator row, column = accumulator column) as hi
// and lo; then fence for the async proxy and sync the consumer warpgroup (named barrier 2).
template <int N, bool kLo>
__device__ __forceinline__ void x3_store_tile(const float (&v)[N / 2], unsigned char* hi, unsigned char* lo, int warp,
                                              int g, int t) {
#pragma unroll
  for (int i = 0; i < N / 8; ++i)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int row = 16 * warp + g + 8 * hr, col = 8 * i + 2 * t;
      const uint32_t o = x3_at(row, col, 64 * 128);
      const float a = v[4 * i + 2 * hr], b = v[4 * i + 2 * hr + 1];
      const float ah = x3_round(a), bh = x3_round(b);
      *reinterpret_cast<X3F2*>(hi + o) = X3F2{ah, bh};
      if (kLo) *reinterpret_cast<X3F2*>(lo + o) = X3F2{x3_round(a - ah), x3_round(b - bh)};
    }
  sm90::fence_proxy_async();
  sm90::named_barrier(2, 128);
}

// A transposed product of both passes, acc += Xᵀ B (dQᵀ += Kᵀ dSᵀ, dVᵀ += dOᵀ P, dKᵀ += Qᵀ dS): the
// consumer tile v (64 rows x K columns) is written as B into the one-atom buffers at bhi / blo, Xᵀ
// comes as register A fragments gathered from the split tile X (rows k, columns d; atoms of xatom
// bytes) at xhi / xlo, and the D / 64 row blocks of acc (rows d = 64 mb + 16 warp + g (+ 8), columns
// the buffer's rows) take three (kLo) or one m64n64k8 chains. Returns once the products have landed.
template <int D, int K, bool kLo>
__device__ __forceinline__ void x3_product_t(float (&acc)[2][32], const float (&v)[K / 2], unsigned char* base,
                                             uint32_t sb, uint32_t bhi, uint32_t blo, uint32_t xhi, uint32_t xlo,
                                             uint32_t xatom, int warp, int g, int t) {
  x3_store_tile<K, kLo>(v, base + bhi, base + blo, warp, g, t);
  uint32_t fh[2][K / 8][4], fl[2][K / 8][4];
#pragma unroll
  for (int mb = 0; mb < D / 64; ++mb)
#pragma unroll
    for (int ks = 0; ks < K / 8; ++ks)
      x3_frags_t<kLo>(base + xhi, base + xlo, xatom, 64 * mb + 16 * warp + g, ks, t, fh[mb][ks], fl[mb][ks]);
  auto bdesc = [&](uint32_t at, int ks) { return sm90::desc_sw128(sb + at + ks * 32, 16, 1024); };
  sm90::reg_fence(acc[0]);
  sm90::reg_fence(acc[1]);
  sm90::wgmma_fence();
#pragma unroll
  for (int mb = 0; mb < D / 64; ++mb) {
    if (kLo) {
#pragma unroll
      for (int ks = 0; ks < K / 8; ++ks) sm90::wgmma_rs_tf32<64>(acc[mb], fl[mb][ks], bdesc(bhi, ks));
#pragma unroll
      for (int ks = 0; ks < K / 8; ++ks) sm90::wgmma_rs_tf32<64>(acc[mb], fh[mb][ks], bdesc(blo, ks));
    }
#pragma unroll
    for (int ks = 0; ks < K / 8; ++ks) sm90::wgmma_rs_tf32<64>(acc[mb], fh[mb][ks], bdesc(bhi, ks));
  }
  sm90::wgmma_commit();
  sm90::wgmma_wait<0>();
  sm90::reg_fence(acc[0]);
  sm90::reg_fence(acc[1]);
#pragma unroll
  for (int mb = 0; mb < D / 64; ++mb) {
    sm90::reg_fence(fh[mb]);
    sm90::reg_fence(fl[mb]);
  }
}

// ---- dQ pass -------------------------------------------------------------------------------------------
template <int D, int kTerms>
__global__ void __launch_bounds__(XB::kThreads, 1)
    tc_sm90_x3_dq_kernel(const AttentionParams p, const __grid_constant__ X3DqMaps maps) {
#if MK_SM90X3B_BODY
  static_assert(kTerms == 1 || kTerms == 3, "3xTF32 or TF32");
  constexpr bool kLo = kTerms == 3;
  using L = X3DqLayout<D>;
  constexpr int BK = XB::kTile;
  const uint32_t raw = sm90::smem_addr(mk_attention_smem);
  const uint32_t sb = (raw + 1023u) & ~1023u;
  unsigned char* const base = mk_attention_smem + (sb - raw);
  const int64_t tiles = (p.nq + XB::kRows - 1) / XB::kRows;
  const int64_t bh = blockIdx.x / tiles;
  int64_t qt = blockIdx.x % tiles;
  if (p.causal) qt = tiles - 1 - qt;
  const int64_t q0 = qt * XB::kRows;
  const TcHead<float> x = tc_head<float>(p, bh / p.heads, bh % p.heads);
  const int R = int(std::min<int64_t>(XB::kRows, p.nq - q0));
  const int64_t end = x.key_end(q0 + R - 1);
  const int ntiles = int((end + BK - 1) / BK);
  const int wg = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32;
  if (threadIdx.x == 0) {
    for (uint32_t b : {L::bar_qland, L::bar_qready, L::bar_land, L::bar_kready, L::bar_vready})
      sm90::mbar_init(sb + b, 1);
    sm90::mbar_init(sb + L::bar_kfree, 4);
    sm90::mbar_init(sb + L::bar_vfree, 4);
    sm90::mbar_init_fence();
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer ----
    if (ntiles == 0) return;
    const bool leader = tid == 0;
    auto load = [&](const CUtensorMap* map, int row, uint32_t dst, uint32_t atom) {
      for (int a = 0; a < L::kAtoms; ++a) sm90::tma_load_3d(dst + a * atom, map, 32 * a, row, int(x.kh), sb + L::bar_land);
    };
    if (leader) {
      sm90::mbar_arrive_expect_tx(sb + L::bar_qland, 2 * L::qtile);
      for (int a = 0; a < L::kAtoms; ++a) {
        sm90::tma_load_3d(sb + L::qhi + a * L::q_atom, &maps.q, 32 * a, int(q0), int(bh), sb + L::bar_qland);
        sm90::tma_load_3d(sb + L::dohi + a * L::q_atom, &maps.dout, 32 * a, int(q0), int(bh), sb + L::bar_qland);
      }
      sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
      load(&maps.k, 0, sb + L::land, L::t_atom);
    }
    auto publish = [&](uint32_t bar) {
      sm90::fence_proxy_async();
      sm90::named_barrier(1, 128);
      if (leader) sm90::mbar_arrive(sb + bar);
    };
    sm90::mbar_wait(sb + L::bar_qland, 0);
    x3_split_tile<kLo>(base + L::qhi, base + L::qhi, base + L::qlo, L::qtile, tid);
    x3_split_tile<kLo>(base + L::dohi, base + L::dohi, base + L::dolo, L::qtile, tid);
    publish(L::bar_qready);
    for (int j = 0; j < ntiles; ++j) {
      const int j0 = j * BK;
      const int keep = int(std::min<int64_t>(BK, std::max<int64_t>(0, x.len - j0)));
      if (j > 0) sm90::mbar_wait(sb + L::bar_kfree, (j - 1) & 1);
      sm90::mbar_wait(sb + L::bar_land, 0);
      x3_split_tile<kLo>(base + L::land, base + L::khi, base + L::klo, L::tile, tid, L::t_atom, keep);
      publish(L::bar_kready);
      if (leader) {
        sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
        load(&maps.v, j0, sb + L::land, L::t_atom);
      }
      if (j > 0) sm90::mbar_wait(sb + L::bar_vfree, (j - 1) & 1);
      sm90::mbar_wait(sb + L::bar_land, 1);
      x3_split_tile<kLo>(base + L::land, base + L::vhi, base + L::vlo, L::tile, tid, L::t_atom, keep);
      publish(L::bar_vready);
      if (leader && j + 1 < ntiles) {
        sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
        load(&maps.k, j0 + BK, sb + L::land, L::t_atom);
      }
    }
    return;
  }

  // ---- consumer ----
  const int g = lane >> 2, t = lane & 3;
  const int64_t row0 = q0 + 16 * warp + g;
  int kend[2];
  float lse2[2], drow[2];
  for (int h = 0; h < 2; ++h) {
    const int64_t i = row0 + 8 * h;
    kend[h] = i < p.nq ? int(x.key_end(i)) : 0;
    lse2[h] = i < p.nq ? x.lse[i] * kX3Log2e : 0.f;
    drow[h] = i < p.nq ? x.drow[i] : 0.f;
  }
  const float sl2 = float(p.scale) * kX3Log2e;
  float* const ds_full = p.grad_bias_full ? static_cast<float*>(p.grad_bias_full) + x.base * x.nk : nullptr;
  float dqt[2][32];  // dQᵀ: rows d = 64 mb + 16 warp + g (+ 8), columns q = 8i + 2t (+ 1)
#pragma unroll
  for (int mb = 0; mb < 2; ++mb)
#pragma unroll
    for (int i = 0; i < 32; ++i) dqt[mb][i] = 0.f;
  float s[BK / 2], dp[BK / 2];
  auto qdesc = [&](uint32_t at, int kk) {
    return sm90::desc_sw128(sb + at + (kk / 4) * L::q_atom + (kk % 4) * 32, 16, 1024);
  };
  auto tdesc = [&](uint32_t at, int kk) {
    return sm90::desc_sw128(sb + at + (kk / 4) * L::t_atom + (kk % 4) * 32, 16, 1024);
  };
  auto release = [&](uint32_t bar) {
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + bar);
  };
  if (ntiles > 0) sm90::mbar_wait(sb + L::bar_qready, 0);
  for (int j = 0; j < ntiles; ++j) {
    const int j0 = j * BK;
    // (both tiles before the fence: a wait between the two chains made ptxas serialise them, C7520)
    sm90::mbar_wait(sb + L::bar_kready, j & 1);
    sm90::mbar_wait(sb + L::bar_vready, j & 1);
    sm90::reg_fence(s);
    sm90::reg_fence(dp);
    sm90::wgmma_fence();
    if (kLo) {
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<BK>(s, qdesc(L::qhi, kk), tdesc(L::klo, kk), kk > 0);
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<BK>(s, qdesc(L::qlo, kk), tdesc(L::khi, kk), true);
    }
#pragma unroll
    for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<BK>(s, qdesc(L::qhi, kk), tdesc(L::khi, kk), kLo || kk > 0);
    sm90::wgmma_commit();
    if (kLo) {
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<BK>(dp, qdesc(L::dohi, kk), tdesc(L::vlo, kk), kk > 0);
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<BK>(dp, qdesc(L::dolo, kk), tdesc(L::vhi, kk), true);
    }
#pragma unroll
    for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<BK>(dp, qdesc(L::dohi, kk), tdesc(L::vhi, kk), kLo || kk > 0);
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
    sm90::reg_fence(s);
    sm90::reg_fence(dp);
    release(L::bar_vfree);
    // P and dS in the s registers (masked entries set to zero, not multiplied: padding keys)
#pragma unroll
    for (int i = 0; i < BK / 8; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int hr = r >> 1, jj = j0 + 8 * i + 2 * t + (r & 1);
        float ds = 0.f;
        if (jj < kend[hr]) {
          float v = s[4 * i + r] * sl2;
          if (x.bias) v += kX3Log2e * x.bias[(row0 + 8 * hr) * x.nk + jj];
          if (v != -INFINITY) ds = exp2f(v - lse2[hr]) * (dp[4 * i + r] - drow[hr]);
        }
        s[4 * i + r] = ds;
        if (ds_full && row0 + 8 * hr < p.nq && jj < x.nk) ds_full[(row0 + 8 * hr) * x.nk + jj] = ds;
      }
    // dQᵀ += Kᵀ dSᵀ: Kᵀ fragments from the split K tile, then K is free
    x3_product_t<D, BK, kLo>(dqt, s, base, sb, L::dshi, L::dslo, L::khi, L::klo, L::t_atom, warp, g, t);
    release(L::bar_kfree);
    sm90::named_barrier(2, 128);  // every warp's dQ products have read dS before the next tile writes it
  }
  // dQ[q][d] = scale · dQᵀ[d][q]
  if (p.grad_q) {
    float* const dq = static_cast<float*>(p.grad_q) + x.base * D;
    const float sc = float(p.scale);
#pragma unroll
    for (int mb = 0; mb < D / 64; ++mb)
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int d = 64 * mb + 16 * warp + g + 8 * (r >> 1);
          const int64_t q = q0 + 8 * i + 2 * t + (r & 1);
          if (q < p.nq) dq[q * D + d] = sc * dqt[mb][4 * i + r];
        }
  }
#else
  (void)p, (void)maps;
#if defined(__CUDA_ARCH__)
  __trap();
#endif
#endif
}

// ---- dK/dV pass ----------------------------------------------------------------------------------------
template <int D, int kTerms>
__global__ void __launch_bounds__(XB::kThreads, 1)
    tc_sm90_x3_dkv_kernel(const AttentionParams p, const __grid_constant__ X3DkvMaps maps) {
#if MK_SM90X3B_BODY
  static_assert(kTerms == 1 || kTerms == 3, "3xTF32 or TF32");
  constexpr bool kLo = kTerms == 3;
  using L = X3DkvLayout<D>;
  constexpr int TQ = XB::kTile;
  const uint32_t raw = sm90::smem_addr(mk_attention_smem);
  const uint32_t sb = (raw + 1023u) & ~1023u;
  unsigned char* const base = mk_attention_smem + (sb - raw);
  const int64_t kblocks = (p.nk + XB::kRows - 1) / XB::kRows;
  const int64_t bk = blockIdx.x / kblocks;  // b * Hkv + hk
  const int64_t k0 = (blockIdx.x % kblocks) * XB::kRows;
  const int64_t b = bk / p.kv_heads, hk = bk % p.kv_heads, G = p.heads / p.kv_heads;
  const TcHead<float> x0 = tc_head<float>(p, b, hk * G);  // (len, off and kh of the KV head)
  // the query tiles: for each query head of the group, rows from the first that sees key k0
  const int64_t rfirst = k0 < x0.len ? std::max<int64_t>(0, x0.first_row(k0)) / TQ * TQ : p.nq;
  const int64_t per_head = rfirst < p.nq ? (p.nq - rfirst + TQ - 1) / TQ : 0;
  const int ntiles = int(per_head * G);
  const int wg = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32;
  if (threadIdx.x == 0) {
    for (uint32_t bb : {L::bar_kvland, L::bar_kvready, L::bar_land, L::bar_qready, L::bar_doready})
      sm90::mbar_init(sb + bb, 1);
    sm90::mbar_init(sb + L::bar_qfree, 4);
    sm90::mbar_init(sb + L::bar_dofree, 4);
    sm90::mbar_init_fence();
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer ----
    if (ntiles == 0) return;
    const bool leader = tid == 0;
    const int keep = int(std::min<int64_t>(XB::kRows, std::max<int64_t>(0, x0.len - k0)));
    auto load = [&](const CUtensorMap* map, int a_tile) {
      const int64_t h = hk * G + a_tile / per_head, r = rfirst + (a_tile % per_head) * TQ;
      for (int a = 0; a < L::kAtoms; ++a)
        sm90::tma_load_3d(sb + L::land + a * L::t_atom, map, 32 * a, int(r), int(b * p.heads + h), sb + L::bar_land);
    };
    if (leader) {
      sm90::mbar_arrive_expect_tx(sb + L::bar_kvland, 2 * L::ktile);
      for (int a = 0; a < L::kAtoms; ++a) {
        sm90::tma_load_3d(sb + L::khi + a * L::k_atom, &maps.k, 32 * a, int(k0), int(bk), sb + L::bar_kvland);
        sm90::tma_load_3d(sb + L::vhi + a * L::k_atom, &maps.v, 32 * a, int(k0), int(bk), sb + L::bar_kvland);
      }
      sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
      load(&maps.q, 0);
    }
    auto publish = [&](uint32_t bar) {
      sm90::fence_proxy_async();
      sm90::named_barrier(1, 128);
      if (leader) sm90::mbar_arrive(sb + bar);
    };
    sm90::mbar_wait(sb + L::bar_kvland, 0);
    x3_split_tile<kLo>(base + L::khi, base + L::khi, base + L::klo, L::ktile, tid, L::k_atom, keep);
    x3_split_tile<kLo>(base + L::vhi, base + L::vhi, base + L::vlo, L::ktile, tid, L::k_atom, keep);
    publish(L::bar_kvready);
    for (int a = 0; a < ntiles; ++a) {
      if (a > 0) sm90::mbar_wait(sb + L::bar_qfree, (a - 1) & 1);
      sm90::mbar_wait(sb + L::bar_land, 0);
      x3_split_tile<kLo>(base + L::land, base + L::qhi, base + L::qlo, L::tile, tid);
      publish(L::bar_qready);
      if (leader) {
        sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
        load(&maps.dout, a);
      }
      if (a > 0) sm90::mbar_wait(sb + L::bar_dofree, (a - 1) & 1);
      sm90::mbar_wait(sb + L::bar_land, 1);
      x3_split_tile<kLo>(base + L::land, base + L::dohi, base + L::dolo, L::tile, tid);
      publish(L::bar_doready);
      if (leader && a + 1 < ntiles) {
        sm90::mbar_arrive_expect_tx(sb + L::bar_land, L::tile);
        load(&maps.q, a + 1);
      }
    }
    return;
  }

  // ---- consumer ----
  const int g = lane >> 2, t = lane & 3;
  const int64_t key0 = k0 + 16 * warp + g;  // this thread's keys: key0, key0 + 8
  const float sl2 = float(p.scale) * kX3Log2e;
  float dvt[2][32], dkt[2][32];  // dVᵀ, dKᵀ: rows d = 64 mb + 16 warp + g (+ 8), columns key = 8i + 2t (+ 1)
#pragma unroll
  for (int mb = 0; mb < 2; ++mb)
#pragma unroll
    for (int i = 0; i < 32; ++i) dvt[mb][i] = dkt[mb][i] = 0.f;
  float st[TQ / 2], dpt[TQ / 2];
  auto kdesc = [&](uint32_t at, int kk) {
    return sm90::desc_sw128(sb + at + (kk / 4) * L::k_atom + (kk % 4) * 32, 16, 1024);
  };
  auto tdesc = [&](uint32_t at, int kk) {
    return sm90::desc_sw128(sb + at + (kk / 4) * L::t_atom + (kk % 4) * 32, 16, 1024);
  };
  auto release = [&](uint32_t bar) {
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(sb + bar);
  };
  if (ntiles > 0) sm90::mbar_wait(sb + L::bar_kvready, 0);
  for (int a = 0; a < ntiles; ++a) {
    const int64_t h = hk * G + a / per_head, r0 = rfirst + (a % per_head) * TQ;
    const TcHead<float> x = tc_head<float>(p, b, h);
    sm90::mbar_wait(sb + L::bar_qready, a & 1);
    sm90::mbar_wait(sb + L::bar_doready, a & 1);
    sm90::reg_fence(st);
    sm90::reg_fence(dpt);
    sm90::wgmma_fence();
    if (kLo) {
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<TQ>(st, kdesc(L::khi, kk), tdesc(L::qlo, kk), kk > 0);
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<TQ>(st, kdesc(L::klo, kk), tdesc(L::qhi, kk), true);
    }
#pragma unroll
    for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<TQ>(st, kdesc(L::khi, kk), tdesc(L::qhi, kk), kLo || kk > 0);
    sm90::wgmma_commit();
    if (kLo) {
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<TQ>(dpt, kdesc(L::vhi, kk), tdesc(L::dolo, kk), kk > 0);
#pragma unroll
      for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<TQ>(dpt, kdesc(L::vlo, kk), tdesc(L::dohi, kk), true);
    }
#pragma unroll
    for (int kk = 0; kk < D / 8; ++kk) sm90::wgmma_ss_tf32<TQ>(dpt, kdesc(L::vhi, kk), tdesc(L::dohi, kk), kLo || kk > 0);
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
    sm90::reg_fence(st);
    sm90::reg_fence(dpt);
    // Pᵀ (in st) and dSᵀ (in dpt): rows keys, columns the tile's query rows
#pragma unroll
    for (int i = 0; i < TQ / 8; ++i)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int64_t row = r0 + 8 * i + 2 * t + c;
        const bool in = row < p.nq;
        const float l2 = in ? x.lse[row] * kX3Log2e : 0.f, dr = in ? x.drow[row] : 0.f;
        const int64_t ke = in ? x.key_end(row) : 0;
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          const int e = 4 * i + 2 * hr + c;
          const int64_t key = key0 + 8 * hr;
          float pv = 0.f, ds = 0.f;
          if (key < ke) {
            float v = st[e] * sl2;
            if (x.bias) v += kX3Log2e * x.bias[row * x.nk + key];
            if (v != -INFINITY) {
              pv = exp2f(v - l2);
              ds = pv * (dpt[e] - dr);
            }
          }
          st[e] = pv;
          dpt[e] = ds;
        }
      }
    // dVᵀ += dOᵀ P: Pᵀ into the [key][q] buffer, dOᵀ fragments from the split dO tile
    x3_product_t<D, TQ, kLo>(dvt, st, base, sb, L::pthi, L::ptlo, L::dohi, L::dolo, L::t_atom, warp, g, t);
    release(L::bar_dofree);
    sm90::named_barrier(2, 128);  // every warp's dV products have read Pᵀ before dSᵀ overwrites it
    // dKᵀ += Qᵀ dS: dSᵀ into the same buffer, Qᵀ fragments from the split Q tile
    x3_product_t<D, TQ, kLo>(dkt, dpt, base, sb, L::pthi, L::ptlo, L::qhi, L::qlo, L::t_atom, warp, g, t);
    release(L::bar_qfree);
    sm90::named_barrier(2, 128);  // every warp's dK products have read dSᵀ before the next tile writes
  }
  // dK[key][d] = scale · dKᵀ[d][key], dV[key][d] = dVᵀ[d][key] (keys past Nk: none written)
  const int64_t krow = bk * p.nk;
  const float sc = float(p.scale);
#pragma unroll
  for (int mb = 0; mb < D / 64; ++mb)
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int d = 64 * mb + 16 * warp + g + 8 * (r >> 1);
        const int64_t key = k0 + 8 * i + 2 * t + (r & 1);
        if (key < p.nk) {
          if (p.grad_k) static_cast<float*>(p.grad_k)[(krow + key) * D + d] = sc * dkt[mb][4 * i + r];
          if (p.grad_v) static_cast<float*>(p.grad_v)[(krow + key) * D + d] = dvt[mb][4 * i + r];
        }
      }
#else
  (void)p, (void)maps;
#if defined(__CUDA_ARCH__)
  __trap();
#endif
#endif
}

template <int D, int kTerms>
int x3_backward_dp(const AttentionParams& p, cudaStream_t stream) {
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (X3DqLayout<D>::bytes > optin || X3DkvLayout<D>::bytes > optin) return KERNEL_UNSUPPORTED;
  const int64_t qplanes = p.batch * p.heads, kplanes = p.batch * p.kv_heads;
  const bool pass_q = p.grad_q || p.grad_bias_full, pass_k = p.grad_k || p.grad_v;
  X3DqMaps mq;
  X3DkvMaps mk;
  std::memset(&mq, 0, sizeof mq);
  std::memset(&mk, 0, sizeof mk);
  if (pass_q && (tc_sm90_encode_map_f32(&mq.q, p.q, qplanes, p.nq, D, XB::kRows) ||
                 tc_sm90_encode_map_f32(&mq.dout, p.dout, qplanes, p.nq, D, XB::kRows) ||
                 tc_sm90_encode_map_f32(&mq.k, p.k, kplanes, p.nk, D, XB::kTile) ||
                 tc_sm90_encode_map_f32(&mq.v, p.v, kplanes, p.nk, D, XB::kTile)))
    return KERNEL_UNSUPPORTED;
  if (pass_k && (tc_sm90_encode_map_f32(&mk.k, p.k, kplanes, p.nk, D, XB::kRows) ||
                 tc_sm90_encode_map_f32(&mk.v, p.v, kplanes, p.nk, D, XB::kRows) ||
                 tc_sm90_encode_map_f32(&mk.q, p.q, qplanes, p.nq, D, XB::kTile) ||
                 tc_sm90_encode_map_f32(&mk.dout, p.dout, qplanes, p.nq, D, XB::kTile)))
    return KERNEL_UNSUPPORTED;
  // (everything that can refuse has been asked: from here on the passes run)
  const int64_t rows = p.batch * p.heads * p.nq;
  const int64_t rblocks = std::min<int64_t>((rows + TT::kWarps - 1) / TT::kWarps, 65535LL * 32);
  if (int e = tc_launch(tc_rowdot_kernel<Tf32>, rblocks, 0, stream, rows, int(p.dv), static_cast<const float*>(p.out),
                        static_cast<const float*>(p.dout), static_cast<float*>(p.workspace)))
    return e;
  if (pass_q) {
    const int64_t blocks = qplanes * ((p.nq + XB::kRows - 1) / XB::kRows);
    if (int e = tc_launch_n(tc_sm90_x3_dq_kernel<D, kTerms>, blocks, XB::kThreads, X3DqLayout<D>::bytes, stream, p, mq))
      return e;
  }
  if (pass_k) {
    const int64_t blocks = kplanes * ((p.nk + XB::kRows - 1) / XB::kRows);
    if (int e = tc_launch_n(tc_sm90_x3_dkv_kernel<D, kTerms>, blocks, XB::kThreads, X3DkvLayout<D>::bytes, stream, p, mk))
      return e;
  }
  return 0;
}

}  // namespace

namespace {
int x3_backward_entry(const AttentionParams& p, void* stream, int terms) {
  if (!tc_sm90_x3_launchable(p) || !p.workspace || (reinterpret_cast<uintptr_t>(p.dout) & 15))
    return KERNEL_UNSUPPORTED;
  const cudaStream_t s = as_stream(stream);
  if (terms == 1) return p.d == 64 ? x3_backward_dp<64, 1>(p, s) : x3_backward_dp<128, 1>(p, s);
  return p.d == 64 ? x3_backward_dp<64, 3>(p, s) : x3_backward_dp<128, 3>(p, s);
}
}  // namespace

int tc_sm90_x3_backward(const AttentionParams& p, void* stream) { return x3_backward_entry(p, stream, 3); }

int tc_sm90_tf32_backward(const AttentionParams& p, void* stream) {
  if (!p.allow_tf32) return KERNEL_UNSUPPORTED;
  return x3_backward_entry(p, stream, 1);
}

}  // namespace cuda
}  // namespace mk
