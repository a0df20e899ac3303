// Softmax attention on the CPU: what the four pass files share (MK_MULTI_ISA: every pass file is
// compiled for AVX2 and AVX-512; the AVX2 build holds the dispatchers). Shapes, masking, the
// parameter block and the per-head view in mk/attention.h.
//
//   S = scale q kᵀ + bias (masked)   P = softmax(S)   O = P v   lse = logsumexp(S)
//
// Every pass walks [kBlockQ x kBlockK] tiles of S, recomputing P = exp(S − lse) from the saved
// row log-sum-exp, so memory stays O(N·D) (the optional full bias gradient aside).
//   forward.cpp            query blocks in parallel (those with the most keys first), online
//                          softmax over key blocks on transposed tiles Sᵀ = K Qᵀ, rows in the
//                          vector lanes
//   backward.cpp           preprocess D = rowsum(dO ∘ O); dQ pass (query blocks); dK/dV pass (key
//                          blocks, looping over the query heads of a KV head): no atomics, so the
//                          result does not depend on the thread count
//   backward_backward.cpp  the vector-Jacobian product of the backward (derivation there): row
//                          statistics C, D, E; query pass (for q, dO and the bias); key pass (for
//                          k and v)
//   jvp.cpp                one query pass: tO = Σ P tS v − (Σ P tS) O + P tv, tlse = Σ P tS
//
// BF16 / F16 (forward and backward only): q, k, v, out, dout are widened to F32 copies in the
// workspace, the F32 kernels run on them (the bias is widened and the full dS rounded on the fly,
// so no Nq×Nk buffer is needed), and out, dq, dk, dv are rounded to the 16-bit type (nearest
// even). lse stays F32. The results are bit for bit those of the F32 kernels on the rounded
// inputs, rounded. The double backward and the JVP refuse 16-bit types (native/ checks first).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "mk/cpu_parallel.h"
#include "mk/cpu_tile.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"
#include "mk/scalar.h"
#include "mk/vec_math.h"

