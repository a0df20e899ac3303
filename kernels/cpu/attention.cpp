// Softmax attention on the CPU (MK_MULTI_ISA: compiled for AVX2 and AVX-512; the AVX2 build
// holds the dispatcher). Shapes and masking in mk/attention.h.
//
//   S = scale q kᵀ + bias (masked)   P = softmax(S)   O = P v   lse = logsumexp(S)
//
// Every pass walks [kBlockQ x kBlockK] tiles of S, recomputing P = exp(S − lse) from the saved
// row log-sum-exp, so memory stays O(N·D) (the optional full bias gradient aside).
//   forward            query blocks in parallel (those with the most keys first), online
//                      softmax over key blocks on transposed tiles Sᵀ = K Qᵀ, rows in the
//                      vector lanes
//   backward           preprocess D = rowsum(dO ∘ O); dQ pass (query blocks); dK/dV pass (key
//                      blocks, looping over the query heads of a KV head): no atomics, so the
//                      result does not depend on the thread count
//   backward_backward  the vector-Jacobian product of the backward (see the derivation in
//                      java/.../ops/Attention.java): row statistics C, D, E; query pass (for q,
//                      dO and the bias); key pass (for k and v)
//   jvp                one query pass: tO = Σ P tS v − (Σ P tS) O + P tv, tlse = Σ P tS
//
// BF16 / F16 (forward and backward only): q, k, v, out, dout are widened to F32 copies in the
// workspace, the F32 kernels run on them (the bias is widened and the full dS rounded on the fly,
// so no Nq×Nk buffer is needed), and out, dq, dk, dv are rounded to the 16-bit type (nearest
// even). lse stays F32. The results are bit for bit those of the F32 kernels on the rounded
// inputs, rounded. The double backward and the JVP refuse 16-bit types (native/ checks first).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

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
  // per-thread scratch in elements: transposed K, V, gK, gV tiles; seven score-shaped tiles;
  // two row accumulators; row statistics
  static int64_t scratch(int64_t d, int64_t dv) {
    const int64_t dm = std::max(d, dv);
    return 4 * dm * kBlockK + 7 * kBlockQ * kBlockK + 2 * kBlockQ * dm + 8 * kBlockQ + 2 * kBlockK * dm;
  }
};

