// The CPU walk over a collapsed StridedShape (mk/strided.h), row by row of its last dim, for the
// strided elementwise kernels (copy, where, unary, binary).
//
// Row order is right while every operand is contiguous (or broadcast) along the last dim. An
// operand that is contiguous along another dim instead (a transposed view: x.mT(), a permute)
// then costs a cache line per element: on the 2-core VM (2026-12-06) a [4019, 4019] F32
// x.mT().contiguous() took 80 ms against 7.8 ms for a contiguous copy, and y.add(x.mT()) as long.
// For such shapes the walk goes in tiles of kTileRows rows of that dim by kTileCols columns. The
// transposed inputs of 4- and 8-byte types are first transposed into a small buffer per tile
// (8 x 8 / 4 x 4 blocks in AVX2 registers, whole cache lines read and written), and the rows then
// read the buffer with unit stride; other types, and a transposed destination of a copy, are
// walked in the same tiles element by element (the tile's lines stay in L1 from one row to the
// next). Each element is still computed once from the same operand values: results are
// unchanged, bit for bit (the kernels are elementwise: no order of summation to keep).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "mk/cpu_parallel.h"
#include "mk/isa_ns.h"
#include "mk/strided.h"

namespace mk {
namespace cpu {

constexpr int64_t kTileRows = 32;
constexpr int64_t kTileCols = 64;

MK_ISA_BEGIN

// dst[i * ldd + c] = src[c * lds + i] for i < 8, c < 8 (4-byte elements).
inline void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8];
  for (int c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(src + c * lds);
  for (int c = 0; c < 8; c += 2) {
    t[c] = _mm256_unpacklo_ps(r[c], r[c + 1]);
    t[c + 1] = _mm256_unpackhi_ps(r[c], r[c + 1]);
  }
  for (int c = 0; c < 8; c += 4) {
    r[c] = _mm256_shuffle_ps(t[c], t[c + 2], 0x44);
    r[c + 1] = _mm256_shuffle_ps(t[c], t[c + 2], 0xEE);
    r[c + 2] = _mm256_shuffle_ps(t[c + 1], t[c + 3], 0x44);
    r[c + 3] = _mm256_shuffle_ps(t[c + 1], t[c + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// dst[i * ldd + c] = src[c * lds + i] for i < 4, c < 4 (8-byte elements).
inline void transpose4x4(const double* src, int64_t lds, double* dst, int64_t ldd) {
  const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + lds);
  const __m256d r2 = _mm256_loadu_pd(src + 2 * lds), r3 = _mm256_loadu_pd(src + 3 * lds);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

// dst[i * ldd + c] = src[c * lds + i] for i < h, c < w: whole register blocks where they fit,
// element by element at the ragged edges. T of 4 or 8 bytes (bits moved, never converted).
template <class T>
inline void transpose_block(const T* src, int64_t lds, int64_t h, int64_t w, T* dst, int64_t ldd) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "4- or 8-byte elements");
  constexpr int64_t B = sizeof(T) == 4 ? 8 : 4;
  const int64_t hb = h - h % B, wb = w - w % B;
  for (int64_t i = 0; i < hb; i += B)
    for (int64_t c = 0; c < wb; c += B) {
      if constexpr (sizeof(T) == 4)
        transpose8x8(reinterpret_cast<const float*>(src + c * lds + i), lds,
                     reinterpret_cast<float*>(dst + i * ldd + c), ldd);
      else
        transpose4x4(reinterpret_cast<const double*>(src + c * lds + i), lds,
                     reinterpret_cast<double*>(dst + i * ldd + c), ldd);
    }
  for (int64_t c = 0; c < w; ++c) {
    const int64_t from = c < wb ? hb : 0;  // the rows the blocks left in this column
    for (int64_t i = from; i < h; ++i) dst[i * ldd + c] = src[c * lds + i];
  }
}

// row(p, st, out, len) for every row segment of a collapsed shape of rank >= 2 whose operands
// start at base[0..n): p[q] points at operand q's first element of the segment and st[q] is its
// stride along the segment, out is that element's index in a contiguous output of the shape
// (s.out_strides), len the segment's length. With `stage_first`, operand 0 (then only read) is
// handed over through the transposing buffer when it is the transposed one (st[0] == 1 then). Whole
// rows in row order, split over the threads when `fork`; with a transposed operand
// (transposed_dim, mk/strided.h), tiles as above, split over the threads tile by tile.
template <class T, class Row>
inline void for_each_row(const StridedShape& s, int n_operands, bool fork, const T* const* base,
                         bool stage_first, Row&& row) {
  const int last = s.rank - 1;
  const int64_t cols = s.shape[last];
  const int k = transposed_dim(s, n_operands);
  if (k < 0) {
    int64_t st[3];
    for (int q = 0; q < n_operands; ++q) st[q] = s.strides[q][last];
    parallel_for(s.numel / cols, fork, [&](int64_t r) {
      int64_t off[3];
      row_offsets(s, n_operands, r, off);
      const T* p[3];
      for (int q = 0; q < n_operands; ++q) p[q] = base[q] + off[q];
      row(p, st, r * cols, cols);
    });
    return;
  }
  bool staged = false;
  if constexpr (sizeof(T) == 4 || sizeof(T) == 8) staged = stage_first && transposed_along(s, 0, k);
  const int64_t height = s.shape[k];
  const int64_t blocks = (height + kTileRows - 1) / kTileRows;
  const int64_t chunks = (cols + kTileCols - 1) / kTileCols;
  const int64_t outer = s.numel / (height * cols);  // the other dims
  // one tile per iteration (not a block of tile rows: a [64, n] transpose has only two of those),
  // so that every thread gets work whatever the shape
  parallel_for(outer * blocks * chunks, fork, [&](int64_t t) {
    alignas(64) T buf[kTileRows * kTileCols];  // operand 0's tile (untouched unless staged)
    const int64_t c0 = (t % chunks) * kTileCols, len = std::min(kTileCols, cols - c0);
    const int64_t i0 = (t / chunks % blocks) * kTileRows, i1 = std::min(height, i0 + kTileRows);
    int64_t o = t / (chunks * blocks);
    int64_t off[3] = {0, 0, 0}, out_base = 0;
    for (int d = last - 1; d >= 0; --d) {
      if (d == k) continue;
      const int64_t i = o % s.shape[d];
      o /= s.shape[d];
      for (int q = 0; q < n_operands; ++q) off[q] += i * s.strides[q][d];
      out_base += i * s.out_strides[d];
    }
    int64_t st[3];
    for (int q = 0; q < n_operands; ++q) st[q] = s.strides[q][last];
    if constexpr (sizeof(T) == 4 || sizeof(T) == 8)
      if (staged) {
        transpose_block(base[0] + off[0] + i0 + c0 * st[0], st[0], i1 - i0, len, buf, kTileCols);
        st[0] = 1;
      }
    for (int64_t i = i0; i < i1; ++i) {
      const T* p[3];
      for (int q = 0; q < n_operands; ++q) p[q] = base[q] + off[q] + i * s.strides[q][k] + c0 * s.strides[q][last];
      if (staged) p[0] = buf + (i - i0) * kTileCols;
      row(p, st, out_base + i * s.out_strides[k] + c0, len);
    }
  });
}

MK_ISA_END

}  // namespace cpu
}  // namespace mk