namespace mk {
namespace cpu {

struct AttentionTraits {
  static constexpr int64_t kBlockQ = 64;  // query rows per tile (32 measured 4.5 % slower forward, 2.5 % backward, 2026-12-02)
  static constexpr int64_t kBlockK = 64;  // keys per tile: the inner vector loops run over these
  static_assert(kBlockK % 16 == 0, "key tiles must fill whole AVX-512 vectors");
  // per-thread scratch in elements: transposed K, V, gK, gV tiles; four score-shaped tiles;
  // two row accumulators; row statistics
  static int64_t scratch(int64_t d, int64_t dv) {
    const int64_t dm = std::max(d, dv);
    return 4 * dm * kBlockK + 4 * kBlockQ * kBlockK + 2 * kBlockQ * dm + 8 * kBlockQ + 2 * kBlockK * dm;
  }
};

// Size helpers, internal and in the ISA's inline namespace, so that each ISA build keeps its
// own copy (see mk/isa_ns.h).
MK_ISA_BEGIN
namespace {

// Bytes of workspace of the F32/F64 kernels (element size esize).
[[maybe_unused]] int64_t plain_workspace_bytes(const AttentionParams& p, int threads, int64_t esize) {
  const int64_t stats = 3 * p.batch * p.heads * p.nq;
  const int64_t tiles = p.batch * p.kv_heads * ((p.nk + AttentionTraits::kBlockK - 1) / AttentionTraits::kBlockK);
  const int64_t packed = 2 * tiles * AttentionTraits::kBlockK * (p.d + p.dv);  // k, v, gk, gv
  return esize * (int64_t(threads) * AttentionTraits::scratch(p.d, p.dv) + stats + packed);
}

bool is_half(int dtype) { return dtype == MK_BF16 || dtype == MK_F16; }

// The F32 copies a 16-bit call keeps after the F32 kernels' workspace, in floats, each region
// rounded up to 16 floats (64 bytes): q, k, v, out, dout, dq, dk, dv.
struct HalfRegions {
  static constexpr int kCount = 8;
  int64_t size[kCount];
  explicit HalfRegions(const AttentionParams& p) {
    const int64_t qd = p.batch * p.heads * p.nq * p.d, kd = p.batch * p.kv_heads * p.nk * p.d;
    const int64_t kv = p.batch * p.kv_heads * p.nk * p.dv, ov = p.batch * p.heads * p.nq * p.dv;
    const int64_t raw[kCount] = {qd, kd, kv, ov, ov, qd, kd, kv};
    for (int i = 0; i < kCount; ++i) size[i] = (raw[i] + 15) / 16 * 16;
  }
  static int64_t base_bytes(const AttentionParams& p, int threads) {
    return (plain_workspace_bytes(p, threads, 4) + 63) / 64 * 64;
  }
  int64_t floats() const {
    int64_t n = 0;
    for (int i = 0; i < kCount; ++i) n += size[i];
    return n;
  }
};

}  // namespace
MK_ISA_END

namespace MK_ISA_NS {
namespace {

using Traits = AttentionTraits;
constexpr int64_t BQ = Traits::kBlockQ, BK = Traits::kBlockK;

template <class T>
constexpr T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// The CPU kernels' parameters: the block, plus k, v and the second inputs' k, v packed into
// [B*Hkv][key tile][cols][tile] blocks inside the workspace (set by Layout; null = not packed), and
// the operands' (batch, head, row) strides resolved (attention_strides: the block's where it gives
// them, in the forward and the backward in F32 / F64, else those of contiguous tensors), so every
// pass indexes through them alike.
struct CpuParams : AttentionParams {
  const void* packed_k = nullptr;
  const void* packed_v = nullptr;
  const void* packed_gk = nullptr;
  const void* packed_gv = nullptr;
  // q, k, v, out, dout, grad_q, grad_k, grad_v; the second inputs (second.*: the cotangents of the
  // backward_backward, the tangents of the jvp); the backward_backward's outputs cot_q, cot_k,
  // cot_v, cot_dout; the jvp's tan_out
  int64_t qs[3], ks[3], vs[3], os[3], dos[3], gqs[3], gks[3], gvs[3];
  int64_t sqs[3], sks[3], svs[3], cqs[3], cks[3], cvs[3], cdos[3], tos[3];
  explicit CpuParams(const AttentionParams& p) : AttentionParams(p) {
    attention_strides(p.q_strides, p.heads, p.nq, p.d, qs);
    attention_strides(p.k_strides, p.kv_heads, p.nk, p.d, ks);
    attention_strides(p.v_strides, p.kv_heads, p.nk, p.dv, vs);
    attention_strides(p.out_strides, p.heads, p.nq, p.dv, os);
    attention_strides(p.dout_strides, p.heads, p.nq, p.dv, dos);
    attention_strides(p.grad_q_strides, p.heads, p.nq, p.d, gqs);
    attention_strides(p.grad_k_strides, p.kv_heads, p.nk, p.d, gks);
    attention_strides(p.grad_v_strides, p.kv_heads, p.nk, p.dv, gvs);
    attention_strides(p.second.q_strides, p.heads, p.nq, p.d, sqs);
    attention_strides(p.second.k_strides, p.kv_heads, p.nk, p.d, sks);
    attention_strides(p.second.v_strides, p.kv_heads, p.nk, p.dv, svs);
    attention_strides(p.cot_q_strides, p.heads, p.nq, p.d, cqs);
    attention_strides(p.cot_k_strides, p.kv_heads, p.nk, p.d, cks);
    attention_strides(p.cot_v_strides, p.kv_heads, p.nk, p.dv, cvs);
    attention_strides(p.cot_dout_strides, p.heads, p.nq, p.dv, cdos);
    attention_strides(p.tan_out_strides, p.heads, p.nq, p.dv, tos);
  }
};

// One (batch, query head) pair: the shared view of mk/attention.h plus the CPU's packed tiles and
// 16-bit bias.
template <class T>
struct Head : AttentionHead<T> {
  const T *kp = nullptr, *vp = nullptr, *gkp = nullptr, *gvp = nullptr;  // packed tiles (see CpuParams)
  const uint16_t* bias16 = nullptr;  // a 16-bit bias (16-bit calls; bias is null then)
  int half = 0;                      // BF16 or F16 for a 16-bit call, else 0
  T scale;
  int64_t ldq, ldk, ldv, ldo, lddo;  // row strides of q, k, v, out, dout (CpuParams)
  int64_t ldgq, ldgk, ldgv;          // row strides of the second inputs gq, gk, gv
};

template <class T>
Head<T> head(const CpuParams& p, int64_t b, int64_t h) {
  Head<T> x;
  static_cast<AttentionHead<T>&>(x) = attention_head<T>(p, b, h);
  // the operands through their strides (the same pointers as attention_head's when contiguous)
  const int64_t hk = h / (p.heads / p.kv_heads);
  auto at = [](const void* base, const int64_t* s, int64_t bb, int64_t hh) {
    return base ? static_cast<const T*>(base) + bb * s[0] + hh * s[1] : nullptr;
  };
  x.q = at(p.q, p.qs, b, h);
  x.k = at(p.k, p.ks, b, hk);
  x.v = at(p.v, p.vs, b, hk);
  x.out = at(p.out, p.os, b, h);
  x.dout = at(p.dout, p.dos, b, h);
  x.gq = at(p.second.q, p.sqs, b, h);
  x.gk = at(p.second.k, p.sks, b, hk);
  x.gv = at(p.second.v, p.svs, b, hk);
  x.ldq = p.qs[2];
  x.ldk = p.ks[2];
  x.ldv = p.vs[2];
  x.ldo = p.os[2];
  x.lddo = p.dos[2];
  x.ldgq = p.sqs[2];
  x.ldgk = p.sks[2];
  x.ldgv = p.svs[2];
  if (is_half(p.dtype)) {
    x.bias = nullptr;
    x.bias16 = p.bias ? static_cast<const uint16_t*>(p.bias) + (b * p.bias_bs + h * p.bias_hs) : nullptr;
    x.half = p.dtype;
  }
  const int64_t nb = (p.nk + BK - 1) / BK;
  auto packed = [&](const void* base, int64_t cols) {
    return base ? static_cast<const T*>(base) + x.kh * nb * cols * BK : nullptr;
  };
  x.kp = packed(p.packed_k, p.d);
  x.vp = packed(p.packed_v, p.dv);
  x.gkp = packed(p.packed_gk, p.d);
  x.gvp = packed(p.packed_gv, p.dv);
  x.scale = T(p.scale);
  return x;
}

// The score-shaped tiles: dS, ḡS and ḡdP are written in place of dP, G and T, each element
// right after it is read (nothing reads dP, G or T after them), so a tile step touches four
// 16 KB tiles instead of seven: fewer of its loads and stores miss the 48 KB L1.
template <class T>
struct Scratch {
  const T *kt, *vt, *gkt, *gvt;      // [dm, BK] transposed tiles (pointers into the packed copies)
  T *s, *dp, *g, *t;                 // [BQ, BK]
  T *ds, *gs, *gdp;                  // = dp, g, t (see above)
  T *acc0, *acc1;                    // [BQ, dm]
  T *rows;                           // [8, BQ]
  T *kacc0, *kacc1;                  // [BK, dm]
  Scratch(T* base, int64_t d, int64_t dv) {
    const int64_t dm = std::max(d, dv);
    T* p = base;
    kt = vt = gkt = gvt = nullptr;
    p += 4 * dm * BK;  // (unused: the tiles are packed once per call)
    s = p; p += BQ * BK; dp = p; p += BQ * BK; g = p; p += BQ * BK; t = p; p += BQ * BK;
    ds = dp; gs = g; gdp = t;
    acc0 = p; p += BQ * dm; acc1 = p; p += BQ * dm;
    rows = p; p += 8 * BQ;
    kacc0 = p; p += BK * dm; kacc1 = p;
  }
};

// s = scale q kᵀ + bias over rows [r0, r0+R) and keys [c0, c0+C), masked to -inf; kt holds the
// transposed key tile.
template <class T>
void scores(const Head<T>& h, int64_t r0, int64_t R, int64_t c0, int64_t C, const T* kt, T* s) {
  tile::gemm<T>(R, C, h.d, h.scale, h.q + r0 * h.ldq, h.ldq, 1, kt, BK, s, BK, false);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t i = r0 + r, e = h.key_end(i);
    T* sr = s + r * BK;
    if (h.bias) {
      const T* br = h.bias + i * h.nk + c0;
      for (int64_t c = 0; c < C; ++c) sr[c] += br[c];
    } else if (h.bias16) {
      const uint16_t* br = h.bias16 + i * h.nk + c0;
      if (h.half == MK_BF16)
        for (int64_t c = 0; c < C; ++c) sr[c] += T(bf16_bits_to_f32(br[c]));
      else
        for (int64_t c = 0; c < C; ++c) sr[c] += T(f16_bits_to_f32(br[c]));
    }
    for (int64_t c = std::max<int64_t>(e - c0, 0); c < C; ++c) sr[c] = neg_inf<T>();
  }
}

// P = exp(S - lse) in place (0 where masked or the row is fully masked), with the forward's
// vmath::exp_nonpos (S - lse <= 0 up to rounding). (Measured 2026-12-02, one thread,
// [1,8,1024,64], 12 alternating runs: median 33.3 ms with vmath::exp, 32.0 with exp_nonpos.)
template <class T>
void probabilities(const Head<T>& h, int64_t r0, int64_t R, int64_t C, T* s) {
  for (int64_t r = 0; r < R; ++r) {
    const T l = h.lse[r0 + r];
    T* sr = s + r * BK;
    if (l == neg_inf<T>()) {
      for (int64_t c = 0; c < C; ++c) sr[c] = T(0);
      continue;
    }
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) sr[c] = vmath::exp_nonpos(sr[c] - l);  // s <= lse up to rounding; exp(-inf) = 0
  }
}

// The transposed [cols, BK] tile of key tile c0 from a packed copy (see pack_tiles).
template <class T>
const T* tile_t(const T* packed, int64_t cols, int64_t c0) {
  return packed + (c0 / BK) * cols * BK;
}

// Key-side operands (k, v and their tangents, [B, Hkv, n, cols] through (batch, head, row)
// strides st) transposed once per call into [B*Hkv][key tile][cols][BK] blocks, so the tile loops
// read unit-stride key rows instead of transposing the same tile again for every query block.
template <class T>
void pack_tiles(const void* src, int64_t batch, int64_t kv_heads, const int64_t* st, int64_t n, int64_t cols,
                void* dst, bool parallel) {
  if (!src || !dst) return;
  const int64_t nb = (n + BK - 1) / BK;
  const T* s = static_cast<const T*>(src);
  T* d = static_cast<T*>(dst);
  parallel_for(batch * kv_heads * nb, parallel, [&](int64_t t) {
    const int64_t h = t / nb, c0 = (t % nb) * BK, C = std::min(BK, n - c0);
    const T* rows = s + (h / kv_heads) * st[0] + (h % kv_heads) * st[1] + c0 * st[2];
    tile::transpose<T>(C, cols, rows, st[2], d + t * cols * BK, BK);
  });
}

// G = scale (gq kᵀ + q gkᵀ) + gbias on a tile (zero when no cotangent is given).
template <class T>
void g_tile(const Head<T>& h, const Scratch<T>& w, int64_t r0, int64_t R, int64_t c0, int64_t C) {
  bool any = false;
  if (h.gq) {
    tile::gemm<T>(R, C, h.d, h.scale, h.gq + r0 * h.ldgq, h.ldgq, 1, w.kt, BK, w.g, BK, false);
    any = true;
  }
  if (h.gk) {
    tile::gemm<T>(R, C, h.d, h.scale, h.q + r0 * h.ldq, h.ldq, 1, w.gkt, BK, w.g, BK, any);
    any = true;
  }
  if (!any)
    for (int64_t r = 0; r < R; ++r) std::fill_n(w.g + r * BK, C, T(0));
  if (h.gbias)
    for (int64_t r = 0; r < R; ++r) {
      const T* gb = h.gbias + (r0 + r) * h.nk + c0;
      for (int64_t c = 0; c < C; ++c) w.g[r * BK + c] += gb[c];
    }
}

// Whether a pass forks OpenMP threads: only with work for more than one thread and at least
// kMinParallelMacs multiply-adds (B·H·Nq·Nk·(D + Dv), ~50 µs on one core). A fork costs a few
// microseconds on an idle machine and far more on a loaded one, where libgomp's spinning workers
// compete with other processes: a [1, 2, 16, 8] F64 call took 33 µs with 2 threads against 7 µs
// with one, and milliseconds on busy cores (issue "Nothing silently wrong", item 5). The passes'
// results do not depend on the thread count, so this changes timing only.
constexpr int64_t kMinParallelMacs = int64_t(1) << 18;
inline bool attention_parallel(const AttentionParams& p, int64_t tasks) {
  // in double: for the largest shapes the product of five sizes can exceed int64
  const double macs = double(p.batch) * double(p.heads) * double(p.nq) * double(p.nk) * double(p.d + p.dv);
  return tasks > 1 && omp_get_max_threads() > 1 && macs >= double(kMinParallelMacs);
}

// Row sums of tiles that must keep their order. acc[r] += Σ_c x(r, c) with each row's terms
// added one after the other in key order, as a plain loop over c adds them (a vectorised sum
// would reorder them and change the results' bits), but kSerialRows rows at a time: one row's
// chain of dependent adds (4 cycles each) overlaps with the others', and the sums stay in
// registers. A loop that added into acc[r] in memory waited ~9 cycles per element on the store
// and the reload. `terms(r, c, sums)` adds the terms of element (r, c) to sums[0..K).
constexpr int64_t kSerialRows = 8;
template <int K, class T, class Terms>
__attribute__((always_inline)) inline void serial_row_sums(int64_t R, int64_t C, T* const (&acc)[K], Terms terms) {
  int64_t r = 0;
  for (; r + kSerialRows <= R; r += kSerialRows) {
    T a[kSerialRows][K];
#pragma GCC unroll 8
    for (int64_t j = 0; j < kSerialRows; ++j)
      for (int k = 0; k < K; ++k) a[j][k] = acc[k][r + j];
    for (int64_t c = 0; c < C; ++c)
#pragma GCC unroll 8
      for (int64_t j = 0; j < kSerialRows; ++j) terms(r + j, c, a[j]);
#pragma GCC unroll 8
    for (int64_t j = 0; j < kSerialRows; ++j)
      for (int k = 0; k < K; ++k) acc[k][r + j] = a[j][k];
  }
  for (; r < R; ++r) {
    T a[K];
    for (int k = 0; k < K; ++k) a[k] = acc[k][r];
    for (int64_t c = 0; c < C; ++c) terms(r, c, a);
    for (int k = 0; k < K; ++k) acc[k][r] = a[k];
  }
}

template <class T>
int64_t row_blocks(int64_t n) {
  return (n + BQ - 1) / BQ;
}

// n rows of cols elements from a dense [n, cols] tile to dst rows ld apart (one copy when dense).
template <class T>
void store_rows(T* dst, int64_t ld, const T* src, int64_t n, int64_t cols) {
  if (ld == cols) {
    std::memcpy(dst, src, sizeof(T) * size_t(n * cols));
    return;
  }
  for (int64_t r = 0; r < n; ++r) std::memcpy(dst + r * ld, src + r * cols, sizeof(T) * size_t(cols));
}

// Row r0 of head (b, h) of a [B, H|Hkv, n, cols] output through its (batch, head, row) strides st.
template <class T>
T* row_at(void* base, const int64_t* st, int64_t b, int64_t h, int64_t r0) {
  return static_cast<T*>(base) + b * st[0] + h * st[1] + r0 * st[2];
}

// ---- shared by the backward and the backward of the backward ------------------------------------
// D = rowsum(dO ∘ O); rowstat layout in the shared workspace: D (and C, E for the double backward), [B*H*Nq] each.
template <class T>
void rowsum_dout_out(const CpuParams& p, T* D) {
  const int64_t rows = p.batch * p.heads * p.nq;
  const T* o = static_cast<const T*>(p.out);
  const T* g = static_cast<const T*>(p.dout);
  parallel_for(rows, attention_parallel(p, rows), [&](int64_t i) {
    const int64_t b = i / (p.heads * p.nq), h = (i / p.nq) % p.heads, r = i % p.nq;
    D[i] = tile::dot(o + b * p.os[0] + h * p.os[1] + r * p.os[2], g + b * p.dos[0] + h * p.dos[1] + r * p.dos[2], p.dv);
  });
}

// Workspace layout (elements): per-thread scratch; row statistics D, C, E [B*H*Nq] each; the
// packed key-side tiles (k, v, gk, gv). The sizes come from attention_workspace below.
template <class T>
struct Layout {
  T* scratch;
  int64_t per_thread;
  T *D, *C, *E;
  CpuParams p;  // a copy with the packed pointers set
  Layout(const AttentionParams& in, bool k, bool v, bool gk, bool gv) : p(in) {
    per_thread = Traits::scratch(in.d, in.dv);
    scratch = static_cast<T*>(in.workspace);
    const int64_t rows = in.batch * in.heads * in.nq;
    D = scratch + int64_t(omp_get_max_threads()) * per_thread;
    C = D + rows;
    E = C + rows;
    T* packed = E + rows;
    const int64_t heads = in.batch * in.kv_heads, nb = (in.nk + BK - 1) / BK;
    const int64_t kt = heads * nb * BK * in.d, vt = heads * nb * BK * in.dv;
    auto put = [&](bool want, const void* src, const int64_t* st, int64_t cols, int64_t size, const void*& dst) {
      if (want && src) {
        pack_tiles<T>(src, in.batch, in.kv_heads, st, in.nk, cols, packed, attention_parallel(in, heads * nb));
        dst = packed;
      }
      packed += size;
    };
    put(k, in.k, p.ks, in.d, kt, p.packed_k);
    put(v, in.v, p.vs, in.dv, vt, p.packed_v);
    put(gk, in.second.k, p.sks, in.d, kt, p.packed_gk);
    put(gv, in.second.v, p.svs, in.dv, vt, p.packed_gv);
  }
};

// ---- BF16 / F16 ----------------------------------------------------------------------------------
// n 16-bit values of type `dtype` to floats (null src: nothing).
[[maybe_unused]] void widen(int dtype, const void* src, float* dst, int64_t n) {
  if (!src) return;
  const uint16_t* s = static_cast<const uint16_t*>(src);
  parallel_for(n, n >= 16384, [&](int64_t i) { dst[i] = dtype == MK_BF16 ? bf16_bits_to_f32(s[i]) : f16_bits_to_f32(s[i]); });
}

// n floats to 16-bit values of type `dtype`, rounded to nearest even (null dst: nothing).
[[maybe_unused]] void narrow(int dtype, const float* src, void* dst, int64_t n) {
  if (!dst) return;
  uint16_t* d = static_cast<uint16_t*>(dst);
  parallel_for(n, n >= 16384, [&](int64_t i) { d[i] = dtype == MK_BF16 ? f32_to_bf16_bits(src[i]) : f32_to_f16_bits(src[i]); });
}

// The F32 copies of a 16-bit forward or backward (HalfRegions, after the F32 kernels' workspace),
// q, k and v widened, and the F32 parameters that point at them. The copy keeps dtype = BF16/F16,
// which tells the kernels that the bias and the full dS (grad_bias_full) are 16-bit (read and
// rounded tile by tile); lse is F32 both ways.
struct HalfCopies {
  float *q, *k, *v, *o, *dout, *dq, *dk, *dv;
  int64_t qd, kd, kv, ov;  // elements of q (and dq), k (dk), v (dv), out (dout)
  AttentionParams f;
  explicit HalfCopies(const AttentionParams& in) : f(in) {
    const HalfRegions reg(in);
    float* r[HalfRegions::kCount];
    float* at = reinterpret_cast<float*>(static_cast<char*>(in.workspace) +
                                         HalfRegions::base_bytes(in, omp_get_max_threads()));
    for (int i = 0; i < HalfRegions::kCount; ++i) {
      r[i] = at;
      at += reg.size[i];
    }
    q = r[0], k = r[1], v = r[2], o = r[3], dout = r[4], dq = r[5], dk = r[6], dv = r[7];
    qd = in.batch * in.heads * in.nq * in.d, kd = in.batch * in.kv_heads * in.nk * in.d;
    kv = in.batch * in.kv_heads * in.nk * in.dv, ov = in.batch * in.heads * in.nq * in.dv;
    widen(in.dtype, in.q, q, qd);
    widen(in.dtype, in.k, k, kd);
    widen(in.dtype, in.v, v, kv);
    f.q = q;
    f.k = k;
    f.v = v;
    // the copies are contiguous (native refuses strided 16-bit calls; this keeps them so regardless)
    for (int64_t* st : attention_stride_triples(f)) st[0] = st[1] = st[2] = 0;
  }
};

}  // namespace
}  // namespace MK_ISA_NS
}  // namespace cpu
}  // namespace mk
