// CBLAS found at run time in an already loaded library (the bytedeco OpenBLAS preset), so the
// native library neither links nor bundles a BLAS of its own.
#pragma once
#include <cstdint>

namespace mk {
namespace native {

enum CblasOrder { CblasRowMajor = 101 };
enum CblasTranspose { CblasNoTrans = 111, CblasTrans = 112 };

using sgemm_fn = void (*)(int order, int ta, int tb, int m, int n, int k, float alpha,
                          const float* a, int lda, const float* b, int ldb, float beta, float* c,
                          int ldc);
using dgemm_fn = void (*)(int order, int ta, int tb, int m, int n, int k, double alpha,
                          const double* a, int lda, const double* b, int ldb, double beta,
                          double* c, int ldc);

int attach_blas(const char* soname);
const char* blas_info();
bool blas_attached();
sgemm_fn blas_sgemm();
dgemm_fn blas_dgemm();

// cuBLAS, found at run time the same way (cublas.cpp).
int attach_cublas(const char* soname);
bool cublas_attached();
// C = A B on CUDA through cuBLAS when it can (F32/F64, a unit stride on one side of each operand,
// sizes within int); *used says whether it did. A cuBLAS error is returned as a status.
int cublas_matmul(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a, int64_t a_bs,
                  int64_t a_rs, int64_t a_cs, const void* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, void* c,
                  int64_t c_bs, void* stream, bool* used);

}  // namespace native
}  // namespace mk
