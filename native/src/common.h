// Internals of the native layer: error reporting, argument checks, dispatch to a kernel set.
#pragma once
#include <cstdarg>
#include <cstdint>
#include <string>

#include "metakernels.h"
#include "mk/kernels.h"

namespace mk {
namespace native {

// Records the message for mk_last_error() and returns `status`.
int fail(int status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void clear_error();

// The kernel set for a device, or nullptr (with the error set) when the device is unusable.
// For the CPU it also applies the thread count (apply_cpu_threads): every CPU entry point calls
// it before any OpenMP region or thread-count-sized workspace.
const KernelTable* kernels_for(const char* op, int device);
// The CPU kernels' thread count (mk_runtime_set_num_threads, else the OpenMP default), and its
// application to the calling thread's OpenMP ICV (a no-op when it already holds it).
int cpu_threads();
void apply_cpu_threads();
// Turns a kernel's return code into a status, with the device's message.
int kernel_status(const char* op, int device, int code);

// Shape printing for messages: "[2, 3, 4]".
std::string shape_str(int rank, const int64_t* shape);

// Validation helpers: each returns MK_OK or fails with a message naming `op`.
int check_device(const char* op, int device);
int check_float_dtype(const char* op, int device, int dtype);
// F32, F64, BF16 or F16 (only the entry points with 16-bit kernels: softmax-attention forward
// and backward).
int check_float_or_half_dtype(const char* op, int device, int dtype);
// check_float_dtype with a message that says 16-bit types are refused by this op (F32/F64 only).
int check_no_half_dtype(const char* op, int device, int dtype);
int check_rank_shape(const char* op, int rank, const int64_t* shape);
int check_strides(const char* op, const char* name, int rank, const int64_t* strides);
int check_ptr(const char* op, const char* name, const void* p, int64_t numel);
int check_nonneg(const char* op, const char* name, int64_t v);

// An operand of the attention families' strided entries: [batch, heads, n, cols] through
// (batch, head, row) strides s, columns unit-stride.
struct StridedGroups {
  int64_t batch, heads, n, cols;
  int64_t s[3];
  // elements from the first to past the last (0 when empty)
  int64_t extent() const;
  // whether the (batch, head, row, column) positions are distinct elements: each stride, from the
  // smallest, at least the extent of the dims inside it (size-1 dims aside)
  bool distinct() const;
};
// Zeroes the elements of a strided operand at dst: a strided copy from one zero element (on the
// device for CUDA), all source strides 0.
int zero_strided(const char* op, const KernelTable* t, int device, int dtype, const StridedGroups& g, void* dst,
                 void* stream);
int check_indices(const char* op, int device, const int64_t* idx, int64_t n, int64_t bound);

int64_t numel_of(int rank, const int64_t* shape);

// Hands the current mk_attention_tc_select choice to a CUDA table being attached (native/src/attention.cpp;
// called by mk_runtime_attach_cuda), so a choice made before the attach holds.
int attention_tc_push(const KernelTable* t);
// mk_attention_simt_select's choice to a newly attached CUDA table (native/src/attention.cpp)
int attention_simt_push(const KernelTable* t);
// mk_linear_attention_select's choice to a newly attached CUDA table (native/src/linear_attention.cpp)
int linear_attention_push(const KernelTable* t);
// The attached CUDA table, or null (no error recorded).
const KernelTable* attached_cuda();
}  // namespace native
}  // namespace mk

#define MK_CHECK(expr)              \
  do {                              \
    int _mk_status = (expr);        \
    if (_mk_status != MK_OK) return _mk_status; \
  } while (0)
