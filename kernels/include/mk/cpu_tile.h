// Small dense tile routines for the fused CPU kernels (attention, linear attention). Inner
// loops run over the unit-stride output columns so they vectorise at the compiled ISA width;
// rows are blocked by kGemmRows so each loaded B row feeds that many accumulating rows.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <immintrin.h>

#include "mk/isa_ns.h"

namespace mk {
namespace tile {
MK_ISA_BEGIN

// One SIMD register of T at the compiled ISA (AVX-512 or AVX2 + FMA).
template <class T>
struct Vec;
#ifdef MK_ISA_AVX512
template <>
struct Vec<float> {
  using R = __m512;
  static constexpr int64_t W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  // the first n < W lanes
  using M = __mmask16;
  static M mask(int64_t n) { return M((1u << n) - 1u); }
  static R load(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, M m, R v) { _mm512_mask_storeu_ps(p, m, v); }
};
template <>
struct Vec<double> {
  using R = __m512d;
  static constexpr int64_t W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R set1(double x) { return _mm512_set1_pd(x); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  using M = __mmask8;
  static M mask(int64_t n) { return M((1u << n) - 1u); }
  static R load(const double* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, M m, R v) { _mm512_mask_storeu_pd(p, m, v); }
};
// 6 rows x 4 vectors (64 floats, a whole key tile or head-dim row at 64) = 24 accumulators +
// 4 B vectors + the broadcasts (embedded {1to16} in the FMAs) of the 32 zmm registers: per step
// 4 B loads and 6 broadcasts feed 24 FMAs, against 2 + 8 for 16 in the 8 x 2 block it replaced
// (~57 % of the zmm FMA peak in the kernels; benchmarks/results/cpu-ab-2026-12-04-avx512-attention.md),
// and a 64-column C is one strip, so each A row streams through L1 once instead of twice.
// Narrower strips (the last 1-3 vectors of the columns) take 12 rows (12 x 2 = 24 accumulators).
constexpr int64_t kGemmVecs = 4;
constexpr int64_t kGemmRows = 6;
constexpr int64_t kGemmRowsNarrow = 12;
constexpr int64_t kGemmDepth = 64;  // reduction chunk (see the AVX2 one)
#else
template <>
struct Vec<float> {
  using R = __m256;
  static constexpr int64_t W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  // the first n < W lanes (maskload / maskstore: the other lanes are neither read nor written)
  using M = __m256i;
  static M mask(int64_t n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static R load(const float* p, M m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, M m, R v) { _mm256_maskstore_ps(p, m, v); }
};
template <>
struct Vec<double> {
  using R = __m256d;
  static constexpr int64_t W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R set1(double x) { return _mm256_set1_pd(x); }
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  using M = __m256i;
  static M mask(int64_t n) { return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)); }
  static R load(const double* p, M m) { return _mm256_maskload_pd(p, m); }
  static void store(double* p, M m, R v) { _mm256_maskstore_pd(p, m, v); }
};
// 6 rows x 2 vectors = 12 accumulators, + 2 B vectors + 1 broadcast = 15 of the 16 ymm
// registers. An FMA has 4 cycles of latency on 2 ports, so at least 8 independent accumulators
// are needed to issue one per port per cycle; the 4 x 2 block (8) had no slack and measured
// ~70 % of the ymm FMA peak (benchmarks/results/cpu-ab-2026-12-04-avx2-attention.md).
constexpr int64_t kGemmVecs = 2;  // vectors per strip of C (the widest register block)
constexpr int64_t kGemmRows = 6;
constexpr int64_t kGemmRowsNarrow = 6;  // rows of a block of a narrower strip
// Reduction chunk of a long product (linear attention's kᵀ v runs over all N keys): 64 rows of
// A and B (16 KB each at 64 columns) stay in the 48 KB L1 while every register block uses them.
constexpr int64_t kGemmDepth = 64;
#endif
// Products with longer reductions than this run chunked (linear attention's kᵀ v over N keys).
// Not the attention tiles (P = head dim <= 256, or a 64-key tile): at D = 128 the chunked score
// product measured 2.5 % slower in the forward (A/B, 2026-12-04), its operands being in L1 anyway.
constexpr int64_t kGemmChunkAbove = 256;
// Elements of the park buffer of a chunked product, on gemm_chunked's stack (16 KB of float, 32
// KB of double: the caller may be a JVM thread, 1 MB of stack by default): a c of up to 64 x 64
// (linear attention's state at head dims 64) runs in chunks, a larger one in one pass.
constexpr int64_t kGemmParkElements = 64 * 64;

// The register block: MR rows x NV vectors of C accumulate in registers over the reduction;
// each step loads NV vectors of a B row and broadcasts MR entries of A. kParked (the chunks of a
// long reduction, see gemm_chunked): the accumulators start at zero (from == nullptr) or at the
// MR x NV vectors the previous chunk parked at `from`, and end in c (to == nullptr) or parked at
// `to` for the next chunk. Parked values are the raw sums, so a reduction run in chunks does the
// same FMAs in the same order as one pass: the same bits.
template <class T, int64_t MR, int64_t NV, bool kParked>
inline void gemm_block(int64_t P, T alpha, const T* a, int64_t ars, int64_t acs, const T* b, int64_t ldb,
                       T* c, int64_t ldc, bool accumulate, const T* from, T* to) {
  using V = Vec<T>;
  typename V::R acc[MR][NV];
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v)
      acc[i][v] = kParked && from ? V::load(from + (i * NV + v) * V::W) : V::zero();
  for (int64_t p = 0; p < P; ++p) {
    typename V::R bv[NV];
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) bv[v] = V::load(b + p * ldb + v * V::W);
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) {
      const typename V::R x = V::set1(a[i * ars + p * acs]);
#pragma GCC unroll 4
      for (int64_t v = 0; v < NV; ++v) acc[i][v] = V::fma(x, bv[v], acc[i][v]);
    }
  }
  if (kParked && to) {
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int64_t v = 0; v < NV; ++v) V::store(to + (i * NV + v) * V::W, acc[i][v]);
    return;
  }
  const typename V::R al = V::set1(alpha);
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) {
      T* cp = c + i * ldc + v * V::W;
      V::store(cp, accumulate ? V::fma(al, acc[i][v], V::load(cp)) : V::mul(al, acc[i][v]));
    }
}

