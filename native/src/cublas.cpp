// cuBLAS behind the C ABI (issue 12: one owner per policy). Found at run time, like CBLAS: the
// library the JVM loaded through the bytedeco CUDA presets (or any libcublas.so.13 the dynamic
// loader finds) is opened by soname and its entry points looked up, so libmetakernels.so neither
// links nor needs CUDA to build. mk_dense_matmul_forward on CUDA calls it for F32/F64 operands
// with a unit stride on one side, and the built-in kernel otherwise or without cuBLAS. The one
// TF32 switch (mk_runtime_allow_tf32) decides the math mode per F32 call; the stream is the call's.
//
// The declarations below restate cublas_api.h (CUDA 13) for the few functions used: handles are
// `struct cublasContext*`, the enums int-sized (cublasOperation_t: N = 0, T = 1;
// cublasMath_t: DEFAULT = 0, TF32_TENSOR_OP = 3), status 0 = success, alpha/beta host pointers.
#include <dlfcn.h>

#include <algorithm>
#include <cinttypes>
#include <climits>
#include <mutex>

#include "common.h"

struct cublasContext;

namespace mk {
namespace native {
namespace {

using handle_t = cublasContext*;
using create_fn = int (*)(handle_t*);
using set_math_fn = int (*)(handle_t, int);
using set_stream_fn = int (*)(handle_t, void*);
using sgemm_sb_fn = int (*)(handle_t, int, int, int, int, int, const float*, const float*, int, long long, const float*,
                            int, long long, const float*, float*, int, long long, int);
using dgemm_sb_fn = int (*)(handle_t, int, int, int, int, int, const double*, const double*, int, long long,
                            const double*, int, long long, const double*, double*, int, long long, int);

constexpr int OP_N = 0, OP_T = 1, MATH_DEFAULT = 0, MATH_TF32 = 3;

struct Cublas {
  std::mutex mu;  // one handle for the process: math mode, stream and call stay together
  handle_t handle = nullptr;
  set_math_fn set_math = nullptr;
  set_stream_fn set_stream = nullptr;
  sgemm_sb_fn sgemm = nullptr;
  dgemm_sb_fn dgemm = nullptr;
  int math = MATH_DEFAULT;
};

Cublas& cublas() {
  static Cublas c;
  return c;
}

// A row-major [r, c] matrix with strides (rs, cs) as column-major cuBLAS sees it (its transpose):
// {op, ld}, or false without a unit stride on either side.
bool operand(int64_t r, int64_t c, int64_t rs, int64_t cs, int* op, int64_t* ld) {
  if (cs == 1 || c == 1) {
    *op = OP_N;
    *ld = std::max(std::max(rs, c), int64_t(1));
    return true;
  }
  if (rs == 1 || r == 1) {
    *op = OP_T;
    *ld = std::max(std::max(cs, r), int64_t(1));
    return true;
  }
  return false;
}

}  // namespace

int attach_cublas(const char* soname) {
  const char* op = "mk_runtime_attach_cublas";
  if (!soname) return fail(MK_ERR_INVALID_ARGUMENT, "%s: soname is null", op);
  void* lib = dlopen(soname, RTLD_NOW | RTLD_NOLOAD | RTLD_LOCAL);
  if (!lib) lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return fail(MK_ERR_UNSUPPORTED, "%s: cannot open %s (%s)", op, soname, dlerror());
  auto create = reinterpret_cast<create_fn>(dlsym(lib, "cublasCreate_v2"));
  Cublas& c = cublas();
  std::lock_guard<std::mutex> lock(c.mu);
  c.set_math = reinterpret_cast<set_math_fn>(dlsym(lib, "cublasSetMathMode"));
  c.set_stream = reinterpret_cast<set_stream_fn>(dlsym(lib, "cublasSetStream_v2"));
  c.sgemm = reinterpret_cast<sgemm_sb_fn>(dlsym(lib, "cublasSgemmStridedBatched"));
  c.dgemm = reinterpret_cast<dgemm_sb_fn>(dlsym(lib, "cublasDgemmStridedBatched"));
  if (!create || !c.set_math || !c.set_stream || !c.sgemm || !c.dgemm)
    return fail(MK_ERR_UNSUPPORTED,
                "%s: %s lacks cublasCreate_v2, cublasSetMathMode, cublasSetStream_v2 or "
                "cublas{S,D}gemmStridedBatched",
                op, soname);
  if (c.handle) return MK_OK;  // attached before
  handle_t h = nullptr;
  const int st = create(&h);
  if (st != 0 || !h) return fail(MK_ERR_DEVICE, "%s: cublasCreate_v2 status %d", op, st);
  c.math = MATH_DEFAULT;
  c.handle = h;
  return MK_OK;
}

bool cublas_attached() { return cublas().handle != nullptr; }

int cublas_matmul(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a, int64_t a_bs, int64_t a_rs,
                  int64_t a_cs, const void* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, void* c, int64_t c_bs,
                  void* stream, bool* used) {
  const char* name = "mk_dense_matmul_forward";
  *used = false;
  Cublas& cb = cublas();
  if (!cb.handle || (dtype != MK_F32 && dtype != MK_F64)) return MK_OK;
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || batch > INT_MAX) return MK_OK;
  // C row-major [m, n] = A B is Cᵀ = Bᵀ Aᵀ column-major: B first (n x k after its op), then A
  int op_b, op_a;
  int64_t ldb, lda;
  if (!operand(k, n, b_rs, b_cs, &op_b, &ldb) || !operand(m, k, a_rs, a_cs, &op_a, &lda)) return MK_OK;
  if (ldb > INT_MAX || lda > INT_MAX) return MK_OK;
  std::lock_guard<std::mutex> lock(cb.mu);
  int st = cb.set_stream(cb.handle, stream);
  if (st != 0) return fail(MK_ERR_DEVICE, "%s: cublasSetStream status %d", name, st);
  if (dtype == MK_F32) {
    const int want = mk_runtime_allow_tf32() ? MATH_TF32 : MATH_DEFAULT;
    if (want != cb.math) {
      st = cb.set_math(cb.handle, want);
      if (st != 0) return fail(MK_ERR_DEVICE, "%s: cublasSetMathMode status %d", name, st);
      cb.math = want;
    }
    const float one = 1.f, zero = 0.f;
    st =
        cb.sgemm(cb.handle, op_b, op_a, int(n), int(m), int(k), &one, static_cast<const float*>(b), int(ldb), b_bs,
                 static_cast<const float*>(a), int(lda), a_bs, &zero, static_cast<float*>(c), int(n), c_bs, int(batch));
  } else {
    const double one = 1.0, zero = 0.0;
    st = cb.dgemm(cb.handle, op_b, op_a, int(n), int(m), int(k), &one, static_cast<const double*>(b), int(ldb), b_bs,
                  static_cast<const double*>(a), int(lda), a_bs, &zero, static_cast<double*>(c), int(n), c_bs,
                  int(batch));
  }
  if (st != 0)
    return fail(MK_ERR_DEVICE,
                "%s: cuBLAS status %d for [%" PRId64 ", %" PRId64 ", %" PRId64 "] x [%" PRId64 ", %" PRId64 "]", name,
                st, batch, m, k, k, n);
  *used = true;
  return MK_OK;
}

}  // namespace native
}  // namespace mk

extern "C" {

int mk_runtime_attach_cublas(const char* soname) { return mk::native::attach_cublas(soname); }

int mk_runtime_has_cublas(void) { return mk::native::cublas_attached() ? 1 : 0; }

}  // extern "C"
