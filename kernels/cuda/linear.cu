// The epilogue and the activation gradient of the fused linear layer on CUDA, the twins of
// kernels/cpu/linear.cpp (same signatures, mk/kernels.inc). The GEMMs around them are cuBLAS
// calls made by native/src/linear.cpp (the path of mk_dense_matmul_forward), on the call's stream.
//
//   epilogue  y[i] = act(y[i] + b[i mod cols]): a grid-stride loop, one element per thread.
//   grad      gz[i] = gy[i] act'(y[i]) (act' written in y: mk/linear_act.h), a grid-stride loop;
//             then gb[c] = Σ_r gz[r, c]: one thread per column c summing the rows in order in
//             double (consecutive threads read consecutive columns: coalesced), no atomics, so
//             the result is the CPU twin's sum to the rounding of the final cast. Without gz the
//             column kernel forms gy act'(y) itself.
//   mse       forward: blocks over fixed chunks of n (mse_parts: a function of n alone), in each a
//             strided sum per thread in double and a fixed tree in shared memory, the block
//             partials in scratch and one block folding them in block order (deterministic, no
//             atomics); n up to kMseChunk, or no scratch: one block, the same per-block sum.
//             backward: gp = (2/n) g (p − t), gt = −gp, a grid-stride loop.
// tanh and sigmoid use the CUDA maths library (the CPU uses mk/vec_math.h): the outputs agree to
// a few ulp, not bitwise. The grids depend on the sizes alone. Launched through
// cudaLaunchKernelEx (launch_grid), so the host emulator (tests/cuda-emu/linear_emu_test.cpp) runs
// them against the CPU twin.
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"
#include "mk/kernels.h"
#include "mk/linear_act.h"

namespace mk {
namespace cuda {

extern __shared__ __align__(16) unsigned char mk_linear_smem[];

struct LinearCudaTraits {
  static constexpr int kThreads = 256;
  static constexpr int64_t kMaxBlocks = 65535;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, one block");
};

namespace {

template <int ACT, class T>
__device__ __forceinline__ T activate(T z) {
  if constexpr (ACT == MK_LINEAR_ACT_RELU) {
    return z > T(0) || z != z ? z : T(0);  // NaN stays NaN, as Dense.relu
  } else if constexpr (ACT == MK_LINEAR_ACT_TANH) {
    return tanh(z);
  } else if constexpr (ACT == MK_LINEAR_ACT_SIGMOID) {
    const T e = exp(-fabs(z));  // as the CPU's vmath::sigmoid: no overflow on either side
    return (z >= T(0) ? T(1) : e) / (T(1) + e);
  } else {
    return z;
  }
}

template <int ACT, class T>
__global__ void __launch_bounds__(LinearCudaTraits::kThreads)
    epilogue_kernel(int64_t n, int64_t cols, T* y, const T* bias) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T z = bias ? y[i] + bias[i % cols] : y[i];
    y[i] = activate<ACT>(z);
  }
}

template <int ACT, class T>
__global__ void __launch_bounds__(LinearCudaTraits::kThreads) grad_z_kernel(int64_t n, const T* gy, const T* y, T* gz) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    gz[i] = ACT == MK_LINEAR_ACT_IDENTITY ? gy[i] : gy[i] * linear_act_derivative<ACT>(y[i]);
}

// gb[c] = Σ_r src[r, c] (src = gz), or Σ_r gy[r, c] act'(y[r, c]) when gz is null.
template <int ACT, class T>
__global__ void __launch_bounds__(LinearCudaTraits::kThreads)
    grad_bias_kernel(int64_t rows, int64_t cols, const T* gy, const T* y, const T* gz, T* gb) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += stride) {
    double acc = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * cols + c;
      if (gz)
        acc += double(gz[i]);
      else if (ACT == MK_LINEAR_ACT_IDENTITY)
        acc += double(gy[i]);
      else
        acc += double(gy[i] * linear_act_derivative<ACT>(y[i]));
    }
    gb[c] = T(acc);
  }
}

// The fixed tree over a block's per-thread double sums in shared memory (kThreads of them).
__device__ __forceinline__ double mse_block_tree(double acc) {
  double* part = reinterpret_cast<double*>(mk_linear_smem);
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int half = LinearCudaTraits::kThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  return part[0];
}

