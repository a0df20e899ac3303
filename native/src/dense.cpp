// C ABI of the dense family: validate, then run the CPU or the CUDA kernel.
#include <omp.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <vector>

#include "blas.h"
#include "common.h"
#include "mk/cpu_parallel.h"
#include "mk/matmul_small.h"

using namespace mk::native;
using mk::KernelTable;

namespace {

int check_op_code(const char* op, int code, int count, const char* what) {
  if (code < 0 || code >= count)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: unknown %s op code %d", op, what, code);
  return MK_OK;
}

// Sizes of a [outer, len, inner] problem.
int check_oli(const char* op, int64_t outer, int64_t len, int64_t inner) {
  MK_CHECK(check_nonneg(op, "outer", outer));
  MK_CHECK(check_nonneg(op, "len", len));
  MK_CHECK(check_nonneg(op, "inner", inner));
  return MK_OK;
}

// The most parts the rows (or columns) of one BLAS product are cut into (a power of two; fixed, not
// the thread count: see the end of blas_matmul).
constexpr int64_t kBlasParts = 16;

int blas_matmul(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a,
                int64_t a_bs, int64_t a_rs, int64_t a_cs, const void* b, int64_t b_bs,
                int64_t b_rs, int64_t b_cs, void* c, int64_t c_bs) {
  // Row-major CBLAS: a matrix with column stride 1 is "N" with lda = row stride; one with row
  // stride 1 is the transpose of a row-major matrix ("T", lda = column stride).
  bool a_n = a_cs == 1 && a_rs >= std::max<int64_t>(k, 1);
  bool a_t = !a_n && a_rs == 1 && a_cs >= std::max<int64_t>(m, 1);
  bool b_n = b_cs == 1 && b_rs >= std::max<int64_t>(n, 1);
  bool b_t = !b_n && b_rs == 1 && b_cs >= std::max<int64_t>(k, 1);
  // An operand BLAS cannot read (a broadcast one, stride 0, as the backward of a sum or a mean
  // hands to the next matmul; or no unit stride) is packed row-major into a scratch owned by this
  // call first: one pass over it, where the naive fallback made a MAML meta-gradient of a small
  // MLP spend 5% of its time in scalar loops (2026-12-04). (A thread_local scratch until
  // 2026-12-07 kept the largest operand ever packed alive for the life of each calling thread.)
  std::vector<char> packed_a, packed_b;
  const size_t esize = dtype == MK_F32 ? 4 : 8;
  auto pack = [&](std::vector<char>& buf, const void* src, int64_t bs, int64_t rs, int64_t cs, int64_t rows,
                  int64_t cols) -> const void* {
    buf.resize(size_t(batch * rows * cols) * esize);
    for (int64_t i = 0; i < batch; ++i)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t from = i * bs + r * rs + c * cs, to = (i * rows + r) * cols + c;
          if (dtype == MK_F32) reinterpret_cast<float*>(buf.data())[to] = static_cast<const float*>(src)[from];
          else reinterpret_cast<double*>(buf.data())[to] = static_cast<const double*>(src)[from];
        }
    return buf.data();
  };
  if (!(a_n || a_t)) {
    a = pack(packed_a, a, a_bs, a_rs, a_cs, m, k);
    a_bs = m * k, a_rs = k, a_cs = 1;
    a_n = true;
  }
  if (!(b_n || b_t)) {
    b = pack(packed_b, b, b_bs, b_rs, b_cs, k, n);
    b_bs = k * n, b_rs = n, b_cs = 1;
    b_n = true;
  }
  const int ta = a_n ? CblasNoTrans : CblasTrans, tb = b_n ? CblasNoTrans : CblasTrans;
  const int lda = int(a_n ? a_rs : a_cs), ldb = int(b_n ? b_rs : b_cs);
  // a block of rows [r0, r0 + rows) of batch entry i
  // the block of rows [r0, r0 + rows) and columns [c0, c0 + cols) of batch entry i
  auto call = [&](int64_t i, int64_t r0, int64_t rows, int64_t c0, int64_t cols) {
    const int64_t a_off = i * a_bs + r0 * a_rs;
    const int64_t b_off = i * b_bs + c0 * b_cs;
    const int64_t c_off = i * c_bs + r0 * n + c0;
    if (dtype == MK_F32)
      blas_sgemm()(CblasRowMajor, ta, tb, int(rows), int(cols), int(k), 1.0f, static_cast<const float*>(a) + a_off, lda,
                   static_cast<const float*>(b) + b_off, ldb, 0.0f, static_cast<float*>(c) + c_off, int(n));
    else
      blas_dgemm()(CblasRowMajor, ta, tb, int(rows), int(cols), int(k), 1.0, static_cast<const double*>(a) + a_off, lda,
                   static_cast<const double*>(b) + b_off, ldb, 0.0, static_cast<double*>(c) + c_off, int(n));
  };
  const int threads = omp_get_max_threads();
  const double flops = double(batch) * double(m) * double(n) * double(k);
  // The split-K form's own threshold (2^24 multiply-adds, the fork threshold's value when it was
  // written): it sums in another order than one BLAS call, so moving it would move results, which
  // the fork threshold (mk/cpu_parallel.h) never does.
  constexpr double kSplitKFrom = double(int64_t(1) << 24);
  if (batch == 1 && m * n <= 4096 && k >= 2048 && flops >= kSplitKFrom) {
    // Small output, long reduction (a weight gradient over many rows): split k into `chunks` parts
    // (a function of k alone: min(16, k / 1024)), one partial product per part, summed in part
    // order, so the result is the same bits for every thread count (one thread runs the parts in
    // turn). Row splitting would leave threads idle.
    const int64_t chunks = std::min<int64_t>(16, k / 1024);
    const int64_t step = (k + chunks - 1) / chunks;
    std::vector<char> partial(size_t(chunks) * size_t(m * n) * esize);  // owned by this call
    char* parts = partial.data();
    auto part = [&](int64_t t) {
      const int64_t p0 = t * step, len = std::min(step, k - p0);
      char* dst = parts + size_t(t) * size_t(m * n) * esize;
      if (len <= 0) { std::memset(dst, 0, size_t(m * n) * esize); return; }
      if (dtype == MK_F32)
        blas_sgemm()(CblasRowMajor, ta, tb, int(m), int(n), int(len), 1.0f, static_cast<const float*>(a) + p0 * a_cs,
                     lda, static_cast<const float*>(b) + p0 * b_rs, ldb, 0.0f, reinterpret_cast<float*>(dst), int(n));
      else
        blas_dgemm()(CblasRowMajor, ta, tb, int(m), int(n), int(len), 1.0, static_cast<const double*>(a) + p0 * a_cs,
                     lda, static_cast<const double*>(b) + p0 * b_rs, ldb, 0.0, reinterpret_cast<double*>(dst), int(n));
    };
    if (threads > 1) {
#pragma omp parallel for schedule(static)
      for (int64_t t = 0; t < chunks; ++t) part(t);
    } else {
      for (int64_t t = 0; t < chunks; ++t) part(t);
    }
    for (int64_t i = 0; i < m * n; ++i) {
      if (dtype == MK_F32) {
        float acc = 0;
        for (int64_t t = 0; t < chunks; ++t)
          acc += reinterpret_cast<const float*>(parts + size_t(t) * size_t(m * n) * esize)[i];
        static_cast<float*>(c)[i] = acc;
      } else {
        double acc = 0;
        for (int64_t t = 0; t < chunks; ++t)
          acc += reinterpret_cast<const double*>(parts + size_t(t) * size_t(m * n) * esize)[i];
        static_cast<double*>(c)[i] = acc;
      }
    }
    return 0;
  }
  // Below kMinParallelFma (12.6 M) multiply-adds the wake of a sleeping thread eats the gain
  // (mk/cpu_parallel.h, the same rule as the register-blocked products'). The split of the work
  // is a function of the shape alone, never of the thread count: BLAS may give a row other bits
  // in a call of other rows (OpenBLAS with OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE=512 on
  // an AVX-512 AMD VM did, 2026-12-07: a [1024, 128] x [128, 256] product split in two calls of
  // 512 rows differed from the one call in the last bit), so every thread count makes the same
  // calls and the results are the same bits.
  if (flops < double(mk::cpu::kMinParallelFma)) {
    for (int64_t i = 0; i < batch; ++i) call(i, 0, m, 0, n);
    return 0;
  }
  // Each product in a power of two of row parts of at least 2^23 multiply-adds and 256 rows (BLAS
  // packs b again for each part: on the 2-core VM a 1024^3 product in 8 parts of 128 rows took 22 %
  // longer than in 2, in 4 parts of 256 rows ~3 %; 2026-12-07), at most kBlasParts; a product of
  // fewer rows in column parts of at least 128 columns instead (a is packed again for each, a small
  // one). The batch x parts calls are shared by the threads (single-threaded BLAS inside).
  const double per_product = double(m) * double(n) * double(k);
  auto pow2_parts = [&](int64_t extent, int64_t least) {
    const int64_t raw = std::clamp<int64_t>(
        std::min<int64_t>(int64_t(per_product / double(int64_t(1) << 23)), extent / least), 1, kBlasParts);
    int64_t p = 1;
    while (p * 2 <= raw) p *= 2;
    return p;
  };
  const int64_t row_parts = pow2_parts(m, 256), col_parts = row_parts == 1 ? pow2_parts(n, 128) : 1;
  const int64_t row_step = (m + row_parts - 1) / row_parts, col_step = (n + col_parts - 1) / col_parts;
  const int64_t parts = row_parts * col_parts;
  auto item = [&](int64_t w) {
    const int64_t i = w / parts, p = w % parts;
    const int64_t r0 = (p / col_parts) * row_step, c0 = (p % col_parts) * col_step;
    const int64_t rows = std::min(row_step, m - r0), cols = std::min(col_step, n - c0);
    if (rows > 0 && cols > 0) call(i, r0, rows, c0, cols);
  };
  const int64_t items = batch * parts;
  if (threads > 1 && items > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t w = 0; w < items; ++w) item(w);
  } else {
    for (int64_t w = 0; w < items; ++w) item(w);
  }
  return 0;
}

}  // namespace