// Size helpers, internal and in the ISA's inline namespace, so that each ISA build keeps its
// own copy (see mk/isa_ns.h).
MK_ISA_BEGIN
namespace {

// Bytes of workspace of the F32/F64 kernels (element size esize).
int64_t plain_workspace_bytes(const AttentionParams& p, int threads, int64_t esize) {
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
// [B*Hkv][key tile][cols][tile] blocks inside the workspace (set by Layout; null = not packed).
struct CpuParams : AttentionParams {
  const void* packed_k = nullptr;
  const void* packed_v = nullptr;
  const void* packed_gk = nullptr;
  const void* packed_gv = nullptr;
  explicit CpuParams(const AttentionParams& p) : AttentionParams(p) {}
};

// One (batch, query head) pair: the shared view of mk/attention.h plus the CPU's packed tiles and
// 16-bit bias.
template <class T>
struct Head : AttentionHead<T> {
  const T *kp = nullptr, *vp = nullptr, *gkp = nullptr, *gvp = nullptr;  // packed tiles (see CpuParams)
  const uint16_t* bias16 = nullptr;  // a 16-bit bias (16-bit calls; bias is null then)
  int half = 0;                      // BF16 or F16 for a 16-bit call, else 0
  T scale;
};

template <class T>
Head<T> head(const CpuParams& p, int64_t b, int64_t h) {
  Head<T> x;
  static_cast<AttentionHead<T>&>(x) = attention_head<T>(p, b, h);
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

template <class T>
struct Scratch {
  const T *kt, *vt, *gkt, *gvt;      // [dm, BK] transposed tiles (pointers into the packed copies)
  T *s, *dp, *g, *ds, *gs, *gdp, *t; // [BQ, BK]
  T *acc0, *acc1;                    // [BQ, dm]
  T *rows;                           // [8, BQ]
  T *kacc0, *kacc1;                  // [BK, dm]
  Scratch(T* base, int64_t d, int64_t dv) {
    const int64_t dm = std::max(d, dv);
    T* p = base;
    kt = vt = gkt = gvt = nullptr;
    p += 4 * dm * BK;  // (unused: the tiles are packed once per call)
    s = p; p += BQ * BK; dp = p; p += BQ * BK; g = p; p += BQ * BK; ds = p; p += BQ * BK;
    gs = p; p += BQ * BK; gdp = p; p += BQ * BK; t = p; p += BQ * BK;
    acc0 = p; p += BQ * dm; acc1 = p; p += BQ * dm;
    rows = p; p += 8 * BQ;
    kacc0 = p; p += BK * dm; kacc1 = p;
  }
};

// s = scale q kᵀ + bias over rows [r0, r0+R) and keys [c0, c0+C), masked to -inf; kt holds the
// transposed key tile.
template <class T>
void scores(const Head<T>& h, int64_t r0, int64_t R, int64_t c0, int64_t C, const T* kt, T* s) {
  tile::gemm<T>(R, C, h.d, h.scale, h.q + r0 * h.d, h.d, 1, kt, BK, s, BK, false);
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

// Key-side operands (k, v and their tangents, [B*Hkv, n, cols]) transposed once per call into
// [B*Hkv][key tile][cols][BK] blocks, so the tile loops read unit-stride key rows instead of
// transposing the same tile again for every query block.
template <class T>
void pack_tiles(const void* src, int64_t heads, int64_t n, int64_t cols, void* dst) {
  if (!src || !dst) return;
  const int64_t nb = (n + BK - 1) / BK;
  const T* s = static_cast<const T*>(src);
  T* d = static_cast<T*>(dst);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < heads * nb; ++t) {
    const int64_t h = t / nb, c0 = (t % nb) * BK, C = std::min(BK, n - c0);
    tile::transpose<T>(C, cols, s + (h * n + c0) * cols, cols, d + t * cols * BK, BK);
  }
}

// G = scale (gq kᵀ + q gkᵀ) + gbias on a tile (zero when no cotangent is given).
template <class T>
void g_tile(const Head<T>& h, const Scratch<T>& w, int64_t r0, int64_t R, int64_t c0, int64_t C) {
  bool any = false;
  if (h.gq) {
    tile::gemm<T>(R, C, h.d, h.scale, h.gq + r0 * h.d, h.d, 1, w.kt, BK, w.g, BK, false);
    any = true;
  }
  if (h.gk) {
    tile::gemm<T>(R, C, h.d, h.scale, h.q + r0 * h.d, h.d, 1, w.gkt, BK, w.g, BK, any);
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

template <class T>
int64_t row_blocks(int64_t n) {
  return (n + BQ - 1) / BQ;
}

// ---- forward ---------------------------------------------------------------------------------
// The forward works on transposed score tiles, st[c][r] = s(row r, key c), rows in the vector
// lanes: the running max, sum and rescale factors of a whole column of rows are vectors, so the
// online softmax needs no horizontal reductions and no per-row scalar code. Sᵀ = K Qᵀ reads the
// keys in place (Qᵀ is transposed once per query block) and O += P V reads Pᵀ with strides.
// Against the row-wise form it replaced (per-row horizontal max / sum, a scalar exp per row,
// vmath::exp), medians of alternating runs (benchmarks/results/cpu-ab-2026-12-02*.md, one
// thread): [1,4,4096,64] 118.5 -> 102.9 ms, causal [1,8,4096,64] 123.7 -> 105.4, D = 128 0.77x,
// D = 16 0.83x, one query row (NQ = 1) 0.64x; AVX2 [1,4,2048,64] 59.4 -> 52.6 (same-minute pair).

// st[c][r] = scale q_r·k_c + bias(r, c) for c < C, r < Rp (rows R..Rp come from zero columns of
// qt and are ignored), masked to -inf where key c0 + c is past row r's key_end.
template <class T>
void scores_t(const Head<T>& h, int64_t r0, int64_t R, int64_t Rp, int64_t c0, int64_t C, const T* qt, T* st,
              T* lim) {
  tile::gemm<T>(C, Rp, h.d, h.scale, h.k + c0 * h.d, h.d, 1, qt, BQ, st, BQ, false);
  if (h.bias) {
    for (int64_t r = 0; r < R; ++r) {
      const T* br = h.bias + (r0 + r) * h.nk + c0;
      for (int64_t c = 0; c < C; ++c) st[c * BQ + r] += br[c];
    }
  } else if (h.bias16) {
    for (int64_t r = 0; r < R; ++r) {
      const uint16_t* br = h.bias16 + (r0 + r) * h.nk + c0;
      if (h.half == MK_BF16)
        for (int64_t c = 0; c < C; ++c) st[c * BQ + r] += T(bf16_bits_to_f32(br[c]));
      else
        for (int64_t c = 0; c < C; ++c) st[c * BQ + r] += T(f16_bits_to_f32(br[c]));
    }
  }
  // key_end is non-decreasing in the row, so the first row has the fewest keys
  if (h.key_end(r0) >= c0 + C) return;
  for (int64_t r = 0; r < Rp; ++r)
    lim[r] = r < R ? T(std::min<int64_t>(std::max<int64_t>(h.key_end(r0 + r) - c0, 0), BK)) : T(BK);
  for (int64_t c = 0; c < C; ++c) {
    T* sc = st + c * BQ;
    const T cc = T(c);
#pragma omp simd
    for (int64_t r = 0; r < Rp; ++r) sc[r] = cc >= lim[r] ? neg_inf<T>() : sc[r];
  }
}

// One key tile of the online softmax on st (C keys x Rp row lanes): st becomes Pᵀ =
// exp(s − m_new); the running max m and sum l are updated and corr receives each row's rescale
// factor exp(m_old − m_new) (0 while a row has seen no key; rows with no key so far keep m = -inf
// and get P = 0).
template <class T>
void online_softmax_t(T* st, int64_t C, int64_t Rp, T* m, T* l, T* corr, T* mx) {
  constexpr int64_t W = tile::Vec<T>::W;
  // one vector of rows at a time, its running values in registers across the keys
  for (int64_t g = 0; g < Rp; g += W) {
    T a[W];
    for (int64_t j = 0; j < W; ++j) a[j] = m[g + j];
    for (int64_t c = 0; c < C; ++c) {
      const T* sc = st + c * BQ + g;
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) a[j] = sc[j] > a[j] ? sc[j] : a[j];
    }
    for (int64_t j = 0; j < W; ++j) mx[g + j] = a[j];
  }
  // mx is now the new max; rows still at -inf subtract 0 instead (exp(-inf - 0) = 0, no NaN)
#pragma omp simd
  for (int64_t r = 0; r < Rp; ++r) {
    const T ms = mx[r] == neg_inf<T>() ? T(0) : mx[r];
    corr[r] = vmath::exp_nonpos(m[r] - ms);
    m[r] = mx[r];
    mx[r] = ms;
    l[r] *= corr[r];
  }
  for (int64_t g = 0; g < Rp; g += W) {
    T sum[W], sub[W];
    for (int64_t j = 0; j < W; ++j) {
      sum[j] = l[g + j];
      sub[j] = mx[g + j];
    }
    for (int64_t c = 0; c < C; ++c) {
      T* sc = st + c * BQ + g;
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) {
        const T e = vmath::exp_nonpos(sc[j] - sub[j]);
        sc[j] = e;
        sum[j] += e;
      }
    }
    for (int64_t j = 0; j < W; ++j) l[g + j] = sum[j];
  }
}

template <class T>
void forward(const CpuParams& p, T* ws, int64_t per_thread) {
  const int64_t qb = row_blocks<T>(p.nq);
  const int64_t tasks = p.batch * p.heads * qb;
  constexpr int64_t W = tile::Vec<T>::W;
#pragma omp parallel
  {
    Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      // the last query blocks of a head see the most keys under a causal mask: run them first
      const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (qb - 1 - t % qb) * BQ;
      const Head<T> x = head<T>(p, b, h);
      const int64_t R = std::min(BQ, p.nq - r0), Rp = (R + W - 1) / W * W;
      T *m = w.rows, *l = w.rows + BQ, *corr = w.rows + 2 * BQ, *mx = w.rows + 3 * BQ, *lim = w.rows + 4 * BQ;
      T* acc = w.acc0;
      T* qt = w.acc1;  // Qᵀ [d][BQ], lanes R..Rp zero
      tile::transpose<T>(R, p.d, x.q + r0 * p.d, p.d, qt, BQ);
      if (Rp > R)
        for (int64_t k = 0; k < p.d; ++k) std::fill(qt + k * BQ + R, qt + k * BQ + Rp, T(0));
      for (int64_t r = 0; r < Rp; ++r) {
        m[r] = neg_inf<T>();
        l[r] = T(0);
      }
      std::fill_n(acc, R * p.dv, T(0));
      const int64_t end = x.key_end(r0 + R - 1);
      for (int64_t c0 = 0; c0 < end; c0 += BK) {
        const int64_t C = std::min(BK, end - c0);
        scores_t(x, r0, R, Rp, c0, C, qt, w.s, lim);
        online_softmax_t(w.s, C, Rp, m, l, corr, mx);
        for (int64_t r = 0; r < R; ++r)
          if (corr[r] != T(1)) {
            T* ar = acc + r * p.dv;
            const T cr = corr[r];
#pragma omp simd
            for (int64_t e = 0; e < p.dv; ++e) ar[e] *= cr;
          }
        tile::gemm<T>(R, p.dv, C, T(1), w.s, 1, BQ, x.v + c0 * p.dv, p.dv, acc, p.dv, true);
      }
      T* out = static_cast<T*>(p.out) + ((b * p.heads + h) * p.nq + r0) * p.dv;
      T* lse = p.lse ? static_cast<T*>(p.lse) + (b * p.heads + h) * p.nq + r0 : nullptr;
      for (int64_t r = 0; r < R; ++r) {
        const T inv = l[r] > T(0) ? T(1) / l[r] : T(0);
        for (int64_t e = 0; e < p.dv; ++e) out[r * p.dv + e] = acc[r * p.dv + e] * inv;
        if (lse) lse[r] = l[r] > T(0) ? m[r] + std::log(l[r]) : neg_inf<T>();
      }
    }
  }
}

// ---- backward --------------------------------------------------------------------------------
// rowstat layout in the shared workspace: D (and C, E for the double backward), [B*H*Nq] each.
template <class T>
void rowsum_dout_out(const CpuParams& p, T* D) {
  const int64_t rows = p.batch * p.heads * p.nq;
  const T* o = static_cast<const T*>(p.out);
  const T* g = static_cast<const T*>(p.dout);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) D[i] = tile::dot(o + i * p.dv, g + i * p.dv, p.dv);
}

// P (in w.s), dP = dO vᵀ and dS = P ∘ (dP − D) on one tile; D holds the tile rows' statistic.
template <class T>
void tile_ds(const Head<T>& x, const Scratch<T>& w, int64_t r0, int64_t R, int64_t c0, int64_t C, const T* D) {
  scores(x, r0, R, c0, C, w.kt, w.s);
  probabilities(x, r0, R, C, w.s);
  tile::gemm<T>(R, C, x.dv, T(1), x.dout + r0 * x.dv, x.dv, 1, w.vt, BK, w.dp, BK, false);
  for (int64_t r = 0; r < R; ++r)
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) w.ds[r * BK + c] = w.s[r * BK + c] * (w.dp[r * BK + c] - D[r]);
}

