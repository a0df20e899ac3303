// When a CPU kernel forks OpenMP threads. The thread count itself is the calling thread's
// OpenMP ICV, which native/ sets at every CPU entry point from mk_runtime_set_num_threads.
#pragma once
#include <omp.h>

#include <cstdint>

namespace mk {
namespace cpu {

constexpr int64_t kMinParallel = 1 << 15;  // elements; below this a fork costs more than it saves

inline bool parallel_worth(int64_t work) { return work >= kMinParallel && omp_get_max_threads() > 1; }

}  // namespace cpu
}  // namespace mk
