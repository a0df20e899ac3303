// Softmax attention on CUDA: the twin of kernels/cpu/attention/ (same signatures, declared in
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
//   forward            query tiles (b, h, Bq rows); online softmax over the key tiles
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
// BF16 / F16 forward and backward go to the tensor-core kernels of attention_tc.cu (F32 lse and
// statistics); the 16-bit double backward and JVP are composed in Java over the F32 kernels. F32
// forward and backward with allow_tf32 go there too (TF32 MMAs) when the tiles fit.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "attention_tc.cuh"
#include "common.cuh"
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

// ---- forward -------------------------------------------------------------------------------------
// Query tiles. Per key tile: S = scale Q Kᵀ + bias (masked); online softmax per row (running max m,
// sum l, rescaling the accumulator); O += P V. Reduce: out = O / l, lse = m + log l.
template <class T>
__global__ void __launch_bounds__(kThreads) forward_kernel(const AttentionParams p, const Tiles t) {
  const ForwardLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *kv = sm + L.kv, *s = sm + L.s, *o = sm + L.o, *m = sm + L.m, *l = sm + L.l;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  zero_rows(o, t.ldv, R, t.dv);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    m[r] = neg_inf<T>();
    l[r] = T(0);
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(kv, t.ldd, x.k, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, kv, t.ldd, s, t.lds, false);
    __syncthreads();
    // K is consumed: V takes its place while the warps run the online softmax, one row each
    load_rows(kv, t.ldv, x.v, c0, C, t.dv);
    for (int r = warp; r < R; r += kWarps) {
      const int64_t i = r0 + r, e = x.key_end(i);
      T* sr = s + r * t.lds;
      T mx = neg_inf<T>();
      for (int c = lane; c < C; c += 32) {
        const int64_t j = c0 + c;
        T val = neg_inf<T>();
        if (j < e) val = x.bias ? sr[c] + x.bias[i * x.nk + j] : sr[c];
        sr[c] = val;
        mx = val > mx ? val : mx;
      }
      mx = warp_max(mx);
      const T mo = m[r];
      const T mn = mx > mo ? mx : mo;
      T corr = T(1);
      if (mn == neg_inf<T>()) {
        for (int c = lane; c < C; c += 32) sr[c] = T(0);
      } else {
        corr = mo == neg_inf<T>() ? T(0) : texp(mo - mn);
        T sum = T(0);
        for (int c = lane; c < C; c += 32) {
          const T pv = texp(sr[c] - mn);
          sr[c] = pv;
          sum += pv;
        }
        sum = warp_sum(sum);  // every lane has read m[r] before this point
        if (lane == 0) {
          l[r] = l[r] * corr + sum;
          m[r] = mn;
        }
      }
      if (corr != T(1))
        for (int e2 = lane; e2 < t.dv; e2 += 32) o[r * t.ldv + e2] *= corr;
    }
    __syncthreads();
    gemm_sb<T>(R, t.dv, C, T(1), s, t.lds, kv, t.ldv, o, t.ldv);
    __syncthreads();
  }
  // reduce: normalise and write the owned rows
  for (int r = warp; r < R; r += kWarps) {
    const T lr = l[r];
    const T inv = lr > T(0) ? T(1) / lr : T(0);
    const int64_t row = x.base + r0 + r;
    if (p.out) {
      T* out = static_cast<T*>(p.out) + row * t.dv;
      for (int e = lane; e < t.dv; e += 32) out[e] = o[r * t.ldv + e] * inv;
    }
    if (p.lse && lane == 0) static_cast<T*>(p.lse)[row] = lr > T(0) ? m[r] + tlog(lr) : neg_inf<T>();
  }
}

// ---- backward --------------------------------------------------------------------------------------
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