// The full dS (the bias gradient) for a tile. Masked entries are P·(dP − D) with P = 0, a zero
// whose sign depends on dP − D; adding +0 makes every such zero +0, the value of entries no
// tile reaches, so the result does not depend on which tiles a pass happens to cover.
// `at` is the element offset of the tile in grad_bias_full (rows of ld = Nk); 16-bit calls round here.
template <class T>
void store_ds(const CpuParams& p, const T* ds, int64_t R, int64_t C, int64_t at) {
  const int64_t ld = p.nk;
  if (is_half(p.dtype)) {
    uint16_t* full = static_cast<uint16_t*>(p.grad_bias_full) + at;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const float x = float(ds[r * BK + c] + T(0));
        full[r * ld + c] = p.dtype == MK_BF16 ? f32_to_bf16_bits(x) : f32_to_f16_bits(x);
      }
    return;
  }
  T* full = static_cast<T*>(p.grad_bias_full) + at;
  for (int64_t r = 0; r < R; ++r)
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) full[r * ld + c] = ds[r * BK + c] + T(0);
}

// dK and dV of key block c0 of KV head (b, hk), summed over the query heads sharing it, written
// to grad_k/grad_v. With dq_base (the dQ rows of those heads) it also adds scale dS k to dQ and
// writes the full dS when it is wanted: the one-pass form. Sums run in the same order either way.
// (Forced inline: called out of line, the one-pass backward measured ~12 % slower.)
template <class T>
__attribute__((always_inline)) inline void key_block(const CpuParams& p, Scratch<T>& w, int64_t b, int64_t hk,
                                                     int64_t c0, const T* Dall, T* dq_base) {
  const int64_t group = p.heads / p.kv_heads;
  const int64_t C = std::min(BK, p.nk - c0);
  T* dk = w.kacc0;
  T* dv = w.kacc1;
  std::fill_n(dk, C * p.d, T(0));
  std::fill_n(dv, C * p.dv, T(0));
  for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
    const Head<T> x = head<T>(p, b, h);
    if (c0 >= x.len) continue;
    w.kt = tile_t(x.kp, p.d, c0);
    w.vt = tile_t(x.vp, p.dv, c0);
    const T* Dh = Dall + (b * p.heads + h) * p.nq;
    T* dqh = dq_base ? dq_base + (h - hk * group) * p.nq * p.d : nullptr;
    for (int64_t r0 = x.first_row(c0) / BQ * BQ; r0 < p.nq; r0 += BQ) {
      const int64_t R = std::min(BQ, p.nq - r0);
      tile_ds(x, w, r0, R, c0, C, Dh + r0);
      if (dq_base && p.grad_bias_full)
        store_ds(p, w.ds, R, C, ((b * p.heads + h) * p.nq + r0) * p.nk + c0);
      // dV += Pᵀ dO,  dK += scale dSᵀ q,  dQ += scale dS k
      if (p.grad_v) tile::gemm<T>(C, p.dv, R, T(1), w.s, 1, BK, x.dout + r0 * p.dv, p.dv, dv, p.dv, true);
      if (p.grad_k) tile::gemm<T>(C, p.d, R, x.scale, w.ds, 1, BK, x.q + r0 * p.d, p.d, dk, p.d, true);
      if (dqh) tile::gemm<T>(R, p.d, C, x.scale, w.ds, BK, 1, x.k + c0 * p.d, p.d, dqh + r0 * p.d, p.d, true);
    }
  }
  const int64_t kh = b * p.kv_heads + hk;
  if (p.grad_k) std::memcpy(static_cast<T*>(p.grad_k) + (kh * p.nk + c0) * p.d, dk, sizeof(T) * size_t(C * p.d));
  if (p.grad_v) std::memcpy(static_cast<T*>(p.grad_v) + (kh * p.nk + c0) * p.dv, dv, sizeof(T) * size_t(C * p.dv));
}