extern "C" {

int mk_tensor_fill_forward(int device, int dtype, int64_t n, void* dst, double value, void* stream) {
  const char* op = "mk_tensor_fill_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  if (mk::dtype_size(dtype) == 0) return fail(MK_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", op, dtype);
  MK_CHECK(check_nonneg(op, "n", n));
  MK_CHECK(check_ptr(op, "dst", dst, n));
  if (n == 0) return MK_OK;
  return kernel_status(op, device, t->fill(dtype, n, dst, value, stream));
}

int mk_tensor_copy_forward(int device, int dtype, int rank, const int64_t* shape, const void* src,
                           const int64_t* src_strides, void* dst, const int64_t* dst_strides,
                           void* stream) {
  const char* op = "mk_tensor_copy_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  if (mk::dtype_size(dtype) == 0) return fail(MK_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", op, dtype);
  MK_CHECK(check_rank_shape(op, rank, shape));
  MK_CHECK(check_strides(op, "src", rank, src_strides));
  MK_CHECK(check_strides(op, "dst", rank, dst_strides));
  const int64_t n = numel_of(rank, shape);
  MK_CHECK(check_ptr(op, "src", src, n));
  MK_CHECK(check_ptr(op, "dst", dst, n));
  if (n == 0) return MK_OK;
  return kernel_status(op, device, t->copy_strided(dtype, rank, shape, src, src_strides, dst, dst_strides, stream));
}