// Main, query tiles: dS = P ∘ (dP − D) with dP = dO Vᵀ, written to the full dS (grad_bias_full) when asked;
// dQ += scale dS K. Reduce: write dQ (grad_q).
template <class T>
__global__ void __launch_bounds__(kThreads) backward_query_kernel(const AttentionParams p, const Tiles t) {
  const BackwardQueryLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *dos = sm + L.dout, *kv = sm + L.kv, *s = sm + L.s, *dp = sm + L.dp, *dq = sm + L.dq;
  T *lse = sm + L.lse, *dd = sm + L.dd;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const T* Dall = static_cast<const T*>(p.workspace);
  T* ds_full = p.grad_bias_full ? static_cast<T*>(p.grad_bias_full) + x.base * x.nk : nullptr;  // + i * Nk + j

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  load_rows(dos, t.ldv, x.dout, r0, R, t.dv);
  if (p.grad_q) zero_rows(dq, t.ldd, R, t.d);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    lse[r] = x.lse[r0 + r];
    dd[r] = Dall[x.base + r0 + r];
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(kv, t.ldv, x.v, c0, C, t.dv);
    __syncthreads();
    gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, kv, t.ldv, dp, t.lds, false);  // dP = dO Vᵀ
    __syncthreads();
    load_rows(kv, t.ldd, x.k, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, kv, t.ldd, s, t.lds, false);  // S = scale Q Kᵀ
    __syncthreads();
    for (int idx = threadIdx.x; idx < R * C; idx += kThreads) {
      const int r = idx / C, c = idx - r * C;
      const int64_t i = r0 + r, j = c0 + c;
      const T P = prob(x, s[r * t.lds + c], i, j, lse[r]);
      const T ds = P * (dp[r * t.lds + c] - dd[r]);
      dp[r * t.lds + c] = ds;
      if (ds_full) ds_full[i * x.nk + j] = ds;
    }
    __syncthreads();
    if (p.grad_q) gemm_sb<T>(R, t.d, C, x.scale, dp, t.lds, kv, t.ldd, dq, t.ldd);  // dQ += scale dS K
    __syncthreads();
  }
  if (p.grad_q) store_rows(static_cast<T*>(p.grad_q) + (x.base + r0) * t.d, dq, t.ldd, R, t.d);
}

