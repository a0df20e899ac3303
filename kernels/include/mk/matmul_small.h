// Which CPU matmuls skip BLAS for kernels/cpu/matmul_small.cpp: batches of tiny matrices (batch > 1,
// m n k <= kTinyBatch: one BLAS call per matrix costs more than the product), and single products
// with output rows of kSmallMinN to kSmallN columns and either a short reduction (k <= kSmallK: "tall")
// or a small output with a long one (m <= kSmallN: "long"). Shared by native/src/dense.cpp (the
// choice) and the kernel (its stack buffer for the packed B of the tall form).
#pragma once
#include <cstdint>

namespace mk {
namespace cpu {

constexpr int64_t kSmallN = 32;  // output columns: at most two AVX-512 / four AVX2 F32 vectors
constexpr int64_t kSmallK = 32;  // reduction of the tall form (its packed B: kSmallK x kSmallN)
constexpr int64_t kTinyBatch = 32768;  // m n k of each matrix of a batch
// Fewer output columns leave most lanes of the one masked register idle, and OpenBLAS measured as
// fast or faster there (2026-12-07, F32: [11264, 11] x [11, 4] 62 us against 84 us, [20000, 11] x
// [11, 1] 133 against 159, [8, 20000] x [20000, 3] 63-72 against 75-80); at n = 11 it took 166 us
// against 68. Wider limits (n, k <= 64) won 1.2-1.8x at n >= 16 but were not adopted untested.
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