int mk_tensor_cast_forward(int device, int src_dtype, int dst_dtype, int64_t n, const void* src,
                           void* dst, void* stream) {
  const char* op = "mk_tensor_cast_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  if (mk::dtype_size(src_dtype) == 0 || mk::dtype_size(dst_dtype) == 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: unknown dtype (%d -> %d)", op, src_dtype, dst_dtype);
  MK_CHECK(check_nonneg(op, "n", n));
  MK_CHECK(check_ptr(op, "src", src, n));
  MK_CHECK(check_ptr(op, "dst", dst, n));
  if (n == 0) return MK_OK;
  return kernel_status(op, device, t->cast(src_dtype, dst_dtype, n, src, dst, stream));
}

int mk_tensor_random_forward(int device, int dtype, int dist, int64_t n, void* dst, int64_t seed,
                             double a, double b, void* stream) {
  const char* op = "mk_tensor_random_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  if (dist != MK_RANDOM_UNIFORM && dist != MK_RANDOM_NORMAL)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: dist must be 0 (uniform) or 1 (normal), got %d", op, dist);
  MK_CHECK(check_nonneg(op, "n", n));
  MK_CHECK(check_ptr(op, "dst", dst, n));
  if (n == 0) return MK_OK;
  return kernel_status(op, device, t->random_fill(dtype, dist, n, dst, uint64_t(seed), a, b, stream));
}

