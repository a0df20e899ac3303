// Which CPU matmuls skip BLAS for kernels/cpu/matmul_small.cpp: batches of tiny matrices (batch > 1,
// m n k <= kTinyBatch: one BLAS call per matrix costs more than the product), and single products
// with output rows of kSmallMinN to kSmallN columns and either a short reduction (k <= kSmallK: "tall")
// or a small output with a long one (m <= kSmallN: "long"). Shared by native/src/dense.cpp (the
// choice) and the kernel (its stack buffer for the packed B of the tall form).
#pragma once
#include <cstdint>

namespace mk {
namespace cpu {

// Output columns: at most four AVX-512 / eight AVX2 F32 vectors (one AVX-512 strip at 64).
constexpr int64_t kSmallN = 64;
// Reduction of the tall form; its packed B (kSmallK x kSmallN) is on the caller's stack, 16 KB of
// float, 32 KB of double. The limits were 32 until 2026-12-07; at 33-64 the tile products measured
// 1.2-2x faster than OpenBLAS (F32: [4019, 64] x [64, 64] 361 -> 296 us, [64, 4019] x [4019, 64]
// 497 -> 296 us, [40, 784] x [784, 64] 64 -> 41 us; F64 1.25-1.8x), except for the smallest,
// which lose about a microsecond ([200, 33] x [33, 33] F32 7.8 against 6.6 us, [64, 40] x [40, 10]
// F64 2.8 against 1.6 us, A transposed).
constexpr int64_t kSmallK = 64;
constexpr int64_t kTinyBatch = 32768;  // m n k of each matrix of a batch
// Fewer output columns leave most lanes of the one masked register idle, and OpenBLAS measured as
// fast or faster there (2026-12-07, F32: [11264, 11] x [11, 4] 62 us against 84 us, [20000, 11] x
// [11, 1] 133 against 159, [8, 20000] x [20000, 3] 63-72 against 75-80); at n = 11 it took 166 us
// against 68.
constexpr int64_t kSmallMinN = 9;

inline bool matmul_small_fits(int64_t batch, int64_t m, int64_t n, int64_t k) {
  if (batch > 1) return m * n * k <= kTinyBatch;
  return batch == 1 && n >= kSmallMinN && n <= kSmallN && (k <= kSmallK || m <= kSmallN);
}

// C[i] (m x n, row-major, at c + i c_bs) = A[i] B[i] for i < batch, A[i](r, p) = a[i a_bs + r a_rs +
// p a_cs], B[i](p, j) = b[i b_bs + p b_rs + j b_cs]; F32 or F64 (else KERNEL_UNSUPPORTED); the shape
// must satisfy matmul_small_fits.
int matmul_small(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a, int64_t a_bs,
                 int64_t a_rs, int64_t a_cs, const void* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, void* c,
                 int64_t c_bs);

}  // namespace cpu
}  // namespace mk