// Rows of the register block of a strip of NV vectors.
template <int64_t NV>
constexpr int64_t gemm_rows() {
  return NV == kGemmVecs ? kGemmRows : kGemmRowsNarrow;
}

// The last rows (fewer than gemm_rows<NV>()) of a column block, as one block of that many rows: one
// row at a time would leave NV accumulators, far too few to cover the FMA latency. Every output
// element sees the same operations in the same order whatever its block, so the blocking does not
// change results.
template <class T, int64_t NV, bool kParked, int64_t M = gemm_rows<NV>() - 1>
inline void gemm_tail(int64_t rows, int64_t P, T alpha, const T* a, int64_t ars, int64_t acs, const T* b,
                      int64_t ldb, T* c, int64_t ldc, bool accumulate, const T* from, T* to) {
  if constexpr (M > 0) {
    if (rows == M) gemm_block<T, M, NV, kParked>(P, alpha, a, ars, acs, b, ldb, c, ldc, accumulate, from, to);
    else gemm_tail<T, NV, kParked, M - 1>(rows, P, alpha, a, ars, acs, b, ldb, c, ldc, accumulate, from, to);
  }
}

// The columns of c in whole vectors (N1 = N rounded down to W) over the steps [p0, p0 + pc) of
// the reduction, in strips of kGemmVecs (then 2, then 1) vectors; kParked: accumulators parked strip after strip
// in `park` (R x N1 elements) unless this is the first / last chunk.
template <class T, bool kParked>
inline void gemm_steps(int64_t R, int64_t N1, int64_t p0, int64_t pc, int64_t P, T alpha, const T* a,
                       int64_t ars, int64_t acs, const T* b, int64_t ldb, T* c, int64_t ldc, bool accumulate,
                       T* park) {
  constexpr int64_t W = Vec<T>::W;
  a += p0 * acs;
  b += p0 * ldb;
  const bool first = p0 == 0, last = p0 + pc >= P;
  auto strip = [&](auto nv, int64_t j0) {
    constexpr int64_t NV = decltype(nv)::value, S = NV * W;  // parked elements per row
    constexpr int64_t MR = gemm_rows<NV>();
    T* pk = kParked ? park + R * j0 : nullptr;
    const T* from = kParked && !first ? pk : nullptr;
    T* to = kParked && !last ? pk : nullptr;
    int64_t r = 0;
    for (; r + MR <= R; r += MR)
      gemm_block<T, MR, NV, kParked>(pc, alpha, a + r * ars, ars, acs, b + j0, ldb, c + r * ldc + j0, ldc,
                                     accumulate, from ? from + r * S : nullptr, to ? to + r * S : nullptr);
    gemm_tail<T, NV, kParked>(R - r, pc, alpha, a + r * ars, ars, acs, b + j0, ldb, c + r * ldc + j0, ldc,
                              accumulate, from ? from + r * S : nullptr, to ? to + r * S : nullptr);
  };
  int64_t j0 = 0;
  if constexpr (kGemmVecs > 2)
    for (; j0 + kGemmVecs * W <= N1; j0 += kGemmVecs * W) strip(std::integral_constant<int64_t, kGemmVecs>(), j0);
  for (; j0 + 2 * W <= N1; j0 += 2 * W) strip(std::integral_constant<int64_t, 2>(), j0);
  for (; j0 < N1; j0 += W) strip(std::integral_constant<int64_t, 1>(), j0);
}