int mk_dense_unary_forward(int device, int dtype, int opc, int rank, const int64_t* shape,
                           const void* x, const int64_t* x_strides, void* y, double p,
                           void* stream) {
  const char* op = "mk_dense_unary_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_op_code(op, opc, MK_UNARY_COUNT, "unary"));
  MK_CHECK(check_rank_shape(op, rank, shape));
  MK_CHECK(check_strides(op, "x", rank, x_strides));
  const int64_t n = numel_of(rank, shape);
  MK_CHECK(check_ptr(op, "x", x, n));
  MK_CHECK(check_ptr(op, "y", y, n));
  if (n == 0) return MK_OK;
  return kernel_status(op, device, t->unary(dtype, opc, rank, shape, x, x_strides, y, p, stream));
}

int mk_dense_binary_forward(int device, int dtype, int opc, int rank, const int64_t* shape,
                            const void* a, const int64_t* a_strides, const void* b,
                            const int64_t* b_strides, void* out, void* stream) {
  const char* op = "mk_dense_binary_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_op_code(op, opc, MK_BINARY_COUNT, "binary"));
  MK_CHECK(check_rank_shape(op, rank, shape));
  MK_CHECK(check_strides(op, "a", rank, a_strides));
  MK_CHECK(check_strides(op, "b", rank, b_strides));
  const int64_t n = numel_of(rank, shape);
  MK_CHECK(check_ptr(op, "a", a, n));
  MK_CHECK(check_ptr(op, "b", b, n));
  MK_CHECK(check_ptr(op, "out", out, n));
  if (n == 0) return MK_OK;
  return kernel_status(op, device, t->binary(dtype, opc, rank, shape, a, a_strides, b, b_strides, out, stream));
}

int mk_dense_where_forward(int device, int dtype, int rank, const int64_t* shape,
                           const void* cond, const int64_t* c_strides, const void* a,
                           const int64_t* a_strides, const void* b, const int64_t* b_strides,
                           void* out, void* stream) {
  const char* op = "mk_dense_where_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_rank_shape(op, rank, shape));
  MK_CHECK(check_strides(op, "cond", rank, c_strides));
  MK_CHECK(check_strides(op, "a", rank, a_strides));
  MK_CHECK(check_strides(op, "b", rank, b_strides));
  const int64_t n = numel_of(rank, shape);
  MK_CHECK(check_ptr(op, "cond", cond, n));
  MK_CHECK(check_ptr(op, "a", a, n));
  MK_CHECK(check_ptr(op, "b", b, n));
  MK_CHECK(check_ptr(op, "out", out, n));
  if (n == 0) return MK_OK;
  return kernel_status(op, device, t->where(dtype, rank, shape, cond, c_strides, a, a_strides, b, b_strides, out, stream));
}

