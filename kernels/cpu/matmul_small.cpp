// Products with short output rows that BLAS runs far below the memory rate (MK_MULTI_ISA:
// compiled for AVX2 and for AVX-512; the AVX2 build also holds the dispatcher). Three shapes
// (mk/matmul_small.h decides; native/src/dense.cpp sends them here instead of to BLAS): batches of
// tiny matrices (see batched() below), and two with kSmallMinN <= n <= kSmallN output columns and batch 1:
//
//   tall:  k <= kSmallK. C = A B over many rows m: the projections of a small model applied to a
//          batch folded into the rows ([1024 * 11, 11] x [11, 11] in the in-context demo: OpenBLAS
//          took 160 us, 17 GFLOP/s, packing and edge handling for an 11-wide output). B is packed
//          row-major once (k * n <= kSmallK * kSmallN elements, on the stack); blocks of kRowBlock
//          rows of A run tile::gemm on it (register blocks over the rows, one masked vector for
//          columns past the last whole one), split over the threads.
//   long:  m <= kSmallN and k > kSmallK. C = A B with a small output and a long reduction: the
//          weight gradient of such a projection, [11, 11264] x [11264, 11] (OpenBLAS: 330 us on
//          one thread). The reduction is cut into parts of kPart steps (a function of k alone),
//          one partial product per part, summed in part order: the same bits for every thread
//          count.
//
// Every output element is the sum over p in ascending order (within a part for the long form) by
// FMA, whatever its row or column block: the results do not depend on the blocking either.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "mk/cpu_parallel.h"
#include "mk/cpu_tile.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"
#include "mk/matmul_small.h"

namespace mk {
namespace cpu {

namespace MK_ISA_NS {
namespace {

constexpr int64_t kRowBlock = 192;  // rows of A per parallel iteration: 16 register blocks of 12, 32 of 6
constexpr int64_t kPart = 1024;     // reduction steps per partial product of the long form

// b (k x n at strides rs, cs) into dst, row-major
template <class T>
void pack(int64_t k, int64_t n, const T* b, int64_t rs, int64_t cs, T* dst) {
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j) dst[p * n + j] = b[p * rs + j * cs];
}

template <class T>
void tall(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
          int64_t b_cs, T* c) {
  alignas(64) T bp[kSmallK * kSmallN];
  pack(k, n, b, b_rs, b_cs, bp);
  const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
  parallel_for(blocks, parallel_worth_fma(m * n * k), [&](int64_t blk) {
    const int64_t r0 = blk * kRowBlock, rows = std::min(kRowBlock, m - r0);
    tile::gemm<T>(rows, n, k, T(1), a + r0 * a_rs, a_rs, a_cs, bp, n, c + r0 * n, n, false);
  });
}

template <class T>
void long_reduction(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                    int64_t b_rs, int64_t b_cs, T* c) {
  const int64_t parts = (k + kPart - 1) / kPart;
  const int64_t mn = m * n;
  std::vector<T> partial(size_t(parts * mn));
  parallel_for(parts, parallel_worth_fma(m * n * k), [&](int64_t t) {
    const int64_t p0 = t * kPart, len = std::min(kPart, k - p0);
    const T* bt = b + p0 * b_rs;
    int64_t ldb = b_rs;
    std::vector<T> packed;
    if (b_cs != 1) {  // a B without unit column stride: this part packed row-major
      packed.resize(size_t(len * n));
      pack(len, n, bt, b_rs, b_cs, packed.data());
      bt = packed.data();
      ldb = n;
    }
    tile::gemm<T>(m, n, len, T(1), a + p0 * a_cs, a_rs, a_cs, bt, ldb, partial.data() + t * mn, n, false);
  });
  std::memcpy(c, partial.data(), sizeof(T) * size_t(mn));
  for (int64_t t = 1; t < parts; ++t) {
    const T* pt = partial.data() + t * mn;
#pragma omp simd
    for (int64_t i = 0; i < mn; ++i) c[i] += pt[i];
  }
}

// Many tiny matrices (batch > 1, m n k <= kTinyBatch): one matrix per parallel iteration, each a
// tile::gemm, its B packed row-major first (into the calling thread's slice of one buffer owned
// by the call) unless its rows are contiguous. The axpy loop this replaced (matmul_naive_t) added
// the same products in the same order by FMA: the same bits.
template <class T>
void batched(int64_t batch, int64_t m, int64_t n, int64_t k, const T* a, int64_t a_bs, int64_t a_rs, int64_t a_cs,
             const T* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, T* c, int64_t c_bs) {
  const bool fork = parallel_worth_fma(batch * m * n * k);
  const bool packs = b_cs != 1 && n > 1;
  std::vector<T> packed(packs ? size_t((fork ? omp_get_max_threads() : 1) * k * n) : 0);
  parallel_for(batch, fork, [&](int64_t bb) {
    const T* bm = b + bb * b_bs;
    int64_t ldb = b_rs;
    if (packs) {
      T* mine = packed.data() + int64_t(omp_get_thread_num()) * k * n;
      pack(k, n, bm, b_rs, b_cs, mine);
      bm = mine;
      ldb = n;
    }
    tile::gemm<T>(m, n, k, T(1), a + bb * a_bs, a_rs, a_cs, bm, ldb, c + bb * c_bs, n, false);
  });
}

template <class T>
void run(int64_t batch, int64_t m, int64_t n, int64_t k, const T* a, int64_t a_bs, int64_t a_rs, int64_t a_cs,
         const T* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, T* c, int64_t c_bs) {
  if (batch > 1) batched(batch, m, n, k, a, a_bs, a_rs, a_cs, b, b_bs, b_rs, b_cs, c, c_bs);
  else if (k <= kSmallK) tall(m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c);
  else long_reduction(m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c);
}

}  // namespace

int matmul_small(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a, int64_t a_bs,
                 int64_t a_rs, int64_t a_cs, const void* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, void* c,
                 int64_t c_bs) {
  if (dtype == MK_F32)
    run(batch, m, n, k, static_cast<const float*>(a), a_bs, a_rs, a_cs, static_cast<const float*>(b), b_bs, b_rs,
        b_cs, static_cast<float*>(c), c_bs);
  else if (dtype == MK_F64)
    run(batch, m, n, k, static_cast<const double*>(a), a_bs, a_rs, a_cs, static_cast<const double*>(b), b_bs, b_rs,
        b_cs, static_cast<double*>(c), c_bs);
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) ------------------------------------------------------
namespace avx512 {
int matmul_small(int, int64_t, int64_t, int64_t, int64_t, const void*, int64_t, int64_t, int64_t, const void*,
                 int64_t, int64_t, int64_t, void*, int64_t);
}  // namespace avx512

int matmul_small(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a, int64_t a_bs,
                 int64_t a_rs, int64_t a_cs, const void* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, void* c,
                 int64_t c_bs) {
  if (isa_level() >= 3)
    return avx512::matmul_small(dtype, batch, m, n, k, a, a_bs, a_rs, a_cs, b, b_bs, b_rs, b_cs, c, c_bs);
  return avx2::matmul_small(dtype, batch, m, n, k, a, a_bs, a_rs, a_cs, b, b_bs, b_rs, b_cs, c, c_bs);
}
#endif

}  // namespace cpu
}  // namespace mk