// Main, key tiles: for each query head of the KV head and each query tile that sees the keys,
// dV += Pᵀ dO and dK += scale dSᵀ Q. Reduce: write dK (grad_k), dV (grad_v).
template <class T>
__global__ void __launch_bounds__(kThreads) backward_key_kernel(const AttentionParams p, const Tiles t) {
  const BackwardKeyLayout L(t);
  T* const sm = smem_base<T>();
  T *ks = sm + L.k, *vs = sm + L.v, *dk = sm + L.dk, *dv = sm + L.dv, *qs = sm + L.q, *dos = sm + L.dout;
  T *s = sm + L.s, *dp = sm + L.dp, *lse = sm + L.lse, *dd = sm + L.dd;
  const TileIndex ti = tile_index(p.kv_heads, p.nk, t.bk);  // ti.h: the KV head
  const int64_t c0 = ti.first;
  const int C = ti.count;
  const int64_t group = p.heads / p.kv_heads;
  const T* Dall = static_cast<const T*>(p.workspace);
  const HeadView<T> x0 = head_view<T>(p, ti.b, ti.h * group);

  load_rows(ks, t.ldd, x0.k, c0, C, t.d);
  load_rows(vs, t.ldv, x0.v, c0, C, t.dv);
  if (p.grad_k) zero_rows(dk, t.ldd, C, t.d);
  if (p.grad_v) zero_rows(dv, t.ldv, C, t.dv);
  __syncthreads();
  for (int64_t h = ti.h * group; h < (ti.h + 1) * group; ++h) {
    const HeadView<T> x = head_view<T>(p, ti.b, h);
    if (c0 >= x.len) continue;  // padding keys: zero gradients (pre-zeroed)
    for (int64_t r0 = x.first_row(c0); r0 < x.nq; r0 += t.bq) {
      const int R = int(std::min<int64_t>(t.bq, x.nq - r0));
      load_rows(qs, t.ldd, x.q, r0, R, t.d);
      load_rows(dos, t.ldv, x.dout, r0, R, t.dv);
      for (int r = threadIdx.x; r < R; r += kThreads) {
        lse[r] = x.lse[r0 + r];
        dd[r] = Dall[x.base + r0 + r];
      }
      __syncthreads();
      gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, ks, t.ldd, s, t.lds, false);  // S = scale Q Kᵀ
      gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, vs, t.ldv, dp, t.lds, false);  // dP = dO Vᵀ
      __syncthreads();
      for (int idx = threadIdx.x; idx < R * C; idx += kThreads) {
        const int r = idx / C, c = idx - r * C;
        const T P = prob(x, s[r * t.lds + c], r0 + r, c0 + c, lse[r]);
        s[r * t.lds + c] = P;
        dp[r * t.lds + c] = P * (dp[r * t.lds + c] - dd[r]);
      }
      __syncthreads();
      if (p.grad_v) gemm_sta<T>(C, t.dv, R, T(1), s, t.lds, dos, t.ldv, dv, t.ldv);     // dV += Pᵀ dO
      if (p.grad_k) gemm_sta<T>(C, t.d, R, x.scale, dp, t.lds, qs, t.ldd, dk, t.ldd);  // dK += scale dSᵀ Q
      __syncthreads();
    }
  }
  const int64_t krow = (ti.b * p.kv_heads + ti.h) * p.nk + c0;
  if (p.grad_k) store_rows(static_cast<T*>(p.grad_k) + krow * t.d, dk, t.ldd, C, t.d);
  if (p.grad_v) store_rows(static_cast<T*>(p.grad_v) + krow * t.dv, dv, t.ldv, C, t.dv);
}

// ---- backward of the backward -------------------------------------------------------------------
// Per tile, with P, dP = dO vᵀ, G = scale (gq kᵀ + q gkᵀ) + gbias, dS = P ∘ (dP − D):
//   ḡP = dO gvᵀ + G ∘ (dP − D) − C dP,  ḡS = P ∘ (ḡP − E),  ḡdP = P ∘ (G − C)
//   C = rowsum(P ∘ G),  E = rowsum(P ∘ ḡP) = dO·(P gv) + rowsum(P ∘ G ∘ dP) − 2 C D
//   q' = scale (ḡS k + dS gk),  dO' = P gv + ḡdP v,  bias' = ḡS
//   k' = scale (ḡSᵀ q + dSᵀ gq),  v' = ḡdPᵀ dO

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

// Elementwise part of a double-backward tile: from raw scores (s), dP (dp), G (g, when have_g) and
// T = dO gvᵀ (tt, when x.gv) to P (s), dS (dp), ḡdP (g) and ḡS (tt); ḡS also goes to the full bias
// cotangent when gbias_out is not null. Rows [r0, r0 + R), keys [c0, c0 + C).
template <class T>
__device__ void second_tile(const HeadView<T>& x, const Tiles& t, int64_t r0, int R, int64_t c0, int C, bool have_g,
                            T* s, T* dp, T* g, T* tt, const T* lse, const T* dd, const T* cc, const T* ee,
                            T* gbias_out) {
  for (int idx = threadIdx.x; idx < R * C; idx += kThreads) {
    const int r = idx / C, c = idx - r * C, o = r * t.lds + c;
    const int64_t i = r0 + r, j = c0 + c;
    const T P = prob(x, s[o], i, j, lse[r]);
    const T dpv = dp[o];
    T gval = have_g ? g[o] : T(0);
    if (x.gbias) gval += x.gbias[i * x.nk + j];
    const T tv = x.gv ? tt[o] : T(0);
    const T gP = tv + gval * (dpv - dd[r]) - cc[r] * dpv;
    const T gs = P * (gP - ee[r]);
    s[o] = P;
    dp[o] = P * (dpv - dd[r]);
    g[o] = P * (gval - cc[r]);
    tt[o] = gs;
    if (gbias_out) gbias_out[i * x.nk + j] = gs;
  }
}

