// Strided iteration helpers shared by the CPU kernels (and the CUDA launchers, on the host).
#pragma once
#include <cstdint>
#include "mk/codes.h"
#include "mk/isa_ns.h"

namespace mk {

// Up to three operands (plus a contiguous output) iterated over one shape. Collapsing merges
// adjacent dims that are contiguous for every operand, and drops size-1 dims, so a contiguous
// tensor becomes rank 1 and the innermost loop is as long as possible.
struct StridedShape {
  int rank = 0;
  int64_t shape[MK_MAX_RANK] = {};
  int64_t strides[3][MK_MAX_RANK] = {};  // per operand
  int64_t out_strides[MK_MAX_RANK] = {};  // contiguous output strides after collapsing
  int64_t numel = 1;
};

MK_ISA_BEGIN

inline StridedShape collapse(int rank, const int64_t* shape, int n_operands,
                             const int64_t* const* strides) {
  StridedShape s;
  // Drop size-1 dims.
  int64_t sh[MK_MAX_RANK];
  int64_t st[3][MK_MAX_RANK];
  int r = 0;
  s.numel = 1;
  for (int d = 0; d < rank; ++d) {
    s.numel *= shape[d];
    if (shape[d] == 1) continue;
    sh[r] = shape[d];
    for (int k = 0; k < n_operands; ++k) st[k][r] = strides[k][d];
    ++r;
  }
  if (s.numel == 0) { s.rank = 0; return s; }
  // Merge dim d into d+1 when every operand has stride[d] == stride[d+1] * shape[d+1].
  int out = 0;
  for (int d = 0; d < r; ++d) {
    if (out > 0) {
      bool mergeable = true;
      for (int k = 0; k < n_operands; ++k)
        if (s.strides[k][out - 1] != st[k][d] * sh[d]) { mergeable = false; break; }
      if (mergeable) {
        s.shape[out - 1] *= sh[d];
        for (int k = 0; k < n_operands; ++k) s.strides[k][out - 1] = st[k][d];
        continue;
      }
    }
    s.shape[out] = sh[d];
    for (int k = 0; k < n_operands; ++k) s.strides[k][out] = st[k][d];
    ++out;
  }
  s.rank = out;
  int64_t acc = 1;
  for (int d = s.rank - 1; d >= 0; --d) { s.out_strides[d] = acc; acc *= s.shape[d]; }
  return s;
}

// Offsets of operand k for the "row" `row` of a collapsed shape whose last dim is the row.
inline void row_offsets(const StridedShape& s, int n_operands, int64_t row, int64_t* offs) {
  for (int k = 0; k < n_operands; ++k) offs[k] = 0;
  for (int d = s.rank - 2; d >= 0; --d) {
    int64_t i = row % s.shape[d];
    row /= s.shape[d];
    for (int k = 0; k < n_operands; ++k) offs[k] += i * s.strides[k][d];
  }
}

// A transposed operand: the dim (< last) along which the first operand with a stride along the
// last dim other than 1 and 0 has unit stride, or -1 when there is none (every operand is then
// contiguous or broadcast along its rows). The CPU walk (mk/cpu_strided.h) and the CUDA launchers
// (kernels/cuda/dense.cu) go through tiles of that dim and the last for such shapes.
inline int transposed_dim(const StridedShape& s, int n_operands) {
  if (s.rank < 2) return -1;
  const int last = s.rank - 1;
  for (int q = 0; q < n_operands; ++q) {
    const int64_t inner = s.strides[q][last];
    if (inner == 1 || inner == 0) continue;
    for (int d = last - 1; d >= 0; --d)
      if (s.strides[q][d] == 1) return d;
  }
  return -1;
}

// Whether operand q is transposed along dim k: unit stride along k, strided along the last dim.
inline bool transposed_along(const StridedShape& s, int q, int k) {
  const int64_t inner = s.strides[q][s.rank - 1];
  return s.strides[q][k] == 1 && inner != 0 && inner != 1;
}

MK_ISA_END
}  // namespace mk
