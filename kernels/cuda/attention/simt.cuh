// Softmax attention on CUDA, the SIMT kernels: what the four pass files (forward.cu, backward.cu,
// backward_backward.cu, jvp.cu) share. The twin of kernels/cpu/attention/ (same signatures, declared in
// mk/kernels.inc; shapes, masking, the parameter block and the per-head view in mk/attention.h; the
// derivation of the double backward in kernels/cpu/attention/backward_backward.cpp).
//
//   S = scale q kᵀ + bias (masked)   P = softmax(S)   O = P v   lse = logsumexp(S)
//   q: [B, H, Nq, D]   k: [B, Hkv, Nk, D]   v: [B, Hkv, Nk, Dv]   query head h reads KV head h / (H / Hkv)
//   row i of batch b sees keys j < L_b, and j <= i + L_b − Nq when causal (bottom-right aligned)
//
// Every pass walks [Bq x Bk] tiles of S held in shared memory, recomputing P = exp(S − lse) from
// the saved row log-sum-exp, so global memory stays O(N·D) (the optional full bias gradient aside).
// One thread block of kThreads threads per unit of work:
//   forward.cu            query tiles (b, h, Bq rows); online softmax over the key tiles
//   backward           preprocess: D = rowsum(dO ∘ O) into the workspace
//                      main: dQ pass (query tiles; also writes the full dS) and dK/dV pass (key
//                      tiles (b, KV head, Bk keys) that loop over the query heads of their KV head
//                      and over all query tiles). Every output tile has exactly one owner block:
//                      no atomics, deterministic, the same pass structure as the CPU twin.
//   backward_backward  preprocess: D; row statistics C, E (query tiles) into the workspace
//                      main: query pass (q', dO', bias') and key pass (k', v')
//   jvp                one query pass with the saved lse
// The reduce step of each pass is the write of its owned output tile after the last key (or
// query) tile. Products of tiles run through block_gemm (register micro-tiles fed from shared
// memory); row reductions are warp shuffles in a fixed order. Accumulation is in the input
// precision. Tile sizes are picked per pass at run time: the first shape of
// AttentionTraits::kShapes that fits the device's opt-in shared memory with the best mix of tile
// area and resident blocks (pick_tiles), so D, Dv up to 256 fit in F32 and F64.
// Outputs are zero-filled by native/ before these kernels run, so only tiles that see a key are
// written; null output pointers are skipped.
// BF16 / F16 forward and backward go to the tensor-core kernels of tensor_core.cu (F32 lse and
// statistics); the 16-bit double backward and JVP are composed in Java over the F32 kernels. F32
// forward and backward with allow_tf32 go there too (TF32 MMAs) when the tiles fit.
#pragma once
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "../common.cuh"
#include "tensor_core.cuh"
#include "mk/kernels.h"