// Row statistics, query tiles: C = rowsum(P ∘ G), F = rowsum(P ∘ G ∘ dP), A = dO·(P gv);
// reduce: C and E = A + F − 2 C D into the workspace.
template <class T>
__global__ void __launch_bounds__(kThreads) second_stats_kernel(const AttentionParams p, const Tiles t) {
  const SecondStatsLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *gqs = sm + L.gq, *dos = sm + L.dout, *pgv = sm + L.pgv, *xs = sm + L.x, *ys = sm + L.y;
  T *s = sm + L.s, *dp = sm + L.dp, *g = sm + L.g, *lse = sm + L.lse, *dd = sm + L.dd, *cs = sm + L.cs, *fs = sm + L.fs;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  const int64_t rows = p.batch * p.heads * p.nq;
  T* Dall = static_cast<T*>(p.workspace);
  T* Call = Dall + rows;
  T* Eall = Dall + 2 * rows;

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  load_rows(dos, t.ldv, x.dout, r0, R, t.dv);
  if (x.gq) load_rows(gqs, t.ldd, x.gq, r0, R, t.d);
  if (x.gv) zero_rows(pgv, t.ldv, R, t.dv);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    lse[r] = x.lse[r0 + r];
    dd[r] = Dall[x.base + r0 + r];
    cs[r] = T(0);
    fs[r] = T(0);
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(xs, t.ldd, x.k, c0, C, t.d);
    if (x.gk) load_rows(ys, t.ldd, x.gk, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, xs, t.ldd, s, t.lds, false);  // S
    const bool have_g = g_tile(x, t, R, C, qs, gqs, xs, ys, g);                // G (barrier inside)
    __syncthreads();
    load_rows(xs, t.ldv, x.v, c0, C, t.dv);
    if (x.gv) load_rows(ys, t.ldv, x.gv, c0, C, t.dv);
    __syncthreads();
    gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, xs, t.ldv, dp, t.lds, false);  // dP
    __syncthreads();
    for (int r = warp; r < R; r += kWarps) {
      const int64_t i = r0 + r;
      T csum = T(0), fsum = T(0);
      for (int c = lane; c < C; c += 32) {
        const int o = r * t.lds + c;
        const int64_t j = c0 + c;
        const T P = prob(x, s[o], i, j, lse[r]);
        T gval = have_g ? g[o] : T(0);
        if (x.gbias) gval += x.gbias[i * x.nk + j];
        const T pg = P * gval;
        csum += pg;
        fsum += pg * dp[o];
        s[o] = P;
      }
      csum = warp_sum(csum);
      fsum = warp_sum(fsum);
      if (lane == 0) {
        cs[r] += csum;
        fs[r] += fsum;
      }
    }
    __syncthreads();
    if (x.gv) gemm_sb<T>(R, t.dv, C, T(1), s, t.lds, ys, t.ldv, pgv, t.ldv);  // P gv
    __syncthreads();
  }
  for (int r = warp; r < R; r += kWarps) {
    T a = T(0);
    if (x.gv) {
      for (int e = lane; e < t.dv; e += 32) a += dos[r * t.ldv + e] * pgv[r * t.ldv + e];
      a = warp_sum(a);
    }
    if (lane == 0) {
      const int64_t row = x.base + r0 + r;
      Call[row] = cs[r];
      Eall[row] = a + fs[r] - T(2) * cs[r] * dd[r];
    }
  }
}

