// Small dense tile routines for the fused CPU kernels (attention, linear attention). Inner
// loops run over the unit-stride output columns so they vectorise at the compiled ISA width;
// rows are blocked by 4 so each loaded B row feeds four accumulating rows.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "mk/isa_ns.h"

namespace mk {
namespace tile {
MK_ISA_BEGIN

// Columns per register block: 4 rows x kCols accumulators stay in vector registers across the
// whole reduction (AVX-512: 8 zmm for float; AVX2: 8 ymm).
template <class T>
constexpr int64_t block_cols() {
#ifdef MK_ISA_AVX512
  return 64 / int64_t(sizeof(T)) * 2;  // float 32, double 16
#else
  return 32 / int64_t(sizeof(T)) * 2;  // float 16, double 8
#endif
}

// c[r][j] (+)= alpha * sum_p A(r, p) * b[p][j] for r < R, j < N, p < P.
// A(r, p) = a[r * ars + p * acs]; b row-major with leading dim ldb; c row-major with ldc.
template <class T>
inline void gemm(int64_t R, int64_t N, int64_t P, T alpha, const T* a, int64_t ars, int64_t acs,
                 const T* b, int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  constexpr int64_t W = block_cols<T>();
  int64_t j0 = 0;
  for (; j0 + W <= N; j0 += W) {
    int64_t r = 0;
    for (; r + 4 <= R; r += 4) {
      T acc0[W], acc1[W], acc2[W], acc3[W];
      T* c0 = c + r * ldc + j0; T* c1 = c0 + ldc; T* c2 = c1 + ldc; T* c3 = c2 + ldc;
      for (int64_t j = 0; j < W; ++j) {
        acc0[j] = accumulate ? c0[j] : T(0);
        acc1[j] = accumulate ? c1[j] : T(0);
        acc2[j] = accumulate ? c2[j] : T(0);
        acc3[j] = accumulate ? c3[j] : T(0);
      }
      const T* a0 = a + r * ars; const T* a1 = a0 + ars; const T* a2 = a1 + ars; const T* a3 = a2 + ars;
      for (int64_t p = 0; p < P; ++p) {
        const T x0 = alpha * a0[p * acs], x1 = alpha * a1[p * acs], x2 = alpha * a2[p * acs],
                x3 = alpha * a3[p * acs];
        const T* bp = b + p * ldb + j0;
#pragma omp simd
        for (int64_t j = 0; j < W; ++j) {
          const T bj = bp[j];
          acc0[j] += x0 * bj;
          acc1[j] += x1 * bj;
          acc2[j] += x2 * bj;
          acc3[j] += x3 * bj;
        }
      }
      for (int64_t j = 0; j < W; ++j) {
        c0[j] = acc0[j];
        c1[j] = acc1[j];
        c2[j] = acc2[j];
        c3[j] = acc3[j];
      }
    }
    for (; r < R; ++r) {
      T acc[W];
      T* cr = c + r * ldc + j0;
      for (int64_t j = 0; j < W; ++j) acc[j] = accumulate ? cr[j] : T(0);
      const T* ar = a + r * ars;
      for (int64_t p = 0; p < P; ++p) {
        const T x = alpha * ar[p * acs];
        const T* bp = b + p * ldb + j0;
#pragma omp simd
        for (int64_t j = 0; j < W; ++j) acc[j] += x * bp[j];
      }
      for (int64_t j = 0; j < W; ++j) cr[j] = acc[j];
    }
  }
  if (j0 == N) return;
  // remaining columns (< W)
  const int64_t n = N - j0;
  for (int64_t r = 0; r < R; ++r) {
    T* cr = c + r * ldc + j0;
    if (!accumulate)
      for (int64_t j = 0; j < n; ++j) cr[j] = T(0);
    const T* ar = a + r * ars;
    for (int64_t p = 0; p < P; ++p) {
      const T x = alpha * ar[p * acs];
      const T* bp = b + p * ldb + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) cr[j] += x * bp[j];
    }
  }
}

// x[i] = exp(x[i]) in place, vectorisable: exp(x) = 2^k e^r with k = round(x / ln 2) and
// |r| <= ln 2 / 2 (Cody-Waite split), e^r by its Taylor polynomial (degree 7 for float, 13 for
// double: truncation below half an ulp). -inf and underflow give 0.
template <class T>
inline void exp_inplace(T* x, int64_t n) {
  constexpr bool f32 = sizeof(T) == 4;
  const T lo = f32 ? T(-87.3) : T(-708.3);
  const T hi = f32 ? T(88.3) : T(709.0);
  // adding and subtracting 1.5·2^mantissa rounds to the nearest integer (vectorises; no fast-math)
  const T shifter = f32 ? T(12582912.0) : T(6755399441055744.0);
  const T log2e = T(1.4426950408889634);
  const T ln2hi = f32 ? T(0.693359375) : T(6.93147180369123816490e-01);
  const T ln2lo = f32 ? T(-2.12194440e-4) : T(1.90821492927058770002e-10);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i];
    const bool under = !(v >= lo);  // also -inf and NaN-free masked entries
    v = v > hi ? hi : (under ? T(0) : v);
    const T k = (v * log2e + shifter) - shifter;
    const T r = (v - k * ln2hi) - k * ln2lo;
    // Horner over 1/n!, n = deg..0
    T poly = f32 ? T(1.0 / 5040) : T(1.0 / 6227020800.0);
    const int deg = f32 ? 7 : 13;
    T inv_fact = poly;
    for (int m = deg; m >= 1; --m) {
      inv_fact *= T(m);            // 1/(m-1)!
      poly = poly * r + inv_fact;
    }
    // 2^k through the exponent bits
    T scale;
    if (f32) {
      const int32_t bits = (int32_t(k) + 127) << 23;
      std::memcpy(&scale, &bits, sizeof scale);
    } else {
      const int64_t bits = (int64_t(k) + 1023) << 52;
      std::memcpy(&scale, &bits, sizeof scale);
    }
    x[i] = under ? T(0) : poly * scale;
  }
}

// dst[c][r] = src[r][c] for r < rows, c < cols.
template <class T>
inline void transpose(int64_t rows, int64_t cols, const T* src, int64_t lds, T* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r)
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