// One task per (batch, KV head): its key blocks in order, dQ accumulated in place in the output
// rows the task owns.
template <class T>
void backward_per_head(const CpuParams& p, T* ws, int64_t per_thread, const T* Dall) {
  const int64_t group = p.heads / p.kv_heads;
  const int64_t tasks = p.batch * p.kv_heads;
#pragma omp parallel
  {
    Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / p.kv_heads, hk = t % p.kv_heads;
      T* dq_base = p.grad_q ? static_cast<T*>(p.grad_q) + (b * p.heads + hk * group) * p.nq * p.d : nullptr;
      if (dq_base) std::fill_n(dq_base, group * p.nq * p.d, T(0));
      for (int64_t c0 = 0; c0 < p.nk; c0 += BK) key_block(p, w, b, hk, c0, Dall, dq_base);
    }
  }
}

template <class T>
void backward(const CpuParams& p, T* ws, int64_t per_thread, T* Dall) {
  rowsum_dout_out(p, Dall);
  const int64_t qb = row_blocks<T>(p.nq);
  // With enough KV heads to keep every thread busy, one pass per KV head computes dK, dV and dQ
  // from the same tiles (5 tile products instead of 7). Each task owns its query heads' dQ rows,
  // and every sum runs in the same order as in the two-pass form, so the result is the same
  // bit for bit whichever form runs and however many threads there are.
  if (p.batch * p.kv_heads >= 2 * int64_t(omp_get_max_threads()) || omp_get_max_threads() == 1) {
    backward_per_head(p, ws, per_thread, Dall);
    return;
  }
  // dQ (and the full dS when asked for): query blocks in parallel
  if (p.grad_q || p.grad_bias_full) {
    const int64_t tasks = p.batch * p.heads * qb;
#pragma omp parallel
    {
      Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (t % qb) * BQ;
        const Head<T> x = head<T>(p, b, h);
        const int64_t R = std::min(BQ, p.nq - r0);
        const T* D = Dall + (b * p.heads + h) * p.nq + r0;
        T* dq = w.acc0;
        for (int64_t r = 0; r < R * p.d; ++r) dq[r] = T(0);
        const int64_t end = x.key_end(r0 + R - 1);
        for (int64_t c0 = 0; c0 < end; c0 += BK) {
          const int64_t C = std::min(BK, end - c0);
          w.kt = tile_t(x.kp, p.d, c0);
          w.vt = tile_t(x.vp, p.dv, c0);
          tile_ds(x, w, r0, R, c0, C, D);
          if (p.grad_bias_full) store_ds(p, w.ds, R, C, ((b * p.heads + h) * p.nq + r0) * p.nk + c0);
          if (p.grad_q) tile::gemm<T>(R, p.d, C, x.scale, w.ds, BK, 1, x.k + c0 * p.d, p.d, dq, p.d, true);
        }
        if (p.grad_q) {
          T* out = static_cast<T*>(p.grad_q) + ((b * p.heads + h) * p.nq + r0) * p.d;
          std::memcpy(out, dq, sizeof(T) * size_t(R * p.d));
        }
      }
    }
  }
  // dK, dV: key blocks in parallel, each summing over the query heads that share its KV head
  if (p.grad_k || p.grad_v) {
    const int64_t kb = (p.nk + BK - 1) / BK;
    const int64_t tasks = p.batch * p.kv_heads * kb;
#pragma omp parallel
    {
      Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t)
        key_block<T>(p, w, t / (p.kv_heads * kb), (t / kb) % p.kv_heads, (t % kb) * BK, Dall, nullptr);
    }
  }
}