namespace mk {
namespace cuda {
namespace {

struct TileShape {
  int bq, bk;  // query rows, keys
};

struct AttentionTraits {
  static constexpr int kThreads = 256;  // threads per block, every pass
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kMaxTile = 64;   // rows or keys per tile at most
  static constexpr int kMaxDim = 256;   // head dims D, Dv at most (validated by native/)
  static constexpr int kMaxMicro = 4;   // register micro-tile of block_gemm: up to 4 x 4 outputs
  // Tile shapes in order of preference; each pass takes the first whose buffers fit.
  // The last, tiny shapes only matter for F64 with D = 256 on devices with 48-64 KB per block.
  static constexpr TileShape kShapes[] = {{64, 64}, {64, 32}, {32, 64}, {32, 32}, {16, 64}, {32, 16},
                                          {16, 32}, {16, 16}, {8, 32},  {16, 8},  {8, 16},  {8, 8},
                                          {4, 8},   {4, 4},   {4, 2},   {2, 2},   {1, 1}};
  static constexpr int kShapeCount = int(sizeof(kShapes) / sizeof(kShapes[0]));
  static constexpr bool shapes_valid() {
    for (int i = 0; i < kShapeCount; ++i)
      if (kShapes[i].bq < 1 || kShapes[i].bq > kMaxTile || kShapes[i].bk < 1 || kShapes[i].bk > kMaxTile)
        return false;
    return true;
  }
};
using Traits = AttentionTraits;
constexpr int kThreads = Traits::kThreads;
constexpr int kWarps = Traits::kWarps;
static_assert(kThreads % 32 == 0 && (kThreads & (kThreads - 1)) == 0 && kThreads <= 1024,
              "block_gemm lays threads out as TX x TY with TX a power of two <= 32");
static_assert(Traits::shapes_valid(), "tile shapes must lie in [1, kMaxTile]");
static_assert(Traits::kMaxTile * Traits::kMaxDim < INT_MAX / 8, "tile indices fit in int");
static_assert(Traits::kMaxMicro == 4, "block_gemm instantiates micro-tiles up to 4 x 4");

// Sizes of one launch: tile shape, head dims and the padded leading dims of the shared-memory
// tiles. Leading dims are odd so that column-wise (transposed) reads by a warp hit 32 distinct
// banks (F32) or 16 distinct bank pairs per half warp (F64).
struct Tiles {
  int bq, bk, d, dv;
  int ldd, ldv, ldkv, lds;  // rows of width D, Dv, max(D, Dv) and Bk
};

inline Tiles make_tiles(TileShape s, int d, int dv) {
  Tiles t;
  t.bq = s.bq;
  t.bk = s.bk;
  t.d = d;
  t.dv = dv;
  t.ldd = d | 1;
  t.ldv = dv | 1;
  t.ldkv = std::max(t.ldd, t.ldv);
  t.lds = s.bk | 1;
  return t;
}

// ---- shared-memory layouts ---------------------------------------------------------------------
// Offsets (in elements of T) of the buffers of each pass, computed by the same code on the host
// (to size the launch) and on the device (to find the buffers). [rows, width] means rows x ld.
struct Carve {
  int64_t used = 0;
  __host__ __device__ int64_t operator()(int64_t n) {
    const int64_t at = used;
    used += (n + 3) & ~int64_t(3);  // every buffer starts 16-byte aligned (F32) or 32 (F64)
    return at;
  }
};

struct ForwardLayout {
  int64_t q, kv, s, o, m, l, total;
  __host__ __device__ explicit ForwardLayout(const Tiles& t) {
    Carve c;
    q = c(int64_t(t.bq) * t.ldd);    // Q tile               [Bq, D]
    kv = c(int64_t(t.bk) * t.ldkv);  // K tile, then V tile  [Bk, D | Dv]
    s = c(int64_t(t.bq) * t.lds);    // S, then P            [Bq, Bk]
    o = c(int64_t(t.bq) * t.ldv);    // output accumulator   [Bq, Dv]
    m = c(t.bq);                     // running row max
    l = c(t.bq);                     // running row sum
    total = c.used;
  }
};

struct BackwardQueryLayout {
  int64_t q, dout, kv, s, dp, dq, lse, dd, total;
  __host__ __device__ explicit BackwardQueryLayout(const Tiles& t) {
    Carve c;
    q = c(int64_t(t.bq) * t.ldd);     // [Bq, D]
    dout = c(int64_t(t.bq) * t.ldv);  // [Bq, Dv]
    kv = c(int64_t(t.bk) * t.ldkv);   // V tile, then K tile
    s = c(int64_t(t.bq) * t.lds);     // S, then P
    dp = c(int64_t(t.bq) * t.lds);    // dP, then dS
    dq = c(int64_t(t.bq) * t.ldd);    // dQ accumulator
    lse = c(t.bq);
    dd = c(t.bq);                     // D of the rows
    total = c.used;
  }
};

struct BackwardKeyLayout {
  int64_t k, v, dk, dv, q, dout, s, dp, lse, dd, total;
  __host__ __device__ explicit BackwardKeyLayout(const Tiles& t) {
    Carve c;
    k = c(int64_t(t.bk) * t.ldd);     // [Bk, D]
    v = c(int64_t(t.bk) * t.ldv);     // [Bk, Dv]
    dk = c(int64_t(t.bk) * t.ldd);    // dK accumulator
    dv = c(int64_t(t.bk) * t.ldv);    // dV accumulator
    q = c(int64_t(t.bq) * t.ldd);     // [Bq, D]
    dout = c(int64_t(t.bq) * t.ldv);  // [Bq, Dv]
    s = c(int64_t(t.bq) * t.lds);     // S, then P
    dp = c(int64_t(t.bq) * t.lds);    // dP, then dS
    lse = c(t.bq);
    dd = c(t.bq);
    total = c.used;
  }
};

struct SecondStatsLayout {
  int64_t q, gq, dout, pgv, x, y, s, dp, g, lse, dd, cs, fs, total;
  __host__ __device__ explicit SecondStatsLayout(const Tiles& t) {
    Carve c;
    q = c(int64_t(t.bq) * t.ldd);
    gq = c(int64_t(t.bq) * t.ldd);
    dout = c(int64_t(t.bq) * t.ldv);
    pgv = c(int64_t(t.bq) * t.ldv);  // P gv accumulator
    x = c(int64_t(t.bk) * t.ldkv);   // K, then V
    y = c(int64_t(t.bk) * t.ldkv);   // gK, then gV
    s = c(int64_t(t.bq) * t.lds);
    dp = c(int64_t(t.bq) * t.lds);
    g = c(int64_t(t.bq) * t.lds);
    lse = c(t.bq);
    dd = c(t.bq);
    cs = c(t.bq);  // rowsum(P ∘ G)
    fs = c(t.bq);  // rowsum(P ∘ G ∘ dP)
    total = c.used;
  }
};

struct SecondQueryLayout {
  int64_t q, gq, accq, dout, accdo, x, y, s, dp, g, tt, lse, dd, cc, ee, total;
  __host__ __device__ explicit SecondQueryLayout(const Tiles& t) {
    Carve c;
    q = c(int64_t(t.bq) * t.ldd);
    gq = c(int64_t(t.bq) * t.ldd);
    accq = c(int64_t(t.bq) * t.ldd);   // q' accumulator
    dout = c(int64_t(t.bq) * t.ldv);
    accdo = c(int64_t(t.bq) * t.ldv);  // dO' accumulator
    x = c(int64_t(t.bk) * t.ldkv);     // K, then V, then K
    y = c(int64_t(t.bk) * t.ldkv);     // gK, then gV, then gK
    s = c(int64_t(t.bq) * t.lds);      // S, then P
    dp = c(int64_t(t.bq) * t.lds);     // dP, then dS
    g = c(int64_t(t.bq) * t.lds);      // G, then ḡdP
    tt = c(int64_t(t.bq) * t.lds);     // dO gvᵀ, then ḡS
    lse = c(t.bq);
    dd = c(t.bq);
    cc = c(t.bq);
    ee = c(t.bq);
    total = c.used;
  }
};

struct SecondKeyLayout {
  int64_t k, gk, acck, v, gv, accv, xq, yq, s, dp, g, tt, lse, dd, cc, ee, total;
  __host__ __device__ explicit SecondKeyLayout(const Tiles& t) {
    Carve c;
    k = c(int64_t(t.bk) * t.ldd);
    gk = c(int64_t(t.bk) * t.ldd);
    acck = c(int64_t(t.bk) * t.ldd);  // k' accumulator
    v = c(int64_t(t.bk) * t.ldv);
    gv = c(int64_t(t.bk) * t.ldv);
    accv = c(int64_t(t.bk) * t.ldv);  // v' accumulator
    xq = c(int64_t(t.bq) * t.ldd);    // Q tile
    yq = c(int64_t(t.bq) * t.ldkv);   // gQ, then dO, then gQ
    s = c(int64_t(t.bq) * t.lds);
    dp = c(int64_t(t.bq) * t.lds);
    g = c(int64_t(t.bq) * t.lds);
    tt = c(int64_t(t.bq) * t.lds);
    lse = c(t.bq);
    dd = c(t.bq);
    cc = c(t.bq);
    ee = c(t.bq);
    total = c.used;
  }
};

struct JvpLayout {
  int64_t q, gq, acc, x, y, s, g, lse, cs, total;
  __host__ __device__ explicit JvpLayout(const Tiles& t) {
    Carve c;
    q = c(int64_t(t.bq) * t.ldd);
    gq = c(int64_t(t.bq) * t.ldd);   // tangent of q
    acc = c(int64_t(t.bq) * t.ldv);  // Σ (P ∘ tS) v + P tv
    x = c(int64_t(t.bk) * t.ldkv);   // K, then V
    y = c(int64_t(t.bk) * t.ldkv);   // tK, then tV
    s = c(int64_t(t.bq) * t.lds);    // S, then P
    g = c(int64_t(t.bq) * t.lds);    // tS, then P ∘ tS
    lse = c(t.bq);
    cs = c(t.bq);                    // rowsum(P ∘ tS) = tangent of lse
    total = c.used;
  }
};

// Dynamic shared memory of every kernel in this file (16-byte aligned; the layouts above carve it).
extern __shared__ __align__(16) unsigned char mk_attention_smem[];

template <class T>
__device__ __forceinline__ T* smem_base() {
  return reinterpret_cast<T*>(mk_attention_smem);
}

// ---- device helpers ------------------------------------------------------------------------------
template <class T>
__host__ __device__ __forceinline__ T neg_inf() {
  return -T(INFINITY);
}
__device__ __forceinline__ float texp(float x) { return expf(x); }
__device__ __forceinline__ double texp(double x) { return exp(x); }
__device__ __forceinline__ float tlog(float x) { return logf(x); }
__device__ __forceinline__ double tlog(double x) { return log(x); }

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// One (batch, query head) pair: the shared view of mk/attention.h (base pointers, null where the
// input is absent, and masking) plus the scale in the element type.
template <class T>
struct HeadView : AttentionHead<T> {
  T scale;
};

template <class T>
__device__ HeadView<T> head_view(const AttentionParams& p, int64_t b, int64_t h) {
  HeadView<T> x;
  static_cast<AttentionHead<T>&>(x) = attention_head<T>(p, b, h);
  x.scale = T(p.scale);
  return x;
}

// P(i, j) = exp(s + bias(i, j) − lse_i): 0 where key j is masked for row i or the row sees no key.
template <class T>
__device__ __forceinline__ T prob(const HeadView<T>& x, T s, int64_t i, int64_t j, T lse_i) {
  if (j >= x.key_end(i) || lse_i == neg_inf<T>()) return T(0);
  if (x.bias) s += x.bias[i * x.nk + j];
  return texp(s - lse_i);
}

// The tile of block blockIdx.x: (b, head, [first, first + count)) over query rows or keys, in the
// order of the CPU twin's task index (b outermost, tile innermost).
struct TileIndex {
  int64_t b, h, first;
  int count;
};

__device__ __forceinline__ TileIndex tile_index(int64_t heads, int64_t n, int tile) {
  const int64_t tiles = (n + tile - 1) / tile, t = blockIdx.x;
  TileIndex x;
  x.b = t / (heads * tiles);
  x.h = (t / tiles) % heads;
  x.first = (t % tiles) * tile;
  x.count = int(std::min<int64_t>(tile, n - x.first));
  return x;
}

// ---- tile movement (global <-> shared); every thread of the block calls these ------------------
// dst[r * ld + c] = src[(row0 + r) * width + c], r < rows, c < width
template <class T>
__device__ void load_rows(T* dst, int ld, const T* src, int64_t row0, int rows, int width) {
  const T* s = src + row0 * width;
  const int n = rows * width;
  for (int idx = threadIdx.x; idx < n; idx += kThreads) {
    const int r = idx / width, c = idx - r * width;
    dst[r * ld + c] = s[idx];
  }
}

// dst[r * width + c] = src[r * ld + c] (dst: the first of `rows` contiguous rows in global memory)
template <class T>
__device__ void store_rows(T* dst, const T* src, int ld, int rows, int width) {
  const int n = rows * width;
  for (int idx = threadIdx.x; idx < n; idx += kThreads) {
    const int r = idx / width, c = idx - r * width;
    dst[idx] = src[r * ld + c];
  }
}

template <class T>
__device__ void zero_rows(T* dst, int ld, int rows, int width) {
  const int n = rows * width;
  for (int idx = threadIdx.x; idx < n; idx += kThreads) {
    const int r = idx / width, c = idx - r * width;
    dst[r * ld + c] = T(0);
  }
}

// ---- block GEMM on shared-memory tiles -------------------------------------------------------------
// C[m * ldc + n] (+)= alpha Σ_k A(m, k) B(k, n), m < M, n < N, k < K, with A(m, k) = A[m * ars + k * acs]
// and B(k, n) = B[k * brs + n * bcs]. Threads form a TX x TY grid (TX a power of two <= 32 along
// N); each owns RM x RN outputs spaced TY rows and TX columns apart, so a warp reads one A element
// per row (a broadcast) and TX consecutive (or odd-strided) B elements. The mapping of outputs to
// threads depends only on (M, N): consecutive calls with the same (M, N) touch each element from
// the same thread. No barrier inside; every thread of the block calls it.
__device__ __forceinline__ int gemm_tx(int n, int rn) {
  const int want = (n + rn - 1) / rn;
  int tx = 1;
  while (tx < want && tx < 32) tx <<= 1;
  return tx;
}

// per-thread cost of one k step: multiply-adds plus shared loads, over all chunks
__device__ __forceinline__ int gemm_cost(int m, int n, int rm, int rn) {
  const int tx = gemm_tx(n, rn), ty = kThreads / tx;
  const int chunks = ((m + ty * rm - 1) / (ty * rm)) * ((n + tx * rn - 1) / (tx * rn));
  return chunks * (rm * rn + rm + rn);
}

template <class T, int RM, int RN>
__device__ __forceinline__ void gemm_micro(int M, int N, int K, T alpha, const T* A, int ars, int acs,
                                           const T* B, int brs, int bcs, T* C, int ldc, bool accumulate) {
  const int tx_n = gemm_tx(N, RN), ty_n = kThreads / tx_n;
  const int tx = int(threadIdx.x) % tx_n, ty = int(threadIdx.x) / tx_n;
  for (int m0 = ty; m0 < M; m0 += ty_n * RM) {
    for (int n0 = tx; n0 < N; n0 += tx_n * RN) {
      // rows and columns past the edge read the last valid one; their results are not stored
      const T* a[RM];
      const T* b[RN];
#pragma unroll
      for (int i = 0; i < RM; ++i) a[i] = A + std::min(m0 + i * ty_n, M - 1) * ars;
#pragma unroll
      for (int j = 0; j < RN; ++j) b[j] = B + std::min(n0 + j * tx_n, N - 1) * bcs;
      T acc[RM][RN];
#pragma unroll
      for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < RN; ++j) acc[i][j] = T(0);
      int ka = 0, kb = 0;
      for (int k = 0; k < K; ++k, ka += acs, kb += brs) {
        T av[RM], bv[RN];
#pragma unroll
        for (int i = 0; i < RM; ++i) av[i] = a[i][ka];
#pragma unroll
        for (int j = 0; j < RN; ++j) bv[j] = b[j][kb];
#pragma unroll
        for (int i = 0; i < RM; ++i)
#pragma unroll
          for (int j = 0; j < RN; ++j) acc[i][j] += av[i] * bv[j];
      }
#pragma unroll
      for (int i = 0; i < RM; ++i) {
        const int m = m0 + i * ty_n;
#pragma unroll
        for (int j = 0; j < RN; ++j) {
          const int n = n0 + j * tx_n;
          if (m < M && n < N) {
            T* c = C + m * ldc + n;
            const T val = alpha * acc[i][j];
            *c = accumulate ? *c + val : val;
          }
        }
      }
    }
  }
}

// Picks the micro-tile with the least per-thread work for this shape among 4x4 (big tiles), 2x4
// (few rows: a 16-row tile times D = 256), 2x2 (32 x 32 tiles, narrow D) and 1x1 (edge tiles of a
// few keys). Not inlined, and only four variants: ptxas time is most of the CUDA build.
template <class T>
__device__ __noinline__ void block_gemm(int M, int N, int K, T alpha, const T* A, int ars, int acs, const T* B,
                                        int brs, int bcs, T* C, int ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  const int c44 = gemm_cost(M, N, 4, 4), c24 = gemm_cost(M, N, 2, 4), c22 = gemm_cost(M, N, 2, 2),
            c11 = gemm_cost(M, N, 1, 1);
  if (c44 <= c24 && c44 <= c22 && c44 <= c11)
    gemm_micro<T, 4, 4>(M, N, K, alpha, A, ars, acs, B, brs, bcs, C, ldc, accumulate);
  else if (c24 <= c22 && c24 <= c11)
    gemm_micro<T, 2, 4>(M, N, K, alpha, A, ars, acs, B, brs, bcs, C, ldc, accumulate);
  else if (c22 <= c11)
    gemm_micro<T, 2, 2>(M, N, K, alpha, A, ars, acs, B, brs, bcs, C, ldc, accumulate);
  else
    gemm_micro<T, 1, 1>(M, N, K, alpha, A, ars, acs, B, brs, bcs, C, ldc, accumulate);
}

// Score-shaped products of a query tile (rows, ld of q / dO) with a key tile (rows, ld):
// out[r][c] (+)= alpha Σ_e a[r][e] b[c][e], r < R, c < C, e < width   (a bᵀ)
template <class T>
__device__ __forceinline__ void gemm_abt(int R, int C, int width, T alpha, const T* a, int lda, const T* b, int ldb,
                                         T* out, int ldo, bool accumulate) {
  block_gemm<T>(R, C, width, alpha, a, lda, 1, b, 1, ldb, out, ldo, accumulate);
}

// acc[r][e] += alpha Σ_c s[r][c] b[c][e]   (S b: a score tile times a key tile)
template <class T>
__device__ __forceinline__ void gemm_sb(int R, int width, int C, T alpha, const T* s, int lds, const T* b, int ldb,
                                        T* acc, int ldacc) {
  block_gemm<T>(R, width, C, alpha, s, lds, 1, b, ldb, 1, acc, ldacc, true);
}

// acc[c][e] += alpha Σ_r s[r][c] a[r][e]   (Sᵀ a: a score tile transposed times a query tile)
template <class T>
__device__ __forceinline__ void gemm_sta(int C, int width, int R, T alpha, const T* s, int lds, const T* a, int lda,
                                         T* acc, int ldacc) {
  block_gemm<T>(C, width, R, alpha, s, 1, lds, a, lda, 1, acc, ldacc, true);
}

// ---- shared by the backward of the backward and the JVP ---------------------------------------------
// G = scale (gQ Kᵀ + Q gKᵀ) on a tile (the bias cotangent is added element by element later);
// returns whether G was written. q, gq: [R, ldd]; k, gk: [C, ldd].
template <class T>
__device__ bool g_tile(const HeadView<T>& x, const Tiles& t, int R, int C, const T* qs, const T* gqs, const T* ks,
                       const T* gks, T* g) {
  bool any = false;
  if (x.gq) {
    gemm_abt<T>(R, C, t.d, x.scale, gqs, t.ldd, ks, t.ldd, g, t.lds, false);
    any = true;
  }
  __syncthreads();
  if (x.gk) {
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, gks, t.ldd, g, t.lds, any);
    any = true;
  }
  return any;
}

// ---- shared by the backward and the backward of the backward -------------------------------------
// Preprocess: out[r] = Σ_e a[r, e] b[r, e] (D = rowsum(dO ∘ O)), one warp per row.
template <class T>
__global__ void __launch_bounds__(kThreads) rowdot_kernel(int64_t rows, int width, const T* a, const T* b, T* out) {
  const int lane = int(threadIdx.x) % 32;
  const int64_t warps = int64_t(gridDim.x) * kWarps;
  for (int64_t r = int64_t(blockIdx.x) * kWarps + int(threadIdx.x) / 32; r < rows; r += warps) {
    T acc = T(0);
    for (int e = lane; e < width; e += 32) acc += a[r * width + e] * b[r * width + e];
    acc = warp_sum(acc);
    if (lane == 0) out[r] = acc;
  }
}

// ---- launchers -------------------------------------------------------------------------------------
struct Limits {
  size_t optin = 48 * 1024;  // most dynamic shared memory one block may opt into
  size_t per_sm = 0;         // shared memory of one SM
};

int device_limits(Limits* lim) {
  int dev = 0, optin = 0, per_sm = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return int(e);
  e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e != cudaSuccess) return int(e);
  e = cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev);
  if (e != cudaSuccess) return int(e);
  lim->optin = size_t(optin);
  lim->per_sm = size_t(per_sm);
  return 0;
}

