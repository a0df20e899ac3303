// Helpers shared by the CUDA kernel files.
#pragma once
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "mk/codes.h"
#include "mk/strided.h"

namespace mk {
namespace cuda {

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// Grid for a flat loop over n elements with a grid-stride loop inside the kernel.
inline unsigned grid_for(int64_t n, int block = 256) {
  int64_t g = (n + block - 1) / block;
  if (g > 65535LL * 32) g = 65535LL * 32;
  if (g < 1) g = 1;
  return unsigned(g);
}

// Collapsed strided shape passed by value to kernels.
struct Geometry {
  int rank;
  int64_t shape[MK_MAX_RANK];
  int64_t strides[3][MK_MAX_RANK];
};

inline Geometry to_geometry(const StridedShape& s) {
  Geometry g{};
  g.rank = s.rank;
  for (int d = 0; d < s.rank; ++d) {
    g.shape[d] = s.shape[d];
    for (int k = 0; k < 3; ++k) g.strides[k][d] = s.strides[k][d];
  }
  return g;
}

// Offset of operand k for linear (row-major) index i over the geometry.
__device__ __forceinline__ int64_t offset_of(const Geometry& g, int k, int64_t i) {
  int64_t off = 0;
  for (int d = g.rank - 1; d >= 0; --d) {
    const int64_t n = g.shape[d];
    off += (i % n) * g.strides[k][d];
    i /= n;
  }
  return off;
}

inline int last_error() { return int(cudaGetLastError()); }

// Compute capability major of the current device, 0 when it cannot be read: the one helper behind
// the launchers' architecture checks (tensor_core.cu, tensor_core_dd.cu, simt2.cu, simt2_dd.cu).
inline int device_arch_major() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return 0;
  return major;
}

// kernel<<<blocks, threads, smem, stream>>>(args...) on a one-dimensional grid through
// cudaLaunchKernelEx (so the host emulator, tests/cuda-emu, runs it too); 0 or the CUDA error.
template <class... KArgs, class... Args>
int launch_grid(void (*kernel)(KArgs...), int64_t blocks, int threads, size_t smem, cudaStream_t stream,
                Args... args) {
  if (blocks < 1 || blocks > int64_t(INT_MAX)) return int(cudaErrorInvalidConfiguration);
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(blocks), 1, 1);
  cfg.blockDim = dim3(unsigned(threads), 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = nullptr;
  cfg.numAttrs = 0;
  const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, args...);
  if (e != cudaSuccess) return int(e);
  return last_error();
}

}  // namespace cuda
}  // namespace mk
