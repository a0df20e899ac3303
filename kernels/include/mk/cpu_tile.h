// Small dense tile routines for the fused CPU kernels (attention, linear attention). Inner
// loops run over the unit-stride output columns so they vectorise at the compiled ISA width;
// rows are blocked by 4 so each loaded B row feeds four accumulating rows.
#pragma once
#include <cstdint>

namespace mk {
namespace tile {

// c[r][j] (+)= alpha * sum_p A(r, p) * b[p][j] for r < R, j < N, p < P.
// A(r, p) = a[r * ars + p * acs]; b row-major with leading dim ldb; c row-major with ldc.
template <class T>
inline void gemm(int64_t R, int64_t N, int64_t P, T alpha, const T* a, int64_t ars, int64_t acs,
                 const T* b, int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  if (!accumulate)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < N; ++j) c[r * ldc + j] = T(0);
  int64_t r = 0;
  for (; r + 4 <= R; r += 4) {
    T* c0 = c + r * ldc; T* c1 = c0 + ldc; T* c2 = c1 + ldc; T* c3 = c2 + ldc;
    const T* a0 = a + r * ars; const T* a1 = a0 + ars; const T* a2 = a1 + ars; const T* a3 = a2 + ars;
    for (int64_t p = 0; p < P; ++p) {
      const T x0 = alpha * a0[p * acs], x1 = alpha * a1[p * acs], x2 = alpha * a2[p * acs],
              x3 = alpha * a3[p * acs];
      const T* bp = b + p * ldb;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) {
        const T bj = bp[j];
        c0[j] += x0 * bj;
        c1[j] += x1 * bj;
        c2[j] += x2 * bj;
        c3[j] += x3 * bj;
      }
    }
  }
  for (; r < R; ++r) {
    T* cr = c + r * ldc;
    const T* ar = a + r * ars;
    for (int64_t p = 0; p < P; ++p) {
      const T x = alpha * ar[p * acs];
      const T* bp = b + p * ldb;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) cr[j] += x * bp[j];
    }
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

}  // namespace tile
}  // namespace mk