// Query tiles: q' = scale (ḡS K + dS gK), dO' = P gV + ḡdP V, bias' = ḡS (full, written per tile).
// Reduce: write q' (cot_q) and dO' (cot_dout).
template <class T>
__global__ void __launch_bounds__(kThreads) second_query_kernel(const AttentionParams p, const Tiles t) {
  const SecondQueryLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *gqs = sm + L.gq, *accq = sm + L.accq, *dos = sm + L.dout, *accdo = sm + L.accdo;
  T *xs = sm + L.x, *ys = sm + L.y, *s = sm + L.s, *dp = sm + L.dp, *g = sm + L.g, *tt = sm + L.tt;
  T *lse = sm + L.lse, *dd = sm + L.dd, *cc = sm + L.cc, *ee = sm + L.ee;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int64_t rows = p.batch * p.heads * p.nq;
  const T* Dall = static_cast<const T*>(p.workspace);
  const T* Call = Dall + rows;
  const T* Eall = Dall + 2 * rows;
  T* gbias_out = p.cot_bias_full ? static_cast<T*>(p.cot_bias_full) + x.base * x.nk : nullptr;  // + i * Nk + j

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  load_rows(dos, t.ldv, x.dout, r0, R, t.dv);
  if (x.gq) load_rows(gqs, t.ldd, x.gq, r0, R, t.d);
  if (p.cot_q) zero_rows(accq, t.ldd, R, t.d);
  if (p.cot_dout) zero_rows(accdo, t.ldv, R, t.dv);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    const int64_t row = x.base + r0 + r;
    lse[r] = x.lse[r0 + r];
    dd[r] = Dall[row];
    cc[r] = Call[row];
    ee[r] = Eall[row];
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(xs, t.ldd, x.k, c0, C, t.d);
    if (x.gk) load_rows(ys, t.ldd, x.gk, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, xs, t.ldd, s, t.lds, false);  // S
    const bool have_g = g_tile(x, t, R, C, qs, gqs, xs, ys, g);                // G
    __syncthreads();
    load_rows(xs, t.ldv, x.v, c0, C, t.dv);
    if (x.gv) load_rows(ys, t.ldv, x.gv, c0, C, t.dv);
    __syncthreads();
    gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, xs, t.ldv, dp, t.lds, false);         // dP = dO Vᵀ
    if (x.gv) gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, ys, t.ldv, tt, t.lds, false);  // dO gVᵀ
    __syncthreads();
    second_tile(x, t, r0, R, c0, C, have_g, s, dp, g, tt, lse, dd, cc, ee, gbias_out);
    __syncthreads();
    if (p.cot_dout) {
      if (x.gv) gemm_sb<T>(R, t.dv, C, T(1), s, t.lds, ys, t.ldv, accdo, t.ldv);  // += P gV
      gemm_sb<T>(R, t.dv, C, T(1), g, t.lds, xs, t.ldv, accdo, t.ldv);            // += ḡdP V
    }
    if (p.cot_q) {
      __syncthreads();  // V and gV are consumed: K and gK come back
      load_rows(xs, t.ldd, x.k, c0, C, t.d);
      if (x.gk) load_rows(ys, t.ldd, x.gk, c0, C, t.d);
      __syncthreads();
      gemm_sb<T>(R, t.d, C, x.scale, tt, t.lds, xs, t.ldd, accq, t.ldd);            // += scale ḡS K
      if (x.gk) gemm_sb<T>(R, t.d, C, x.scale, dp, t.lds, ys, t.ldd, accq, t.ldd);  // += scale dS gK
    }
    __syncthreads();
  }
  if (p.cot_q) store_rows(static_cast<T*>(p.cot_q) + (x.base + r0) * t.d, accq, t.ldd, R, t.d);
  if (p.cot_dout) store_rows(static_cast<T*>(p.cot_dout) + (x.base + r0) * t.dv, accdo, t.ldv, R, t.dv);
}