int mk_dense_reduce_forward(int device, int dtype, int opc, int64_t outer, int64_t len,
                            int64_t inner, const void* x, void* y, int64_t* indices,
                            void* stream) {
  const char* op = "mk_dense_reduce_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_op_code(op, opc, MK_REDUCE_COUNT, "reduce"));
  MK_CHECK(check_oli(op, outer, len, inner));
  if (opc != MK_REDUCE_SUM && len == 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: max/min over an empty dim (outer %" PRId64 ", len 0, inner %" PRId64 ")",
                op, outer, inner);
  if (opc == MK_REDUCE_SUM && indices)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: indices are only produced by max/min", op);
  MK_CHECK(check_ptr(op, "x", x, outer * len * inner));
  MK_CHECK(check_ptr(op, "y", y, outer * inner));
  if (outer * inner == 0) return MK_OK;
  // A reduction with few outputs and a long reduced dim is split across blocks on CUDA: the
  // partial results go to scratch from the device caching allocator (at most 2 MB, see
  // kernels/cuda/dense.cu), allocated for the call's stream and freed when the call returns: the
  // stream-aware cache hands it to that stream again at once (stream order covers the reuse) and
  // to another stream only after the event recorded at the free. Without the scratch (out of device memory) the kernel takes the plan without splits: slower,
  // and its sums add in another (fixed) order, so they may differ in the last bits from a call
  // that had the scratch; max/min are the same either way.
  const int64_t ws_bytes = t->reduce_workspace(dtype, opc, outer, len, inner);
  if (device != MK_DEVICE_CUDA || ws_bytes <= 0)
    return kernel_status(op, device, t->reduce(dtype, opc, outer, len, inner, x, y, indices, stream));
  void* ws = mk_device_alloc_on(ws_bytes, stream);
  if (!ws) clear_error();  // the out-of-memory message of the allocator: the call goes on without splits
  int st = t->reduce_split(dtype, opc, outer, len, inner, x, y, indices, ws, ws ? ws_bytes : 0, stream);
  if (ws) mk_device_free(ws);
  return kernel_status(op, device, st);
}

int mk_dense_softmax_forward(int device, int dtype, int log, int64_t rows, int64_t cols,
                             const void* x, void* y, void* stream) {
  const char* op = "mk_dense_softmax_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_nonneg(op, "rows", rows));
  MK_CHECK(check_nonneg(op, "cols", cols));
  MK_CHECK(check_ptr(op, "x", x, rows * cols));
  MK_CHECK(check_ptr(op, "y", y, rows * cols));
  if (rows * cols == 0) return MK_OK;
  return kernel_status(op, device, t->softmax(dtype, log ? 1 : 0, rows, cols, x, y, stream));
}

int mk_dense_matmul_forward(int device, int dtype, int64_t batch, int64_t m, int64_t n,
                            int64_t k, const void* a, int64_t a_bs, int64_t a_rs, int64_t a_cs,
                            const void* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, void* c,
                            int64_t c_bs, void* stream) {
  const char* op = "mk_dense_matmul_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_nonneg(op, "batch", batch));
  MK_CHECK(check_nonneg(op, "m", m));
  MK_CHECK(check_nonneg(op, "n", n));
  MK_CHECK(check_nonneg(op, "k", k));
  const int64_t strides[7] = {a_bs, a_rs, a_cs, b_bs, b_rs, b_cs, c_bs};
  MK_CHECK(check_strides(op, "matmul", 7, strides));
  if (c_bs < m * n && batch > 1)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: output batch stride %" PRId64 " < m*n = %" PRId64, op, c_bs, m * n);
  MK_CHECK(check_ptr(op, "a", a, batch * m * k));
  MK_CHECK(check_ptr(op, "b", b, batch * k * n));
  MK_CHECK(check_ptr(op, "c", c, batch * m * n));
  if (batch * m * n == 0) return MK_OK;
  if (k == 0) return kernel_status(op, device, t->fill(dtype, batch * m * n, c, 0.0, stream));
  // Many tiny matrices: one parallel loop beats a BLAS call (and its dispatch) per matrix.
  // Output rows of a few columns too (kernels/cpu/matmul_small.cpp, mk/matmul_small.h): BLAS runs
  // them far below the memory rate.
  const bool small = mk::cpu::matmul_small_fits(batch, m, n, k);
  if (device == MK_DEVICE_CPU && !small && blas_attached() && m < INT32_MAX && n < INT32_MAX && k < INT32_MAX &&
      blas_matmul(dtype, batch, m, n, k, a, a_bs, a_rs, a_cs, b, b_bs, b_rs, b_cs, c, c_bs) == 0)
    return MK_OK;
  if (device == MK_DEVICE_CUDA) {
    bool used = false;
    MK_CHECK(cublas_matmul(dtype, batch, m, n, k, a, a_bs, a_rs, a_cs, b, b_bs, b_rs, b_cs, c, c_bs, stream, &used));
    if (used) return MK_OK;
  }
  return kernel_status(op, device, t->matmul_naive(dtype, batch, m, n, k, a, a_bs, a_rs, a_cs, b, b_bs,
                                                   b_rs, b_cs, c, c_bs, stream));
}

