// C ABI of the graph family: validation, the CSR structure check, dispatch. Messages name the
// entry point and the caller's sizes ("rows = 5, cols = 5, nnz = 12, heads = 1, width = 16").
#include <cinttypes>
#include <cmath>
#include <string>

#include "common.h"
#include "mk/graph_segment.h"

using namespace mk::native;
using mk::KernelTable;

namespace {

std::string sizes(int64_t rows, int64_t cols, int64_t nnz, int64_t heads, int64_t width) {
  char buf[160];
  snprintf(buf, sizeof buf,
           "rows = %" PRId64 ", cols = %" PRId64 ", nnz = %" PRId64 ", heads = %" PRId64 ", width = %" PRId64, rows,
           cols, nnz, heads, width);
  return buf;
}

// a * b * c without signed overflow, or -1.
int64_t product3(int64_t a, int64_t b, int64_t c) {
  int64_t ab = 0, abc = 0;
  if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc)) return -1;
  return abc;
}

// Sizes, pointers and the CSR structure (one pass over row_ptr and col by graph_check).
int check_graph(const char* op, const KernelTable* t, int device, int dtype, int64_t rows, int64_t cols, int64_t nnz,
                int64_t heads, int64_t width, const int64_t* row_ptr, const int64_t* col, void* stream) {
  MK_CHECK(check_no_half_dtype(op, device, dtype));
  const std::string s = sizes(rows, cols, nnz, heads, width);
  if (rows < 0 || cols < 0 || nnz < 0 || heads < 1 || width < 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: sizes must be >= 0 and heads >= 1", op, s.c_str());
  if (product3(rows > cols ? rows : cols, heads, width) < 0 || product3(nnz, heads, 1) < 0 || rows > INT64_MAX - 1)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: element counts overflow int64", op, s.c_str());
  if (!row_ptr) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: row_ptr [%" PRId64 "] is null", op, s.c_str(), rows + 1);
  MK_CHECK(check_ptr(op, "col", col, nnz));
  int64_t bad[2] = {0, 0};
  MK_CHECK(kernel_status(op, device, t->graph_check(rows, cols, nnz, row_ptr, col, bad, stream)));
  if (bad[0])
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: %s: row_ptr [%" PRId64 "] is not a CSR row pointer (%" PRId64
                " entries break row_ptr[0] = 0, row_ptr[r] <= row_ptr[r + 1], row_ptr[rows] = nnz)",
                op, s.c_str(), rows + 1, bad[0]);
  if (bad[1])
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: %s: %" PRId64 " of %" PRId64 " column indices (col [%" PRId64 "]) outside [0, %" PRId64 ")", op,
                s.c_str(), bad[1], nnz, nnz, cols);
  return MK_OK;
}

// A graph kernel's scratch, freed when the call returns. CUDA: the segment sums of the hub split
// (kernels/cuda/graph.cu, gat.cu) from the device caching allocator for the call's stream; without
// it (out of device memory) each hub row is walked by one group: slower, the same bits. The CPU:
// the kernels' buffers (they allocate nothing: kernels/cpu/graph.cpp, gat.cpp) from the host
// caching allocator, so they count in mk_host_live_bytes / mk_host_peak_bytes; spmm without it
// reads indexed weights through the index (the same bits), the GAT kernels cannot run without it
// (`required`: the call fails naming the op, the sizes and the bytes).
struct GraphScratch {
  void* ptr = nullptr;
  int64_t bytes = 0;
  int device = MK_DEVICE_CPU;
  GraphScratch() = default;
  // MK_OK, or an error when `required` and the allocation failed
  int take(const char* op, const std::string& s, int dev, int64_t need, bool required, void* stream) {
    device = dev;
    if (need <= 0) return MK_OK;
    ptr = device == MK_DEVICE_CUDA ? mk_device_alloc_on(need, stream) : mk_host_alloc(need);
    if (ptr) {
      bytes = need;
      return MK_OK;
    }
    if (device == MK_DEVICE_CUDA || !required) {
      clear_error();
      return MK_OK;
    }
    return fail(MK_ERR_INTERNAL, "%s: %s: no host memory for the kernel's scratch (%" PRId64 " bytes)", op, s.c_str(),
                need);
  }
  ~GraphScratch() {
    if (ptr) device == MK_DEVICE_CUDA ? mk_device_free(ptr) : mk_host_free(ptr);
  }
  GraphScratch(const GraphScratch&) = delete;
  GraphScratch& operator=(const GraphScratch&) = delete;
};

}  // namespace

