// Argument checks shared by every entry point. Messages name the op and what was expected.
#include <algorithm>
#include <iterator>
#include <utility>
#include <cinttypes>
#include <cstdio>

#include "common.h"

namespace mk {
namespace native {

static const char* dtype_name(int dtype) {
  switch (dtype) {
    case MK_F32: return "F32";
    case MK_F64: return "F64";
    case MK_BF16: return "BF16";
    case MK_F16: return "F16";
    case MK_I64: return "I64";
    default: return "unknown";
  }
}

std::string shape_str(int rank, const int64_t* shape) {
  std::string s = "[";
  for (int d = 0; d < rank; ++d) {
    if (d) s += ", ";
    s += std::to_string(shape[d]);
  }
  return s + "]";
}

int64_t numel_of(int rank, const int64_t* shape) {
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= shape[d];
  return n;
}

int check_device(const char* op, int device) {
  return kernels_for(op, device) ? MK_OK : MK_ERR_NO_DEVICE;
}

int check_float_dtype(const char* op, int device, int dtype) {
  if (dtype == MK_F32 || dtype == MK_F64) return MK_OK;
  return fail(MK_ERR_UNSUPPORTED, "%s: dtype %s is not supported on %s (expected F32 or F64)", op,
              dtype_name(dtype), device == MK_DEVICE_CUDA ? "CUDA" : "the CPU");
}

int check_float_or_half_dtype(const char* op, int device, int dtype) {
  if (dtype == MK_F32 || dtype == MK_F64 || dtype == MK_BF16 || dtype == MK_F16) return MK_OK;
  return fail(MK_ERR_UNSUPPORTED, "%s: dtype %s is not supported on %s (expected F32, F64, BF16 or F16)", op,
              dtype_name(dtype), device == MK_DEVICE_CUDA ? "CUDA" : "the CPU");
}

int check_no_half_dtype(const char* op, int device, int dtype) {
  if (dtype == MK_BF16 || dtype == MK_F16)
    return fail(MK_ERR_UNSUPPORTED, "%s: dtype %s is not supported on %s (F32/F64 only: cast 16-bit operands to F32)",
                op, dtype_name(dtype), device == MK_DEVICE_CUDA ? "CUDA" : "the CPU");
  return check_float_dtype(op, device, dtype);
}

int check_rank_shape(const char* op, int rank, const int64_t* shape) {
  if (rank < 0 || rank > MK_MAX_RANK)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: rank %d outside [0, %d]", op, rank, MK_MAX_RANK);
  if (rank > 0 && !shape) return fail(MK_ERR_INVALID_ARGUMENT, "%s: shape is null", op);
  for (int d = 0; d < rank; ++d)
    if (shape[d] < 0)
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: negative size in shape %s", op,
                  shape_str(rank, shape).c_str());
  return MK_OK;
}

int check_strides(const char* op, const char* name, int rank, const int64_t* strides) {
  if (rank > 0 && !strides) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s strides are null", op, name);
  for (int d = 0; d < rank; ++d)
    if (strides[d] < 0)
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: negative stride in %s strides %s", op, name,
                  shape_str(rank, strides).c_str());
  return MK_OK;
}

int check_ptr(const char* op, const char* name, const void* p, int64_t numel) {
  if (numel > 0 && !p) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s is null", op, name);
  return MK_OK;
}

int64_t StridedGroups::extent() const {
  if (batch == 0 || heads == 0 || n == 0 || cols == 0) return 0;
  return (batch - 1) * s[0] + (heads - 1) * s[1] + (n - 1) * s[2] + cols;
}

bool StridedGroups::distinct() const {
  std::pair<int64_t, int64_t> dims[3] = {{s[0], batch}, {s[1], heads}, {s[2], n}};  // (stride, size)
  std::sort(std::begin(dims), std::end(dims));
  int64_t inner = cols;
  for (const auto& [stride, size] : dims) {
    if (size <= 1) continue;
    if (stride < inner) return false;
    inner += (size - 1) * stride;
  }
  return true;
}

int zero_strided(const char* op, const KernelTable* t, int device, int dtype, const StridedGroups& g, void* dst,
                 void* stream) {
  const int64_t shape[4] = {g.batch, g.heads, g.n, g.cols}, strides[4] = {g.s[0], g.s[1], g.s[2], 1};
  const int64_t zs[4] = {0, 0, 0, 0};
  alignas(8) unsigned char host_zero[8] = {0};
  void* z = host_zero;
  if (device == MK_DEVICE_CUDA && !(z = mk_device_alloc_on(mk::dtype_size(dtype), stream)))
    return fail(MK_ERR_INTERNAL, "%s: no device memory for one element", op);
  int st = device == MK_DEVICE_CUDA ? t->fill(dtype, 1, z, 0.0, stream) : 0;
  if (st == 0) st = t->copy_strided(dtype, 4, shape, z, zs, dst, strides, stream);
  if (z != host_zero) mk_device_free(z);
  return kernel_status(op, device, st);
}

int check_nonneg(const char* op, const char* name, int64_t v) {
  if (v < 0) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s = %" PRId64 " is negative", op, name, v);
  return MK_OK;
}

int check_indices(const char* op, int device, const int64_t* idx, int64_t n, int64_t bound) {
  if (n == 0) return MK_OK;
  if (!idx) return fail(MK_ERR_INVALID_ARGUMENT, "%s: indices are null", op);
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  int64_t bad = 0;
  MK_CHECK(kernel_status(op, device, t->index_check(n, idx, bound, &bad, nullptr)));
  if (bad)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %" PRId64 " of %" PRId64 " indices outside [0, %" PRId64 ")",
                op, bad, n, bound);
  return MK_OK;
}

}  // namespace native
}  // namespace mk