int mk_dense_index_select_forward(int device, int dtype, int64_t outer, int64_t src_len,
                                  int64_t inner, const void* x, const int64_t* idx, int64_t n_idx,
                                  void* y, void* stream) {
  const char* op = "mk_dense_index_select_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  if (mk::dtype_size(dtype) == 0) return fail(MK_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", op, dtype);
  MK_CHECK(check_oli(op, outer, src_len, inner));
  MK_CHECK(check_nonneg(op, "n_idx", n_idx));
  MK_CHECK(check_ptr(op, "x", x, outer * src_len * inner));
  MK_CHECK(check_ptr(op, "y", y, outer * n_idx * inner));
  MK_CHECK(check_indices(op, device, idx, n_idx, src_len));
  if (outer * n_idx * inner == 0) return MK_OK;
  return kernel_status(op, device, t->index_select(dtype, outer, src_len, inner, x, idx, n_idx, y, stream));
}

int mk_dense_index_add_forward(int device, int dtype, int64_t outer, int64_t dst_len,
                               int64_t inner, void* dst, const int64_t* idx, int64_t n_idx,
                               const void* src, void* stream) {
  const char* op = "mk_dense_index_add_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_oli(op, outer, dst_len, inner));
  MK_CHECK(check_nonneg(op, "n_idx", n_idx));
  MK_CHECK(check_ptr(op, "dst", dst, outer * dst_len * inner));
  MK_CHECK(check_ptr(op, "src", src, outer * n_idx * inner));
  MK_CHECK(check_indices(op, device, idx, n_idx, dst_len));
  if (outer * n_idx * inner == 0) return MK_OK;
  return kernel_status(op, device, t->index_add(dtype, outer, dst_len, inner, dst, idx, n_idx, src, stream));
}

int mk_dense_gather_forward(int device, int dtype, int64_t outer, int64_t src_len, int64_t inner,
                            const void* x, const int64_t* idx, int64_t idx_len, void* y,
                            void* stream) {
  const char* op = "mk_dense_gather_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_oli(op, outer, src_len, inner));
  MK_CHECK(check_nonneg(op, "idx_len", idx_len));
  MK_CHECK(check_ptr(op, "x", x, outer * src_len * inner));
  MK_CHECK(check_ptr(op, "y", y, outer * idx_len * inner));
  MK_CHECK(check_indices(op, device, idx, outer * idx_len * inner, src_len));
  if (outer * idx_len * inner == 0) return MK_OK;
  return kernel_status(op, device, t->gather(dtype, outer, src_len, inner, x, idx, idx_len, y, stream));
}

int mk_dense_scatter_add_forward(int device, int dtype, int64_t outer, int64_t dst_len,
                                 int64_t inner, void* dst, const int64_t* idx, int64_t idx_len,
                                 const void* src, void* stream) {
  const char* op = "mk_dense_scatter_add_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_oli(op, outer, dst_len, inner));
  MK_CHECK(check_nonneg(op, "idx_len", idx_len));
  MK_CHECK(check_ptr(op, "dst", dst, outer * dst_len * inner));
  MK_CHECK(check_ptr(op, "src", src, outer * idx_len * inner));
  MK_CHECK(check_indices(op, device, idx, outer * idx_len * inner, dst_len));
  if (outer * idx_len * inner == 0) return MK_OK;
  return kernel_status(op, device, t->scatter_add(dtype, outer, dst_len, inner, dst, idx, idx_len, src, stream));
}

}  // extern "C"