// ---- backward of the backward -----------------------------------------------------------------
// Per tile, with P, dP = dO vᵀ, G = scale (gq kᵀ + q gkᵀ) + gbias, dS = P ∘ (dP − D):
//   ḡP = dO gvᵀ + G ∘ (dP − D) − C dP,  ḡS = P ∘ (ḡP − E),  ḡdP = P ∘ (G − C)
//   C = rowsum(P ∘ G),  E = rowsum(P ∘ ḡP) = dO·(P gv) + rowsum(P ∘ G ∘ dP) − 2 C D
//   q' = scale (ḡS k + dS gk),  dO' = P gv + ḡdP v,  bias' = ḡS
//   k' = scale (ḡSᵀ q + dSᵀ gq),  v' = ḡdPᵀ dO
template <class T>
void tile_second(const Head<T>& x, const Scratch<T>& w, int64_t r0, int64_t R, int64_t c0, int64_t C, const T* D,
                 const T* Cs, const T* E) {
  scores(x, r0, R, c0, C, w.kt, w.s);
  probabilities(x, r0, R, C, w.s);
  tile::gemm<T>(R, C, x.dv, T(1), x.dout + r0 * x.dv, x.dv, 1, w.vt, BK, w.dp, BK, false);
  g_tile(x, w, r0, R, c0, C);
  if (x.gv) tile::gemm<T>(R, C, x.dv, T(1), x.dout + r0 * x.dv, x.dv, 1, w.gvt, BK, w.t, BK, false);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t o = r * BK + c;
      const T P = w.s[o], dp = w.dp[o], g = w.g[o];
      w.ds[o] = P * (dp - D[r]);
      const T gP = (x.gv ? w.t[o] : T(0)) + g * (dp - D[r]) - Cs[r] * dp;
      w.gs[o] = P * (gP - E[r]);
      w.gdp[o] = P * (g - Cs[r]);
    }
}

