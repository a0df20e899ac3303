// Which CPU matmuls skip BLAS for kernels/cpu/matmul_small.cpp: output rows of at most kSmallN
// columns, one matrix, and either a short reduction (k <= kSmallK: "tall") or a small output with
// a long one (m <= kSmallN: "long"). Shared by native/src/dense.cpp (the choice) and the kernel
// (its stack buffer for the packed B of the tall form).
#pragma once
#include <cstdint>

namespace mk {
namespace cpu {

constexpr int64_t kSmallN = 32;  // output columns: at most two AVX-512 / four AVX2 F32 vectors
constexpr int64_t kSmallK = 32;  // reduction of the tall form (its packed B: kSmallK x kSmallN)

inline bool matmul_small_fits(int64_t batch, int64_t m, int64_t n, int64_t k) {
  return batch == 1 && n <= kSmallN && (k <= kSmallK || m <= kSmallN);
}

// C (m x n, row-major) = A B, A(r, p) = a[r a_rs + p a_cs], B(p, j) = b[p b_rs + j b_cs]; F32 or
// F64 (else KERNEL_UNSUPPORTED); the shape must satisfy matmul_small_fits(1, m, n, k).
int matmul_small(int dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t a_rs, int64_t a_cs,
                 const void* b, int64_t b_rs, int64_t b_cs, void* c);

}  // namespace cpu
}  // namespace mk
