// Launch helpers shared by the CUDA graph kernels (graph.cu, gat.cu): a one-dimensional grid of
// THREADS-thread blocks through cudaLaunchKernelEx (so the kernels also run under the host
// emulator, tests/cuda-emu), and the lane count of a group.
#pragma once

#include <climits>
#include <cstdint>

#include "common.cuh"

namespace mk {
namespace cuda {

// The smallest power of two >= n, at most 32 (lanes of a group within one warp).
inline int pow2_at_least(int64_t n) {
  int g = 1;
  while (g < 32 && g < n) g *= 2;
  return g;
}

// kernel<<<ceil(threads_total / THREADS), THREADS, 0, stream>>>(args...); 0 or the CUDA error.
template <int THREADS, class... KArgs, class... Args>
int launch_1d(void (*kernel)(KArgs...), int64_t threads_total, cudaStream_t stream, Args... args) {
  if (threads_total <= 0) return 0;
  return launch_grid(kernel, (threads_total + THREADS - 1) / THREADS, THREADS, 0, stream, args...);
}

}  // namespace cuda
}  // namespace mk