template <class T>
void backward_backward(const CpuParams& p, T* ws, int64_t per_thread, T* Dall, T* Call, T* Eall) {
  rowsum_dout_out(p, Dall);
  const int64_t qb = row_blocks<T>(p.nq);
  const int64_t qtasks = p.batch * p.heads * qb;
  // pass 1: row statistics C and E
#pragma omp parallel
  {
    Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < qtasks; ++t) {
      const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (t % qb) * BQ;
      const Head<T> x = head<T>(p, b, h);
      const int64_t R = std::min(BQ, p.nq - r0);
      const int64_t base = (b * p.heads + h) * p.nq + r0;
      T* Cr = w.rows;
      T* Fr = w.rows + BQ;
      T* pgv = w.acc0;
      for (int64_t r = 0; r < R; ++r) Cr[r] = Fr[r] = T(0);
      std::fill_n(pgv, R * p.dv, T(0));
      const int64_t end = x.key_end(r0 + R - 1);
      for (int64_t c0 = 0; c0 < end; c0 += BK) {
        const int64_t C = std::min(BK, end - c0);
        w.kt = tile_t(x.kp, p.d, c0);
        w.vt = tile_t(x.vp, p.dv, c0);
        if (x.gk) w.gkt = tile_t(x.gkp, p.d, c0);
        scores(x, r0, R, c0, C, w.kt, w.s);
        probabilities(x, r0, R, C, w.s);
        tile::gemm<T>(R, C, p.dv, T(1), x.dout + r0 * p.dv, p.dv, 1, w.vt, BK, w.dp, BK, false);
        g_tile(x, w, r0, R, c0, C);
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t o = r * BK + c;
            const T pg = w.s[o] * w.g[o];
            Cr[r] += pg;
            Fr[r] += pg * w.dp[o];
          }
        if (x.gv) tile::gemm<T>(R, p.dv, C, T(1), w.s, BK, 1, x.gv + c0 * p.dv, p.dv, pgv, p.dv, true);
      }
      for (int64_t r = 0; r < R; ++r) {
        const T A = x.gv ? tile::dot(x.dout + (r0 + r) * p.dv, pgv + r * p.dv, p.dv) : T(0);
        Call[base + r] = Cr[r];
        Eall[base + r] = A + Fr[r] - T(2) * Cr[r] * Dall[base + r];
      }
    }
  }
  // pass 2: q', dO' and the bias cotangent (query blocks)
  if (p.cot_q || p.cot_dout || p.cot_bias_full) {
#pragma omp parallel
    {
      Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < qtasks; ++t) {
        const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (t % qb) * BQ;
        const Head<T> x = head<T>(p, b, h);
        const int64_t R = std::min(BQ, p.nq - r0);
        const int64_t base = (b * p.heads + h) * p.nq + r0;
        T* gq = w.acc0;
        T* gdo = w.acc1;
        std::fill_n(gq, R * p.d, T(0));
        std::fill_n(gdo, R * p.dv, T(0));
        const int64_t end = x.key_end(r0 + R - 1);
        for (int64_t c0 = 0; c0 < end; c0 += BK) {
          const int64_t C = std::min(BK, end - c0);
          w.kt = tile_t(x.kp, p.d, c0);
          w.vt = tile_t(x.vp, p.dv, c0);
          if (x.gk) w.gkt = tile_t(x.gkp, p.d, c0);
          if (x.gv) w.gvt = tile_t(x.gvp, p.dv, c0);
          tile_second(x, w, r0, R, c0, C, Dall + base, Call + base, Eall + base);
          if (p.cot_bias_full) {
            T* full = static_cast<T*>(p.cot_bias_full) + base * p.nk + c0;
            for (int64_t r = 0; r < R; ++r) std::memcpy(full + r * p.nk, w.gs + r * BK, sizeof(T) * size_t(C));
          }
          tile::gemm<T>(R, p.d, C, x.scale, w.gs, BK, 1, x.k + c0 * p.d, p.d, gq, p.d, true);
          if (x.gk) tile::gemm<T>(R, p.d, C, x.scale, w.ds, BK, 1, x.gk + c0 * p.d, p.d, gq, p.d, true);
          if (x.gv) tile::gemm<T>(R, p.dv, C, T(1), w.s, BK, 1, x.gv + c0 * p.dv, p.dv, gdo, p.dv, true);
          tile::gemm<T>(R, p.dv, C, T(1), w.gdp, BK, 1, x.v + c0 * p.dv, p.dv, gdo, p.dv, true);
        }
        if (p.cot_q) std::memcpy(static_cast<T*>(p.cot_q) + base * p.d, gq, sizeof(T) * size_t(R * p.d));
        if (p.cot_dout) std::memcpy(static_cast<T*>(p.cot_dout) + base * p.dv, gdo, sizeof(T) * size_t(R * p.dv));
      }
    }
  }
  // pass 3: k' and v' (key blocks over the query heads of each KV head)
  if (p.cot_k || p.cot_v) {
    const int64_t kb = (p.nk + BK - 1) / BK;
    const int64_t group = p.heads / p.kv_heads;
    const int64_t tasks = p.batch * p.kv_heads * kb;
#pragma omp parallel
    {
      Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (p.kv_heads * kb), hk = (t / kb) % p.kv_heads, c0 = (t % kb) * BK;
        const int64_t C = std::min(BK, p.nk - c0);
        T* gk = w.kacc0;
        T* gv = w.kacc1;
        std::fill_n(gk, C * p.d, T(0));
        std::fill_n(gv, C * p.dv, T(0));
        for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
          const Head<T> x = head<T>(p, b, h);
          if (c0 >= x.len) continue;
          w.kt = tile_t(x.kp, p.d, c0);
          w.vt = tile_t(x.vp, p.dv, c0);
          if (x.gk) w.gkt = tile_t(x.gkp, p.d, c0);
          if (x.gv) w.gvt = tile_t(x.gvp, p.dv, c0);
          const int64_t hb = (b * p.heads + h) * p.nq;
          for (int64_t r0 = x.first_row(c0) / BQ * BQ; r0 < p.nq; r0 += BQ) {
            const int64_t R = std::min(BQ, p.nq - r0);
            tile_second(x, w, r0, R, c0, C, Dall + hb + r0, Call + hb + r0, Eall + hb + r0);
            tile::gemm<T>(C, p.d, R, x.scale, w.gs, 1, BK, x.q + r0 * p.d, p.d, gk, p.d, true);
            if (x.gq) tile::gemm<T>(C, p.d, R, x.scale, w.ds, 1, BK, x.gq + r0 * p.d, p.d, gk, p.d, true);
            tile::gemm<T>(C, p.dv, R, T(1), w.gdp, 1, BK, x.dout + r0 * p.dv, p.dv, gv, p.dv, true);
          }
        }
        const int64_t kh = b * p.kv_heads + hk;
        if (p.cot_k) std::memcpy(static_cast<T*>(p.cot_k) + (kh * p.nk + c0) * p.d, gk, sizeof(T) * size_t(C * p.d));
        if (p.cot_v) std::memcpy(static_cast<T*>(p.cot_v) + (kh * p.nk + c0) * p.dv, gv, sizeof(T) * size_t(C * p.dv));
      }
    }
  }
}

