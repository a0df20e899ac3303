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
bool blas_attached();
sgemm_fn blas_sgemm();
dgemm_fn blas_dgemm();

}  // namespace native
}  // namespace mk