// The tiles of a pass: among the shapes of Traits::kShapes whose buffers fit one block's opt-in
// shared memory, the one with the best score = (resident blocks per SM, up to 2) x (tile area, up
// to 2048 scores): big enough tiles keep all threads busy in the block GEMMs and reuse every
// loaded row, a second resident block hides latency. Ties go to more resident blocks, then to the
// earlier shape. 1 KB of shared memory per block is reserved by the system (sm_80+). False when
// not even the smallest shape fits.
template <class Layout>
bool pick_tiles(size_t esize, int d, int dv, const Limits& lim, Tiles* t, size_t* bytes) {
  const size_t reserved = 1024;
  int best_score = -1, best_blocks = 0;
  for (const TileShape& shape : Traits::kShapes) {
    const Tiles c = make_tiles(shape, d, dv);
    const size_t b = size_t(Layout(c).total) * esize;
    if (b > lim.optin) continue;
    const int blocks = int(std::max<size_t>(1, std::min<size_t>(2, lim.per_sm / (b + reserved))));
    const int score = blocks * std::min(shape.bq * shape.bk, 2048);
    if (score > best_score || (score == best_score && blocks > best_blocks)) {
      best_score = score;
      best_blocks = blocks;
      *t = c;
      *bytes = b;
    }
  }
  return best_score >= 0;
}