// ---- JVP ------------------------------------------------------------------------------------------
// tangents: gq = tq, gk = tk, gv = tv, gbias = tbias (full). tS = scale (tq kᵀ + q tkᵀ) + tbias.
template <class T>
void jvp(const CpuParams& p, T* ws, int64_t per_thread) {
  const int64_t qb = row_blocks<T>(p.nq);
  const int64_t tasks = p.batch * p.heads * qb;
#pragma omp parallel
  {
    Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (t % qb) * BQ;
      const Head<T> x = head<T>(p, b, h);
      const int64_t R = std::min(BQ, p.nq - r0);
      const int64_t base = (b * p.heads + h) * p.nq + r0;
      T* c = w.rows;
      T* a1 = w.acc0;  // Σ P tS v + P tv
      for (int64_t r = 0; r < R; ++r) c[r] = T(0);
      std::fill_n(a1, R * p.dv, T(0));
      const int64_t end = x.key_end(r0 + R - 1);
      for (int64_t c0 = 0; c0 < end; c0 += BK) {
        const int64_t C = std::min(BK, end - c0);
        w.kt = tile_t(x.kp, p.d, c0);
        if (x.gk) w.gkt = tile_t(x.gkp, p.d, c0);
        scores(x, r0, R, c0, C, w.kt, w.s);
        probabilities(x, r0, R, C, w.s);
        g_tile(x, w, r0, R, c0, C);  // tS
        for (int64_t r = 0; r < R; ++r)
          for (int64_t cc = 0; cc < C; ++cc) {
            const int64_t o = r * BK + cc;
            w.t[o] = w.s[o] * w.g[o];
            c[r] += w.t[o];
          }
        tile::gemm<T>(R, p.dv, C, T(1), w.t, BK, 1, x.v + c0 * p.dv, p.dv, a1, p.dv, true);
        if (x.gv) tile::gemm<T>(R, p.dv, C, T(1), w.s, BK, 1, x.gv + c0 * p.dv, p.dv, a1, p.dv, true);
      }
      T* to = static_cast<T*>(p.tan_out) + base * p.dv;
      for (int64_t r = 0; r < R; ++r) {
        const T* o = x.out + (r0 + r) * p.dv;
        for (int64_t e = 0; e < p.dv; ++e) to[r * p.dv + e] = a1[r * p.dv + e] - c[r] * o[e];
        if (p.tan_lse) static_cast<T*>(p.tan_lse)[base + r] = c[r];
      }
    }
  }
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
    auto put = [&](bool want, const void* src, int64_t cols, int64_t size, const void*& dst) {
      if (want && src) {
        pack_tiles<T>(src, heads, in.nk, cols, packed);
        dst = packed;
      }
      packed += size;
    };
    put(k, in.k, in.d, kt, p.packed_k);
    put(v, in.v, in.dv, vt, p.packed_v);
    put(gk, in.second.k, in.d, kt, p.packed_gk);
    put(gv, in.second.v, in.dv, vt, p.packed_gv);
  }
};

template <class T>
void run_forward(const AttentionParams& in) {
  Layout<T> l(in, false, false, false, false);  // the forward reads k and v in place
  forward<T>(l.p, l.scratch, l.per_thread);
}
template <class T>
void run_backward(const AttentionParams& in) {
  Layout<T> l(in, true, true, false, false);
  backward<T>(l.p, l.scratch, l.per_thread, l.D);
}
template <class T>
void run_backward_backward(const AttentionParams& in) {
  Layout<T> l(in, true, true, true, true);
  backward_backward<T>(l.p, l.scratch, l.per_thread, l.D, l.C, l.E);
}
template <class T>
void run_jvp(const AttentionParams& in) {
  Layout<T> l(in, true, false, true, false);
  jvp<T>(l.p, l.scratch, l.per_thread);
}

// ---- BF16 / F16 ----------------------------------------------------------------------------------
// n 16-bit values of type `dtype` to floats (null src: nothing).
void widen(int dtype, const void* src, float* dst, int64_t n) {
  if (!src) return;
  const uint16_t* s = static_cast<const uint16_t*>(src);
#pragma omp parallel for schedule(static) if (n >= 16384)
  for (int64_t i = 0; i < n; ++i) dst[i] = dtype == MK_BF16 ? bf16_bits_to_f32(s[i]) : f16_bits_to_f32(s[i]);
}

// n floats to 16-bit values of type `dtype`, rounded to nearest even (null dst: nothing).
void narrow(int dtype, const float* src, void* dst, int64_t n) {
  if (!dst) return;
  uint16_t* d = static_cast<uint16_t*>(dst);
#pragma omp parallel for schedule(static) if (n >= 16384)
  for (int64_t i = 0; i < n; ++i) d[i] = dtype == MK_BF16 ? f32_to_bf16_bits(src[i]) : f32_to_f16_bits(src[i]);
}