// Key tiles (over the query heads of the KV head and their query tiles): k' = scale (ḡSᵀ Q + dSᵀ gQ),
// v' = ḡdPᵀ dO. Reduce: write k' (cot_k) and v' (cot_v).
template <class T>
__global__ void __launch_bounds__(kThreads) second_key_kernel(const AttentionParams p, const Tiles t) {
  const SecondKeyLayout L(t);
  T* const sm = smem_base<T>();
  T *ks = sm + L.k, *gks = sm + L.gk, *acck = sm + L.acck, *vs = sm + L.v, *gvs = sm + L.gv, *accv = sm + L.accv;
  T *xq = sm + L.xq, *yq = sm + L.yq, *s = sm + L.s, *dp = sm + L.dp, *g = sm + L.g, *tt = sm + L.tt;
  T *lse = sm + L.lse, *dd = sm + L.dd, *cc = sm + L.cc, *ee = sm + L.ee;
  const TileIndex ti = tile_index(p.kv_heads, p.nk, t.bk);
  const int64_t c0 = ti.first;
  const int C = ti.count;
  const int64_t group = p.heads / p.kv_heads;
  const int64_t rows = p.batch * p.heads * p.nq;
  const T* Dall = static_cast<const T*>(p.workspace);
  const T* Call = Dall + rows;
  const T* Eall = Dall + 2 * rows;
  const HeadView<T> x0 = head_view<T>(p, ti.b, ti.h * group);

  load_rows(ks, t.ldd, x0.k, c0, C, t.d);
  load_rows(vs, t.ldv, x0.v, c0, C, t.dv);
  if (x0.gk) load_rows(gks, t.ldd, x0.gk, c0, C, t.d);
  if (x0.gv) load_rows(gvs, t.ldv, x0.gv, c0, C, t.dv);
  if (p.cot_k) zero_rows(acck, t.ldd, C, t.d);
  if (p.cot_v) zero_rows(accv, t.ldv, C, t.dv);
  __syncthreads();
  for (int64_t h = ti.h * group; h < (ti.h + 1) * group; ++h) {
    const HeadView<T> x = head_view<T>(p, ti.b, h);
    if (c0 >= x.len) continue;
    for (int64_t r0 = x.first_row(c0); r0 < x.nq; r0 += t.bq) {
      const int R = int(std::min<int64_t>(t.bq, x.nq - r0));
      load_rows(xq, t.ldd, x.q, r0, R, t.d);
      if (x.gq) load_rows(yq, t.ldd, x.gq, r0, R, t.d);
      for (int r = threadIdx.x; r < R; r += kThreads) {
        const int64_t row = x.base + r0 + r;
        lse[r] = x.lse[r0 + r];
        dd[r] = Dall[row];
        cc[r] = Call[row];
        ee[r] = Eall[row];
      }
      __syncthreads();
      gemm_abt<T>(R, C, t.d, x.scale, xq, t.ldd, ks, t.ldd, s, t.lds, false);  // S
      const bool have_g = g_tile(x, t, R, C, xq, yq, ks, gks, g);                // G
      __syncthreads();
      load_rows(yq, t.ldv, x.dout, r0, R, t.dv);  // gQ is consumed: dO takes its place
      __syncthreads();
      gemm_abt<T>(R, C, t.dv, T(1), yq, t.ldv, vs, t.ldv, dp, t.lds, false);            // dP = dO Vᵀ
      if (x.gv) gemm_abt<T>(R, C, t.dv, T(1), yq, t.ldv, gvs, t.ldv, tt, t.lds, false);  // dO gVᵀ
      __syncthreads();
      second_tile<T>(x, t, r0, R, c0, C, have_g, s, dp, g, tt, lse, dd, cc, ee, nullptr);
      __syncthreads();
      if (p.cot_v) gemm_sta<T>(C, t.dv, R, T(1), g, t.lds, yq, t.ldv, accv, t.ldv);      // v' += ḡdPᵀ dO
      if (p.cot_k) gemm_sta<T>(C, t.d, R, x.scale, tt, t.lds, xq, t.ldd, acck, t.ldd);  // k' += scale ḡSᵀ Q
      if (p.cot_k && x.gq) {
        __syncthreads();  // dO is consumed: gQ comes back
        load_rows(yq, t.ldd, x.gq, r0, R, t.d);
        __syncthreads();
        gemm_sta<T>(C, t.d, R, x.scale, dp, t.lds, yq, t.ldd, acck, t.ldd);  // k' += scale dSᵀ gQ
      }
      __syncthreads();
    }
  }
  const int64_t krow = (ti.b * p.kv_heads + ti.h) * p.nk + c0;
  if (p.cot_k) store_rows(static_cast<T*>(p.cot_k) + krow * t.d, acck, t.ldd, C, t.d);
  if (p.cot_v) store_rows(static_cast<T*>(p.cot_v) + krow * t.dv, accv, t.ldv, C, t.dv);
}