// A long reduction (P > kGemmChunkAbove) in chunks of kGemmDepth steps, each chunk over all of c, the
// raw accumulators parked in between (same bits as one pass, see gemm_block): a chunk's rows of
// A and B stay in L1 while every register block uses them, where one pass per block streamed
// its whole B strip and A rows through L1 again for each block.
template <class T>
__attribute__((noinline)) void gemm_chunked(int64_t R, int64_t N1, int64_t P, T alpha, const T* a, int64_t ars,
                                            int64_t acs, const T* b, int64_t ldb, T* c, int64_t ldc,
                                            bool accumulate) {
  alignas(64) T park[kGemmParkElements];
  for (int64_t p0 = 0; p0 < P; p0 += kGemmDepth)
    gemm_steps<T, true>(R, N1, p0, std::min(kGemmDepth, P - p0), P, alpha, a, ars, acs, b, ldb, c, ldc,
                        accumulate, park);
}

// The register block of the last n < W columns: MR rows x one masked vector (lanes past n are
// neither loaded nor stored), the steps of gemm_block's one-vector strip. Small head dims (the
// in-context demo's 11) are all tail: the element-by-element loop this replaced ran them scalar.
template <class T, int64_t MR>
inline void gemm_block_masked(int64_t P, T alpha, const T* a, int64_t ars, int64_t acs, const T* b, int64_t ldb,
                              T* c, int64_t ldc, bool accumulate, typename Vec<T>::M m) {
  using V = Vec<T>;
  typename V::R acc[MR];
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) acc[i] = V::zero();
  for (int64_t p = 0; p < P; ++p) {
    const typename V::R bv = V::load(b + p * ldb, m);
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) acc[i] = V::fma(V::set1(a[i * ars + p * acs]), bv, acc[i]);
  }
  const typename V::R al = V::set1(alpha);
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) {
    T* cp = c + i * ldc;
    V::store(cp, m, accumulate ? V::fma(al, acc[i], V::load(cp, m)) : V::mul(al, acc[i]));
  }
}

template <class T, int64_t M = kGemmRowsNarrow - 1>
inline void gemm_tail_masked(int64_t rows, int64_t P, T alpha, const T* a, int64_t ars, int64_t acs, const T* b,
                             int64_t ldb, T* c, int64_t ldc, bool accumulate, typename Vec<T>::M m) {
  if constexpr (M > 0) {
    if (rows == M) gemm_block_masked<T, M>(P, alpha, a, ars, acs, b, ldb, c, ldc, accumulate, m);
    else gemm_tail_masked<T, M - 1>(rows, P, alpha, a, ars, acs, b, ldb, c, ldc, accumulate, m);
  }
}