extern "C" {

int mk_graph_spmm_forward(int device, int dtype, int reduce, int64_t rows, int64_t cols, int64_t nnz, int64_t heads,
                          int64_t width, const int64_t* row_ptr, const int64_t* col, const void* weight,
                          const int64_t* weight_index, const void* x, void* out, int64_t* arg, void* stream) {
  const char* op = "mk_graph_spmm_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  if (reduce < 0 || reduce >= MK_GRAPH_REDUCE_COUNT)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: reduce %d outside [0, %d) (sum, mean, max, min)", op, reduce,
                int(MK_GRAPH_REDUCE_COUNT));
  MK_CHECK(check_graph(op, t, device, dtype, rows, cols, nnz, heads, width, row_ptr, col, stream));
  const int64_t out_n = rows * heads * width;
  MK_CHECK(check_ptr(op, "x", x, cols * heads * width));
  MK_CHECK(check_ptr(op, "out", out, out_n));
  const bool extreme = reduce == MK_GRAPH_REDUCE_MAX || reduce == MK_GRAPH_REDUCE_MIN;
  if (extreme && out_n > 0 && !arg)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: max and min need arg (I64 [%" PRId64 ", %" PRId64 ", %" PRId64 "])",
                op, sizes(rows, cols, nnz, heads, width).c_str(), rows, heads, width);
  if (weight && weight_index && nnz > 0) {
    int64_t bad = 0;
    MK_CHECK(kernel_status(op, device, t->index_check(nnz, weight_index, nnz, &bad, stream)));
    if (bad)
      return fail(MK_ERR_INVALID_ARGUMENT,
                  "%s: %s: %" PRId64 " of %" PRId64 " weight indices (weight_index [%" PRId64 "]) outside [0, %" PRId64
                  ")",
                  op, sizes(rows, cols, nnz, heads, width).c_str(), bad, nnz, nnz, nnz);
  }
  if (out_n == 0) return MK_OK;
  // CUDA splits hub rows (longer than kGraphSegment non-zeros) across lane groups, their segment
  // sums in scratch (as mk_dense_reduce_forward's); the CPU gathers indexed weights into row order
  // in per-thread buffers. Either way optional: without it the same bits, slower (GraphScratch).
  const int indexed = weight && weight_index ? 1 : 0;
  GraphScratch ws;
  MK_CHECK(ws.take(op, sizes(rows, cols, nnz, heads, width), device,
                   t->graph_spmm_workspace(dtype, reduce, rows, nnz, heads, width, indexed), false, stream));
  return kernel_status(
      op, device,
      t->graph_spmm_split(dtype, reduce, rows, nnz, heads, width, row_ptr, col, weight, weight ? weight_index : nullptr,
                          x, out, extreme ? arg : nullptr, ws.ptr, ws.bytes, stream));
}

int mk_graph_sddmm_forward(int device, int dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t heads, int64_t width,
                           const int64_t* row_ptr, const int64_t* col, const void* a, const void* b, void* out,
                           void* stream) {
  const char* op = "mk_graph_sddmm_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_graph(op, t, device, dtype, rows, cols, nnz, heads, width, row_ptr, col, stream));
  MK_CHECK(check_ptr(op, "a", a, rows * heads * width));
  MK_CHECK(check_ptr(op, "b", b, cols * heads * width));
  MK_CHECK(check_ptr(op, "out", out, nnz * heads));
  if (nnz == 0) return MK_OK;
  if (width == 0) return kernel_status(op, device, t->fill(dtype, nnz * heads, out, 0.0, stream));
  return kernel_status(op, device, t->graph_sddmm(dtype, rows, nnz, heads, width, row_ptr, col, a, b, out, stream));
}


// ---- edge softmax and the fused GAT aggregation (kernels/{cpu,cuda}/gat.*) ----------------------
int mk_graph_edge_softmax_forward(int device, int dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t heads,
                                  const int64_t* row_ptr, const int64_t* col, const void* scores, const void* lse_in,
                                  void* out, void* lse_out, void* stream) {
  const char* op = "mk_graph_edge_softmax_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_graph(op, t, device, dtype, rows, cols, nnz, heads, 1, row_ptr, col, stream));
  MK_CHECK(check_ptr(op, "scores", scores, nnz * heads));
  MK_CHECK(check_ptr(op, "out", out, nnz * heads));
  if (lse_in && lse_out)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: give lse_in or lse_out, not both", op,
                sizes(rows, cols, nnz, heads, 1).c_str());
  if (lse_in) MK_CHECK(check_ptr(op, "lse_in", lse_in, rows * heads));
  if (lse_out) MK_CHECK(check_ptr(op, "lse_out", lse_out, rows * heads));
  if (nnz == 0 || rows == 0) {  // no scores: every row is empty, its lse -inf
    if (lse_out && rows > 0) return kernel_status(op, device, t->fill(dtype, rows * heads, lse_out, -INFINITY, stream));
    return MK_OK;
  }
  // the CPU reads row_ptr to size its buffers (the longest row, the hub plan); CUDA does not
  GraphScratch ws;
  MK_CHECK(ws.take(op, sizes(rows, cols, nnz, heads, 1), device,
                   t->graph_gat_workspace(dtype, mk::kGatPassSoftmax, rows, nnz, heads, 1, row_ptr, nullptr), true,
                   stream));
  return kernel_status(op, device,
                       t->graph_edge_softmax_split(dtype, rows, nnz, heads, row_ptr, scores, lse_in, out, lse_out, ws.ptr,
                                                   ws.bytes, stream));
}

