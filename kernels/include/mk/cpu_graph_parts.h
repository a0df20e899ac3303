// The row partition of the CPU graph kernels (kernels/cpu/graph.cpp, kernels/cpu/gat.cpp): rows
// [0, rows) of a CSR cut into parts of equal work, the work of rows [0, r) being row_ptr[r] + r
// (non-zeros plus one per row for its writes), found by binary search in row_ptr, and handed out
// dynamically to the OpenMP threads, PARTS per thread, so that the hubs of a power-law graph do not
// leave the other threads idle. A row is never split: every output row is reduced by one thread,
// which is what makes the graph kernels bitwise the same for every thread count.
//
// Included by MK_MULTI_ISA files: the definitions live in the ISA's inline namespace (mk/isa_ns.h).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "mk/cpu_parallel.h"
#include "mk/isa_ns.h"

namespace mk {
namespace cpu {
MK_ISA_BEGIN

// First row of part p when [0, rows) is cut into `parts` parts of equal work.
inline int64_t part_start(const int64_t* row_ptr, int64_t rows, int64_t p, int64_t parts) {
  if (p <= 0) return 0;
  if (p >= parts) return rows;
  const int64_t total = row_ptr[rows] + rows;
  const int64_t target = int64_t(static_cast<__int128>(total) * p / parts);
  int64_t lo = 0, hi = rows;  // the smallest r with row_ptr[r] + r >= target
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (row_ptr[mid] + mid < target)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// The threads for_each_part runs its parts on for rows [0, rows) holding nnz non-zeros:
// omp_get_max_threads(), or 1 below parallel_worth(work · columns) (the slots of per-thread scratch,
// mk/cpu_scratch.h).
inline int64_t part_threads(int64_t rows, int64_t nnz, int64_t columns) {
  const int64_t work = (nnz + rows) * std::max<int64_t>(columns, 1);
  return rows <= 1 || !parallel_worth(work) ? 1 : int64_t(omp_get_max_threads());
}

// body(r0, r1) over parts of equal work, PARTS per thread; one thread below
// parallel_worth(work · columns).
template <int64_t PARTS, class Body>
inline void for_each_part(const int64_t* row_ptr, int64_t rows, int64_t columns, Body body) {
  static_assert(PARTS >= 1, "at least one part per thread");
  if (part_threads(rows, row_ptr[rows], columns) == 1) {
    body(int64_t(0), rows);
    return;
  }
  const int64_t parts = std::min<int64_t>(rows, int64_t(omp_get_max_threads()) * PARTS);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t p = 0; p < parts; ++p)
    body(part_start(row_ptr, rows, p, parts), part_start(row_ptr, rows, p + 1, parts));
}

MK_ISA_END
}  // namespace cpu
}  // namespace mk