// ---- JVP -------------------------------------------------------------------------------------------
// Query tiles, tangents gq = tq, gk = tk, gv = tv, gbias = tbias (full): tS = scale (tq kᵀ + q tkᵀ)
// + tbias; c = rowsum(P ∘ tS), acc = Σ (P ∘ tS) v + P tv. Reduce: tO = acc − c O (tan_out), tlse = c (tan_lse).
template <class T>
__global__ void __launch_bounds__(kThreads) jvp_kernel(const AttentionParams p, const Tiles t) {
  const JvpLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *gqs = sm + L.gq, *acc = sm + L.acc, *xs = sm + L.x, *ys = sm + L.y, *s = sm + L.s;
  T *g = sm + L.g, *lse = sm + L.lse, *cs = sm + L.cs;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  if (x.gq) load_rows(gqs, t.ldd, x.gq, r0, R, t.d);
  zero_rows(acc, t.ldv, R, t.dv);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    lse[r] = x.lse[r0 + r];
    cs[r] = T(0);
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(xs, t.ldd, x.k, c0, C, t.d);
    if (x.gk) load_rows(ys, t.ldd, x.gk, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, xs, t.ldd, s, t.lds, false);  // S
    const bool have_g = g_tile(x, t, R, C, qs, gqs, xs, ys, g);                // tS without the bias
    __syncthreads();
    // K and tK are consumed: V and tV take their place while the warps finish tS row by row
    load_rows(xs, t.ldv, x.v, c0, C, t.dv);
    if (x.gv) load_rows(ys, t.ldv, x.gv, c0, C, t.dv);
    for (int r = warp; r < R; r += kWarps) {
      const int64_t i = r0 + r;
      T csum = T(0);
      for (int c = lane; c < C; c += 32) {
        const int o = r * t.lds + c;
        const int64_t j = c0 + c;
        const T P = prob(x, s[o], i, j, lse[r]);
        T ts = have_g ? g[o] : T(0);
        if (x.gbias) ts += x.gbias[i * x.nk + j];
        const T pts = P * ts;
        s[o] = P;
        g[o] = pts;
        csum += pts;
      }
      csum = warp_sum(csum);
      if (lane == 0) cs[r] += csum;
    }
    __syncthreads();
    gemm_sb<T>(R, t.dv, C, T(1), g, t.lds, xs, t.ldv, acc, t.ldv);            // += (P ∘ tS) V
    if (x.gv) gemm_sb<T>(R, t.dv, C, T(1), s, t.lds, ys, t.ldv, acc, t.ldv);  // += P tV
    __syncthreads();
  }
  for (int r = warp; r < R; r += kWarps) {
    const int64_t row = x.base + r0 + r;
    const T c = cs[r];
    if (p.tan_out) {
      T* to = static_cast<T*>(p.tan_out) + row * t.dv;
      const T* o = x.out + (r0 + r) * t.dv;
      for (int e = lane; e < t.dv; e += 32) to[e] = acc[r * t.ldv + e] - c * o[e];
    }
    if (p.tan_lse && lane == 0) static_cast<T*>(p.tan_lse)[row] = c;
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

template <class T>
int forward(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  return run_pass<ForwardLayout, T>(forward_kernel<T>, Over::kQueries, p, lim, stream);
}

template <class T>
int backward(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  if (int e = rowsum_dout_out<T>(p, stream)) return e;
  if (p.grad_q || p.grad_bias_full)
    if (int e = run_pass<BackwardQueryLayout, T>(backward_query_kernel<T>, Over::kQueries, p, lim, stream)) return e;
  if (p.grad_k || p.grad_v)
    if (int e = run_pass<BackwardKeyLayout, T>(backward_key_kernel<T>, Over::kKeys, p, lim, stream)) return e;
  return 0;
}

template <class T>
int backward_backward(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  if (int e = rowsum_dout_out<T>(p, stream)) return e;
  if (int e = run_pass<SecondStatsLayout, T>(second_stats_kernel<T>, Over::kQueries, p, lim, stream)) return e;
  if (p.cot_q || p.cot_dout || p.cot_bias_full)
    if (int e = run_pass<SecondQueryLayout, T>(second_query_kernel<T>, Over::kQueries, p, lim, stream)) return e;
  if (p.cot_k || p.cot_v)
    if (int e = run_pass<SecondKeyLayout, T>(second_key_kernel<T>, Over::kKeys, p, lim, stream)) return e;
  return 0;
}

template <class T>
int jvp(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  return run_pass<JvpLayout, T>(jvp_kernel<T>, Over::kQueries, p, lim, stream);
}

}  // namespace