int mk_graph_gat_forward(int device, int dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t heads, int64_t width,
                         double negative_slope, const int64_t* row_ptr, const int64_t* col, const void* x,
                         const void* s_src, const void* s_dst, void* out, void* lse, void* stream) {
  const char* op = "mk_graph_gat_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_graph(op, t, device, dtype, rows, cols, nnz, heads, width, row_ptr, col, stream));
  const std::string s = sizes(rows, cols, nnz, heads, width);
  if (width < 1) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: width must be >= 1", op, s.c_str());
  if (!std::isfinite(negative_slope))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: negative_slope %g is not finite", op, s.c_str(), negative_slope);
  MK_CHECK(check_ptr(op, "x", x, cols * heads * width));
  MK_CHECK(check_ptr(op, "s_src", s_src, cols * heads));
  MK_CHECK(check_ptr(op, "s_dst", s_dst, rows * heads));
  MK_CHECK(check_ptr(op, "out", out, rows * heads * width));
  if (lse) MK_CHECK(check_ptr(op, "lse", lse, rows * heads));
  if (rows == 0) return MK_OK;
  GraphScratch ws;
  MK_CHECK(ws.take(op, s, device,
                   t->graph_gat_workspace(dtype, mk::kGatPassForward, rows, nnz, heads, width, row_ptr, nullptr), true,
                   stream));
  return kernel_status(op, device,
                       t->graph_gat_split(dtype, rows, nnz, heads, width, negative_slope, row_ptr, col, x, s_src, s_dst,
                                          out, lse, ws.ptr, ws.bytes, stream));
}

int mk_graph_gat_backward(int device, int dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t heads, int64_t width,
                          double negative_slope, const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr,
                          const int64_t* csc_row, const void* x, const void* s_src, const void* s_dst,
                          const void* lse, const void* grad_out, void* grad_x, void* grad_s_src, void* grad_s_dst,
                          void* row_dot, void* stream) {
  const char* op = "mk_graph_gat_backward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  const std::string s = sizes(rows, cols, nnz, heads, width);
  if (rows != cols)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: rows and cols must be equal (a node graph)", op, s.c_str());
  MK_CHECK(check_graph(op, t, device, dtype, rows, cols, nnz, heads, width, row_ptr, col, stream));
  if (width < 1) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: width must be >= 1", op, s.c_str());
  if (!std::isfinite(negative_slope))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: negative_slope %g is not finite", op, s.c_str(), negative_slope);
  // the CSC: a valid structure of the transpose (its agreement with the CSR is the caller's)
  if (!col_ptr) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: col_ptr [%" PRId64 "] is null", op, s.c_str(), cols + 1);
  MK_CHECK(check_ptr(op, "csc_row", csc_row, nnz));
  int64_t bad[2] = {0, 0};
  MK_CHECK(kernel_status(op, device, t->graph_check(cols, rows, nnz, col_ptr, csc_row, bad, stream)));
  if (bad[0] || bad[1])
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: %s: col_ptr [%" PRId64 "] / csc_row [%" PRId64 "] are not a CSC (%" PRId64
                " bad pointers, %" PRId64 " row indices outside [0, %" PRId64 "))",
                op, s.c_str(), cols + 1, nnz, bad[0], bad[1], rows);
  MK_CHECK(check_ptr(op, "x", x, cols * heads * width));
  MK_CHECK(check_ptr(op, "s_src", s_src, cols * heads));
  MK_CHECK(check_ptr(op, "s_dst", s_dst, rows * heads));
  MK_CHECK(check_ptr(op, "lse", lse, rows * heads));
  MK_CHECK(check_ptr(op, "grad_out", grad_out, rows * heads * width));
  if (grad_x) MK_CHECK(check_ptr(op, "grad_x", grad_x, cols * heads * width));
  if (grad_s_src) MK_CHECK(check_ptr(op, "grad_s_src", grad_s_src, cols * heads));
  if (grad_s_dst) MK_CHECK(check_ptr(op, "grad_s_dst", grad_s_dst, rows * heads));
  if ((grad_s_src || grad_s_dst) && !row_dot)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s: row_dot [%" PRId64 ", %" PRId64 "] is needed for grad_s_src or grad_s_dst",
                op, s.c_str(), rows, heads);
  if (row_dot) MK_CHECK(check_ptr(op, "row_dot", row_dot, rows * heads));
  if (rows == 0) return MK_OK;
  GraphScratch ws;
  MK_CHECK(ws.take(op, s, device,
                   t->graph_gat_workspace(dtype, mk::kGatPassBackward, rows, nnz, heads, width, row_ptr, col_ptr), true,
                   stream));
  return kernel_status(op, device,
                       t->graph_gat_backward_split(dtype, rows, nnz, heads, width, negative_slope, row_ptr, col,
                                                   col_ptr, csc_row, x, s_src, s_dst, lse, grad_out, grad_x,
                                                   grad_s_src, grad_s_dst, row_dot, ws.ptr, ws.bytes, stream));
}

}  // extern "C"