// mse forward, one block: thread j sums (p − t)² over i = j, j + kThreads, ... in double, then the
// fixed tree: the bits depend on n alone. The path for short n, and for long n without scratch.
template <class T>
__global__ void __launch_bounds__(LinearCudaTraits::kThreads)
    mse_forward_kernel(int64_t n, const T* p, const T* t, T* out) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double d = double(p[i]) - double(t[i]);
    acc += d * d;
  }
  const double total = mse_block_tree(acc);
  if (threadIdx.x == 0) out[0] = T(total / double(n));
}

// The split: n cut into `parts` chunks of `chunk` elements (the last one shorter), a block per
// chunk summing as mse_forward_kernel does over its chunk, the partial to part_sums[block].
template <class T>
__global__ void __launch_bounds__(LinearCudaTraits::kThreads)
    mse_partial_kernel(int64_t n, int64_t chunk, const T* p, const T* t, double* part_sums) {
  const int64_t begin = int64_t(blockIdx.x) * chunk;
  const int64_t end = begin + chunk < n ? begin + chunk : n;
  double acc = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double d = double(p[i]) - double(t[i]);
    acc += d * d;
  }
  const double total = mse_block_tree(acc);
  if (threadIdx.x == 0) part_sums[blockIdx.x] = total;
}

// The second pass, one block: thread j adds partials j, j + kThreads, ... in order, then the tree.
template <class T>
__global__ void __launch_bounds__(LinearCudaTraits::kThreads)
    mse_finish_kernel(int64_t n, int64_t parts, const double* part_sums, T* out) {
  double acc = 0;
  for (int64_t b = threadIdx.x; b < parts; b += blockDim.x) acc += part_sums[b];
  const double total = mse_block_tree(acc);
  if (threadIdx.x == 0) out[0] = T(total / double(n));
}

// The split plan, a function of n alone: chunks of at least kMseChunk elements, at most
// kMseMaxParts of them (1: no split).
constexpr int64_t kMseChunk = int64_t(1) << 15;
constexpr int64_t kMseMaxParts = 1024;
int64_t mse_parts(int64_t n) {
  if (n <= kMseChunk) return 1;
  const int64_t parts = (n + kMseChunk - 1) / kMseChunk;
  return parts < kMseMaxParts ? parts : kMseMaxParts;
}

template <class T>
__global__ void __launch_bounds__(LinearCudaTraits::kThreads)
    mse_backward_kernel(int64_t n, const T* p, const T* t, const T* g, double scale, T* gp, T* gt) {
  const T coef = T(scale * double(g[0]));
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T v = coef * (p[i] - t[i]);
    if (gp) gp[i] = v;
    if (gt) gt[i] = -v;
  }
}

int64_t blocks_for(int64_t work) {
  const int64_t b = (work + LinearCudaTraits::kThreads - 1) / LinearCudaTraits::kThreads;
  return b < 1 ? 1 : (b > LinearCudaTraits::kMaxBlocks ? LinearCudaTraits::kMaxBlocks : b);
}

template <int ACT, class T>
int run_epilogue(int64_t rows, int64_t cols, void* y, const void* bias, void* stream) {
  const int64_t n = rows * cols;
  if (n == 0) return 0;
  return launch_grid(epilogue_kernel<ACT, T>, blocks_for(n), LinearCudaTraits::kThreads, 0, as_stream(stream), n, cols,
                     static_cast<T*>(y), static_cast<const T*>(bias));
}

template <int ACT, class T>
int run_grad(int64_t rows, int64_t cols, const void* gy, const void* y, void* gz, void* gb, void* stream) {
  const int64_t n = rows * cols;
  if (gz && n > 0) {
    const int e = launch_grid(grad_z_kernel<ACT, T>, blocks_for(n), LinearCudaTraits::kThreads, 0, as_stream(stream), n,
                              static_cast<const T*>(gy), static_cast<const T*>(y), static_cast<T*>(gz));
    if (e != 0) return e;
  }
  if (!gb || cols == 0) return 0;
  return launch_grid(grad_bias_kernel<ACT, T>, blocks_for(cols), LinearCudaTraits::kThreads, 0, as_stream(stream), rows,
                     cols, static_cast<const T*>(gy), static_cast<const T*>(y), static_cast<const T*>(gz),
                     static_cast<T*>(gb));
}

}  // namespace