template <class... KArgs, class... Args>
int launch(void (*kernel)(KArgs...), int64_t blocks, size_t smem, cudaStream_t stream, Args... args) {
  if (blocks <= 0) return 0;
  if (blocks > int64_t(INT_MAX)) return int(cudaErrorInvalidConfiguration);
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (e != cudaSuccess) return int(e);
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(blocks), 1, 1);
  cfg.blockDim = dim3(unsigned(kThreads), 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = nullptr;
  cfg.numAttrs = 0;
  e = cudaLaunchKernelEx(&cfg, kernel, args...);
  if (e != cudaSuccess) return int(e);
  return last_error();
}

// One tiled pass: query tiles (B·H·⌈Nq/Bq⌉ blocks) or key tiles (B·Hkv·⌈Nk/Bk⌉ blocks).
enum class Over { kQueries, kKeys };

template <class Layout, class T>
int run_pass(void (*kernel)(AttentionParams, Tiles), Over over, const AttentionParams& p, const Limits& lim,
             cudaStream_t stream) {
  Tiles t;
  size_t bytes = 0;
  if (!pick_tiles<Layout>(sizeof(T), int(p.d), int(p.dv), lim, &t, &bytes)) return int(cudaErrorInvalidConfiguration);
  const int64_t blocks = over == Over::kQueries ? p.batch * p.heads * ((p.nq + t.bq - 1) / t.bq)
                                                : p.batch * p.kv_heads * ((p.nk + t.bk - 1) / t.bk);
  return launch(kernel, blocks, bytes, stream, p, t);
}