static bool is_half(const AttentionParams& p) { return p.dtype == MK_BF16 || p.dtype == MK_F16; }

// F32 with TF32 allowed: the tensor-core kernels where the device's shared memory holds their
// tiles, else the SIMT kernels below.
static bool try_tf32(const AttentionParams& p) { return p.dtype == MK_F32 && p.allow_tf32; }

int attention_forward(const AttentionParams& p, void* stream) {
  if (is_half(p)) return tc_attention_forward(p, stream);
  if (try_tf32(p)) {
    const int e = tc_attention_forward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  if (!supported(p)) return int(cudaErrorInvalidValue);
  return p.dtype == MK_F32 ? forward<float>(p, as_stream(stream)) : forward<double>(p, as_stream(stream));
}

int attention_backward(const AttentionParams& p, void* stream) {
  if (is_half(p)) return tc_attention_backward(p, stream);
  if (try_tf32(p) && p.workspace) {
    const int e = tc_attention_backward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  if (!supported(p) || !p.workspace) return int(cudaErrorInvalidValue);
  return p.dtype == MK_F32 ? backward<float>(p, as_stream(stream)) : backward<double>(p, as_stream(stream));
}

int attention_backward_backward(const AttentionParams& in, void* stream) {
  AttentionParams p = in;
  p.second = attention_cotangents(in);
  if (!supported(p) || !p.workspace) return int(cudaErrorInvalidValue);
  return p.dtype == MK_F32 ? backward_backward<float>(p, as_stream(stream))
                        : backward_backward<double>(p, as_stream(stream));
}

int attention_jvp(const AttentionParams& in, void* stream) {
  AttentionParams p = in;
  p.second = attention_tangents(in);
  if (!supported(p)) return int(cudaErrorInvalidValue);
  return p.dtype == MK_F32 ? jvp<float>(p, as_stream(stream)) : jvp<double>(p, as_stream(stream));
}

// Row statistics D, C, E ([B·H·Nq] each) in the element type; the same size for every pass, since
// the Java side asks once per call geometry (batch, heads, nq, d, dv).
int64_t attention_workspace(const AttentionParams& p, int) {
  if (is_half(p)) return tc_attention_workspace(p);
  const int64_t esize = p.dtype == MK_F32 ? 4 : 8;
  return esize * 3 * p.batch * p.heads * p.nq;
}

}  // namespace cuda
}  // namespace mk