int linear_act_epilogue(int dtype, int act, int64_t rows, int64_t cols, void* y, const void* bias, void* stream) {
  return with_linear_act(act, [&](auto a) {
    constexpr int A = decltype(a)::value;
    if (dtype == MK_F32) return run_epilogue<A, float>(rows, cols, y, bias, stream);
    if (dtype == MK_F64) return run_epilogue<A, double>(rows, cols, y, bias, stream);
    return KERNEL_UNSUPPORTED;
  });
}

int linear_act_grad(int dtype, int act, int64_t rows, int64_t cols, const void* gy, const void* y, void* gz, void* gb,
                    void* stream) {
  return with_linear_act(act, [&](auto a) {
    constexpr int A = decltype(a)::value;
    if (dtype == MK_F32) return run_grad<A, float>(rows, cols, gy, y, gz, gb, stream);
    if (dtype == MK_F64) return run_grad<A, double>(rows, cols, gy, y, gz, gb, stream);
    return KERNEL_UNSUPPORTED;
  });
}

int mse_forward(int dtype, int64_t n, const void* p, const void* t, void* out, void* stream) {
  const size_t smem = LinearCudaTraits::kThreads * sizeof(double);
  if (dtype == MK_F32)
    return launch_grid(mse_forward_kernel<float>, 1, LinearCudaTraits::kThreads, smem, as_stream(stream), n,
                       static_cast<const float*>(p), static_cast<const float*>(t), static_cast<float*>(out));
  if (dtype == MK_F64)
    return launch_grid(mse_forward_kernel<double>, 1, LinearCudaTraits::kThreads, smem, as_stream(stream), n,
                       static_cast<const double*>(p), static_cast<const double*>(t), static_cast<double*>(out));
  return KERNEL_UNSUPPORTED;
}

int64_t mse_workspace(int64_t n) {
  const int64_t parts = mse_parts(n);
  return parts > 1 ? parts * int64_t(sizeof(double)) : 0;
}

namespace {
template <class T>
int run_mse_split(int64_t n, const void* p, const void* t, void* out, void* workspace, void* stream) {
  const int64_t parts = mse_parts(n);
  const int64_t chunk = (n + parts - 1) / parts;
  const size_t smem = LinearCudaTraits::kThreads * sizeof(double);
  double* part_sums = static_cast<double*>(workspace);
  const int e = launch_grid(mse_partial_kernel<T>, parts, LinearCudaTraits::kThreads, smem, as_stream(stream), n, chunk,
                            static_cast<const T*>(p), static_cast<const T*>(t), part_sums);
  if (e != 0) return e;
  return launch_grid(mse_finish_kernel<T>, 1, LinearCudaTraits::kThreads, smem, as_stream(stream), n, parts,
                     static_cast<const double*>(part_sums), static_cast<T*>(out));
}
}  // namespace

int mse_forward_split(int dtype, int64_t n, const void* p, const void* t, void* out, void* workspace,
                      int64_t workspace_bytes, void* stream) {
  const int64_t need = mse_workspace(n);
  if (need == 0 || !workspace || workspace_bytes < need) return mse_forward(dtype, n, p, t, out, stream);
  if (dtype == MK_F32) return run_mse_split<float>(n, p, t, out, workspace, stream);
  if (dtype == MK_F64) return run_mse_split<double>(n, p, t, out, workspace, stream);
  return KERNEL_UNSUPPORTED;
}

int mse_backward(int dtype, int64_t n, const void* p, const void* t, const void* g, double scale, void* gp, void* gt,
                 void* stream) {
  if (n == 0) return 0;
  if (dtype == MK_F32)
    return launch_grid(mse_backward_kernel<float>, blocks_for(n), LinearCudaTraits::kThreads, 0, as_stream(stream), n,
                       static_cast<const float*>(p), static_cast<const float*>(t), static_cast<const float*>(g), scale,
                       static_cast<float*>(gp), static_cast<float*>(gt));
  if (dtype == MK_F64)
    return launch_grid(mse_backward_kernel<double>, blocks_for(n), LinearCudaTraits::kThreads, 0, as_stream(stream), n,
                       static_cast<const double*>(p), static_cast<const double*>(t), static_cast<const double*>(g),
                       scale, static_cast<double*>(gp), static_cast<double*>(gt));
  return KERNEL_UNSUPPORTED;
}

}  // namespace cuda
}  // namespace mk