// Preprocess of both backward passes: D = rowsum(dO ∘ O) into the first B·H·Nq elements of the workspace.
template <class T>
int rowsum_dout_out(const AttentionParams& p, cudaStream_t stream) {
  const int64_t rows = p.batch * p.heads * p.nq;
  const int64_t blocks = std::min<int64_t>((rows + kWarps - 1) / kWarps, 65535LL * 32);
  return launch(rowdot_kernel<T>, blocks, 0, stream, rows, int(p.dv), static_cast<const T*>(p.out),
                static_cast<const T*>(p.dout), static_cast<T*>(p.workspace));
}

bool supported(const AttentionParams& p) {
  return (p.dtype == MK_F32 || p.dtype == MK_F64) && p.d >= 1 && p.d <= Traits::kMaxDim && p.dv >= 1 &&
         p.dv <= Traits::kMaxDim && p.heads >= 1 && p.kv_heads >= 1 && p.heads % p.kv_heads == 0;
}

}  // namespace

inline bool is_half(const AttentionParams& p) { return p.dtype == MK_BF16 || p.dtype == MK_F16; }

// F32 with TF32 allowed: the tensor-core kernels where the device's shared memory holds their
// tiles, else the SIMT kernels below.
inline bool try_tf32(const AttentionParams& p) { return p.dtype == MK_F32 && p.allow_tf32; }

}  // namespace cuda
}  // namespace mk
