// A stand-in for libcublas.so.13 with the five entry points native/src/cublas.cpp looks up, for
// runtime_test.cpp: "device" pointers are host pointers, and the GEMM follows cuBLAS's documented
// column-major semantics (C = alpha op(A) op(B) + beta C, op N or T, leading dimensions, strided
// batches; C not read when beta = 0). It records the math mode, the stream and the calls, so the
// test can check the mapping of row-major strides to cuBLAS's arguments and the TF32 switch
// without a GPU.
#include <cstdint>

struct cublasContext {
  int math = 0;
  void* stream = nullptr;
};

namespace {
int g_calls = 0, g_last_math_at_call = -1;
void* g_last_stream = nullptr;

template <class T>
int gemm(cublasContext* h, int ta, int tb, int m, int n, int k, const T* alpha, const T* a, int lda, long long sa,
         const T* b, int ldb, long long sb, const T* beta, T* c, int ldc, long long sc, int batch) {
  if (!h || m < 0 || n < 0 || k < 0 || batch < 0) return 7;  // CUBLAS_STATUS_INVALID_VALUE
  if (lda < (ta == 0 ? m : k) || ldb < (tb == 0 ? k : n) || ldc < m) return 7;
  ++g_calls;
  g_last_math_at_call = h->math;
  g_last_stream = h->stream;
  for (int p = 0; p < batch; ++p)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        long double s = 0;
        for (int l = 0; l < k; ++l) {
          const T av = ta == 0 ? a[p * sa + i + int64_t(l) * lda] : a[p * sa + l + int64_t(i) * lda];
          const T bv = tb == 0 ? b[p * sb + l + int64_t(j) * ldb] : b[p * sb + j + int64_t(l) * ldb];
          s += (long double)av * bv;
        }
        T& out = c[p * sc + i + int64_t(j) * ldc];
        out = *beta == T(0) ? T(*alpha * s) : T(*alpha * s + *beta * out);
      }
  return 0;
}
}  // namespace

extern "C" {
int cublasCreate_v2(cublasContext** h) {
  *h = new cublasContext();
  return 0;
}
int cublasSetMathMode(cublasContext* h, int mode) {
  h->math = mode;
  return 0;
}
int cublasSetStream_v2(cublasContext* h, void* s) {
  h->stream = s;
  return 0;
}
int cublasSgemmStridedBatched(cublasContext* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* a,
                              int lda, long long sa, const float* b, int ldb, long long sb, const float* beta, float* c,
                              int ldc, long long sc, int batch) {
  return gemm(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}
int cublasDgemmStridedBatched(cublasContext* h, int ta, int tb, int m, int n, int k, const double* alpha,
                              const double* a, int lda, long long sa, const double* b, int ldb, long long sb,
                              const double* beta, double* c, int ldc, long long sc, int batch) {
  return gemm(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}
// for the test
int fake_cublas_calls() { return g_calls; }
int fake_cublas_math_at_last_call() { return g_last_math_at_call; }
void* fake_cublas_stream_at_last_call() { return g_last_stream; }
}