// A 16-bit forward (backward = false) or backward: F32 copies of the 16-bit operands in the
// workspace after the F32 kernels' own, the F32 kernels on them, the results rounded. The copy
// of the parameters keeps dtype = BF16/F16, which tells the kernels that the bias and the full
// dS (grad_bias_full) are 16-bit (read and rounded tile by tile); lse is F32 both ways.
void run_half(const AttentionParams& in, bool backward_pass) {
  const HalfRegions reg(in);
  float* r[HalfRegions::kCount];
  float* at = reinterpret_cast<float*>(static_cast<char*>(in.workspace) +
                                       HalfRegions::base_bytes(in, omp_get_max_threads()));
  for (int i = 0; i < HalfRegions::kCount; ++i) {
    r[i] = at;
    at += reg.size[i];
  }
  float *q = r[0], *k = r[1], *v = r[2], *o = r[3], *dout = r[4], *dq = r[5], *dk = r[6], *dv = r[7];
  const int64_t qd = in.batch * in.heads * in.nq * in.d, kd = in.batch * in.kv_heads * in.nk * in.d;
  const int64_t kv = in.batch * in.kv_heads * in.nk * in.dv, ov = in.batch * in.heads * in.nq * in.dv;
  AttentionParams f = in;
  widen(in.dtype, in.q, q, qd);
  widen(in.dtype, in.k, k, kd);
  widen(in.dtype, in.v, v, kv);
  f.q = q;
  f.k = k;
  f.v = v;
  if (!backward_pass) {
    f.out = in.out ? o : nullptr;
    run_forward<float>(f);
    narrow(in.dtype, o, in.out, ov);
    return;
  }
  widen(in.dtype, in.out, o, ov);
  widen(in.dtype, in.dout, dout, ov);
  f.out = o;
  f.dout = dout;
  f.grad_q = in.grad_q ? dq : nullptr;
  f.grad_k = in.grad_k ? dk : nullptr;
  f.grad_v = in.grad_v ? dv : nullptr;
  if (in.grad_q) std::fill_n(dq, qd, 0.f);
  if (in.grad_k) std::fill_n(dk, kd, 0.f);
  if (in.grad_v) std::fill_n(dv, kv, 0.f);
  run_backward<float>(f);
  narrow(in.dtype, dq, in.grad_q, qd);
  narrow(in.dtype, dk, in.grad_k, kd);
  narrow(in.dtype, dv, in.grad_v, kv);
}

}  // namespace

int attention_forward(const AttentionParams& p, void*) {
  if (p.dtype == MK_F32) run_forward<float>(p);
  else if (is_half(p.dtype)) run_half(p, false);
  else run_forward<double>(p);
  return 0;
}

int attention_backward(const AttentionParams& p, void*) {
  if (p.dtype == MK_F32) run_backward<float>(p);
  else if (is_half(p.dtype)) run_half(p, true);
  else run_backward<double>(p);
  return 0;
}

int attention_backward_backward(const AttentionParams& in, void*) {
  if (is_half(in.dtype)) return KERNEL_UNSUPPORTED;  // native/ refuses 16-bit types first
  AttentionParams p = in;
  p.second = attention_cotangents(in);
  if (p.dtype == MK_F32) run_backward_backward<float>(p);
  else run_backward_backward<double>(p);
  return 0;
}

int attention_jvp(const AttentionParams& in, void*) {
  if (is_half(in.dtype)) return KERNEL_UNSUPPORTED;  // native/ refuses 16-bit types first
  AttentionParams p = in;
  p.second = attention_tangents(in);
  if (p.dtype == MK_F32) run_jvp<float>(p);
  else run_jvp<double>(p);
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (AVX2 build only) -------------------------------------------------------------
namespace avx512 {
int attention_forward(const AttentionParams&, void*);
int attention_backward(const AttentionParams&, void*);
int attention_backward_backward(const AttentionParams&, void*);
int attention_jvp(const AttentionParams&, void*);
}  // namespace avx512

int attention_forward(const AttentionParams& p, void* s) {
  return isa_level() >= 3 ? avx512::attention_forward(p, s) : avx2::attention_forward(p, s);
}
int attention_backward(const AttentionParams& p, void* s) {
  return isa_level() >= 3 ? avx512::attention_backward(p, s) : avx2::attention_backward(p, s);
}
int attention_backward_backward(const AttentionParams& p, void* s) {
  return isa_level() >= 3 ? avx512::attention_backward_backward(p, s) : avx2::attention_backward_backward(p, s);
}
int attention_jvp(const AttentionParams& p, void* s) {
  return isa_level() >= 3 ? avx512::attention_jvp(p, s) : avx2::attention_jvp(p, s);
}
// 16-bit types: the F32 kernels' workspace, then F32 copies of q, k, v, out, dout, dq, dk, dv
// (O((Nq + Nk)·D); the bias and the full dS are converted tile by tile).
int64_t attention_workspace(const AttentionParams& p, int threads) {
  if (is_half(p.dtype)) return HalfRegions::base_bytes(p, threads) + 4 * HalfRegions(p).floats();
  return plain_workspace_bytes(p, threads, p.dtype == MK_F32 ? 4 : 8);
}
#endif

}  // namespace cpu
}  // namespace mk