// c[r][j] (+)= alpha * sum_p A(r, p) * b[p][j] for j < n < W (gemm's notation).
template <class T>
inline void gemm_masked(int64_t R, int64_t n, int64_t P, T alpha, const T* a, int64_t ars, int64_t acs,
                        const T* b, int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  constexpr int64_t MR = kGemmRowsNarrow;
  const typename Vec<T>::M m = Vec<T>::mask(n);
  int64_t r = 0;
  for (; r + MR <= R; r += MR)
    gemm_block_masked<T, MR>(P, alpha, a + r * ars, ars, acs, b, ldb, c + r * ldc, ldc, accumulate, m);
  gemm_tail_masked<T>(R - r, P, alpha, a + r * ars, ars, acs, b, ldb, c + r * ldc, ldc, accumulate, m);
}

// c[r][j] (+)= alpha * sum_p A(r, p) * b[p][j] for r < R, j < N, p < P.
// A(r, p) = a[r * ars + p * acs]; b row-major with leading dim ldb; c row-major with ldc.
template <class T>
inline void gemm(int64_t R, int64_t N, int64_t P, T alpha, const T* a, int64_t ars, int64_t acs,
                 const T* b, int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  constexpr int64_t W = Vec<T>::W;
  const int64_t N1 = N / W * W;
  if (P > kGemmChunkAbove && R * N1 <= kGemmParkElements)
    gemm_chunked<T>(R, N1, P, alpha, a, ars, acs, b, ldb, c, ldc, accumulate);
  else
    gemm_steps<T, false>(R, N1, 0, P, P, alpha, a, ars, acs, b, ldb, c, ldc, accumulate, nullptr);
  if (N1 == N) return;
  // the remaining columns (< W) as one masked strip, the whole reduction in one pass (the same
  // FMAs in the same order as the whole vectors': a column's bits do not depend on its position)
  gemm_masked<T>(R, N - N1, P, alpha, a, ars, acs, b + N1, ldb, c + N1, ldc, accumulate);
}

// One 8 x 8 float (4 x 4 double) block of a transpose in ymm registers: dst[c][r] = src[r][c].
// AVX2 in both builds (the AVX-512 one has it too); a transpose only moves bits.
inline void transpose_block(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // rows i, i+1: columns 0 1 | 4 5, interleaved
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // columns 2 3 | 6 7
  }
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {  // four rows' column c in each 128-bit half (c | c + 4)
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + c * ldd, _mm256_permute2f128_ps(r[c], r[c + 4], 0x20));
    _mm256_storeu_ps(dst + (c + 4) * ldd, _mm256_permute2f128_ps(r[c], r[c + 4], 0x31));
  }
}
inline void transpose_block(const double* src, int64_t lds, double* dst, int64_t ldd) {
  __m256d r[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) r[i] = _mm256_loadu_pd(src + i * lds);
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);  // columns 0 | 2, 1 | 3
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

// dst[c][r] = src[r][c] for r < rows, c < cols: in ymm-sized square blocks (the element-wise loop
// stored one scalar per element with a stride), scalar at the edges.
template <class T>
inline void transpose(int64_t rows, int64_t cols, const T* src, int64_t lds, T* dst, int64_t ldd) {
  constexpr int64_t B = 32 / sizeof(T);  // the block's side: one ymm row
  int64_t r = 0;
  for (; r + B <= rows; r += B) {
    int64_t c = 0;
    for (; c + B <= cols; c += B) transpose_block(src + r * lds + c, lds, dst + c * ldd + r, ldd);
    for (; c < cols; ++c)
      for (int64_t i = 0; i < B; ++i) dst[c * ldd + r + i] = src[(r + i) * lds + c];
  }
  for (; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

template <class T>
inline T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

MK_ISA_END
}  // namespace tile
}  // namespace mk
