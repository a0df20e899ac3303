// The epilogue and the activation gradient of the fused linear layer on the CPU (MK_MULTI_ISA:
// compiled for AVX2 and for AVX-512; the AVX2 build also holds the dispatchers). The GEMMs around
// them run in native/src/linear.cpp through the matmul path (BLAS). Shapes: mk/kernels.inc.
//
//   forward   y = act(x Wᵀ + b):   the GEMM writes z = x Wᵀ into y, then linear_act_epilogue
//             adds b and applies act row by row, in place (one pass over y).
//   backward  gz = gy ⊙ act'(z), with act' written in y (mk/linear_act.h), and gb = Σ_rows gz:
//             linear_act_grad, one pass for gz and one over column blocks for gb (each column
//             summed in row order, double accumulators for F32: deterministic for any thread
//             count); the GEMMs gx = gz W and gW = gzᵀ x follow in native/.
//   mse       out = Σ (p − t)² / n in double over fixed segments (deterministic), and its gradient
//             gp = (2/n) g (p − t), gt = −gp in one pass.
// Small calls never enter libgomp (mk/cpu_parallel.h): a [32, 64] layer is one plain loop.
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "mk/cpu_parallel.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"
#include "mk/linear_act.h"
#include "mk/vec_math.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

template <int ACT, class T>
inline T activate(T z) {
  if constexpr (ACT == MK_LINEAR_ACT_RELU) {
    return z > T(0) || z != z ? z : T(0);  // NaN stays NaN, as Dense.relu
  } else if constexpr (ACT == MK_LINEAR_ACT_TANH) {
    return vmath::tanh(z);
  } else if constexpr (ACT == MK_LINEAR_ACT_SIGMOID) {
    return vmath::sigmoid(z);
  } else {
    return z;
  }
}

template <int ACT, class T>
void epilogue(int64_t rows, int64_t cols, T* y, const T* bias) {
  const bool fork = parallel_worth(rows * cols);
  parallel_for(rows, fork, [&](int64_t r) {
    T* row = y + r * cols;
    if (bias) {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) row[c] = activate<ACT>(row[c] + bias[c]);
    } else {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) row[c] = activate<ACT>(row[c]);
    }
  });
}

// Σ_r src[r, c] for c in [c0, c0 + n), n <= kBlock, in row order.
constexpr int64_t kBlock = 64;
template <class T>
void column_sums(int64_t rows, int64_t cols, int64_t c0, int64_t n, const T* src, T* out) {
  using Acc = double;
  Acc acc[kBlock];
  for (int64_t j = 0; j < n; ++j) acc[j] = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = src + r * cols + c0;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) acc[j] += Acc(row[j]);
  }
  for (int64_t j = 0; j < n; ++j) out[c0 + j] = T(acc[j]);
}

// As column_sums of gy ⊙ act'(y), without writing the product (the gz-less path of gb).
template <int ACT, class T>
void column_sums_of_product(int64_t rows, int64_t cols, int64_t c0, int64_t n, const T* gy, const T* y, T* out) {
  using Acc = double;
  Acc acc[kBlock];
  for (int64_t j = 0; j < n; ++j) acc[j] = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = gy + r * cols + c0;
    const T* yr = y + r * cols + c0;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) acc[j] += Acc(g[j] * linear_act_derivative<ACT>(yr[j]));
  }
  for (int64_t j = 0; j < n; ++j) out[c0 + j] = T(acc[j]);
}

template <int ACT, class T>
void grad(int64_t rows, int64_t cols, const T* gy, const T* y, T* gz, T* gb) {
  const bool fork = parallel_worth(rows * cols);
  if (gz && ACT != MK_LINEAR_ACT_IDENTITY) {
    parallel_for(rows, fork, [&](int64_t r) {
      const T* g = gy + r * cols;
      const T* yr = y + r * cols;
      T* out = gz + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) out[c] = g[c] * linear_act_derivative<ACT>(yr[c]);
    });
  } else if (gz) {
    parallel_for(rows, fork, [&](int64_t r) { std::copy(gy + r * cols, gy + (r + 1) * cols, gz + r * cols); });
  }
  if (!gb) return;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  parallel_for(blocks, fork && blocks > 1, [&](int64_t b) {
    const int64_t c0 = b * kBlock, n = std::min(kBlock, cols - c0);
    if (gz || ACT == MK_LINEAR_ACT_IDENTITY)
      column_sums(rows, cols, c0, n, gz ? gz : gy, gb);
    else
      column_sums_of_product<ACT>(rows, cols, c0, n, gy, y, gb);
  });
}

// ---- the fused mean squared error ------------------------------------------------------------
// Σ (p − t)² in double over kSegments fixed segments of n (each summed in index order), then the
// segments in order: the bits depend on n alone, whatever the thread count.
constexpr int64_t kSegments = 64;
constexpr int64_t kSegmentedFrom = 1 << 15;  // n from which the segmented order is used (fixed: it sets the bits)
template <class T>
double squared_distance(int64_t n, const T* p, const T* t) {
  if (n < kSegmentedFrom) {
    double acc = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = double(p[i]) - double(t[i]);
      acc += d * d;
    }
    return acc;
  }
  double part[kSegments];
  const int64_t seg = (n + kSegments - 1) / kSegments;
  parallel_for(kSegments, parallel_worth(n), [&](int64_t k) {
    const int64_t i0 = std::min(n, k * seg), i1 = std::min(n, i0 + seg);
    double acc = 0;
    for (int64_t i = i0; i < i1; ++i) {
      const double d = double(p[i]) - double(t[i]);
      acc += d * d;
    }
    part[k] = acc;
  });
  double acc = 0;
  for (int64_t k = 0; k < kSegments; ++k) acc += part[k];
  return acc;
}

template <class T>
void mse_grad(int64_t n, const T* p, const T* t, T coef, T* gp, T* gt) {
  const bool fork = parallel_worth(n);
  if (gp && gt) {
    parallel_for_simd(n, fork, [&](int64_t i) {
      const T v = coef * (p[i] - t[i]);
      gp[i] = v;
      gt[i] = -v;
    });
  } else if (gp) {
    parallel_for_simd(n, fork, [&](int64_t i) { gp[i] = coef * (p[i] - t[i]); });
  } else if (gt) {
    parallel_for_simd(n, fork, [&](int64_t i) { gt[i] = -(coef * (p[i] - t[i])); });
  }
}

}  // namespace

int linear_act_epilogue(int dtype, int act, int64_t rows, int64_t cols, void* y, const void* bias, void*) {
  return with_linear_act(act, [&](auto a) {
    constexpr int A = decltype(a)::value;
    if (dtype == MK_F32)
      epilogue<A>(rows, cols, static_cast<float*>(y), static_cast<const float*>(bias));
    else if (dtype == MK_F64)
      epilogue<A>(rows, cols, static_cast<double*>(y), static_cast<const double*>(bias));
    else
      return KERNEL_UNSUPPORTED;
    return 0;
  });
}

int linear_act_grad(int dtype, int act, int64_t rows, int64_t cols, const void* gy, const void* y, void* gz, void* gb,
                    void*) {
  return with_linear_act(act, [&](auto a) {
    constexpr int A = decltype(a)::value;
    if (dtype == MK_F32)
      grad<A>(rows, cols, static_cast<const float*>(gy), static_cast<const float*>(y), static_cast<float*>(gz),
              static_cast<float*>(gb));
    else if (dtype == MK_F64)
      grad<A>(rows, cols, static_cast<const double*>(gy), static_cast<const double*>(y), static_cast<double*>(gz),
              static_cast<double*>(gb));
    else
      return KERNEL_UNSUPPORTED;
    return 0;
  });
}

int mse_forward(int dtype, int64_t n, const void* p, const void* t, void* out, void*) {
  if (dtype == MK_F32)
    *static_cast<float*>(out) =
        float(squared_distance(n, static_cast<const float*>(p), static_cast<const float*>(t)) / double(n));
  else if (dtype == MK_F64)
    *static_cast<double*>(out) =
        squared_distance(n, static_cast<const double*>(p), static_cast<const double*>(t)) / double(n);
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

int mse_backward(int dtype, int64_t n, const void* p, const void* t, const void* g, double scale, void* gp, void* gt,
                 void*) {
  if (dtype == MK_F32) {
    const float coef = float(scale * double(*static_cast<const float*>(g)));
    mse_grad(n, static_cast<const float*>(p), static_cast<const float*>(t), coef, static_cast<float*>(gp),
             static_cast<float*>(gt));
  } else if (dtype == MK_F64) {
    const double coef = scale * *static_cast<const double*>(g);
    mse_grad(n, static_cast<const double*>(p), static_cast<const double*>(t), coef, static_cast<double*>(gp),
             static_cast<double*>(gt));
  } else {
    return KERNEL_UNSUPPORTED;
  }
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) -----------------------------------------------------------
namespace avx512 {
int linear_act_epilogue(int, int, int64_t, int64_t, void*, const void*, void*);
int linear_act_grad(int, int, int64_t, int64_t, const void*, const void*, void*, void*, void*);
int mse_forward(int, int64_t, const void*, const void*, void*, void*);
int mse_backward(int, int64_t, const void*, const void*, const void*, double, void*, void*, void*);
}  // namespace avx512

int linear_act_epilogue(int dtype, int act, int64_t rows, int64_t cols, void* y, const void* bias, void* stream) {
  if (isa_level() >= 3) return avx512::linear_act_epilogue(dtype, act, rows, cols, y, bias, stream);
  return avx2::linear_act_epilogue(dtype, act, rows, cols, y, bias, stream);
}

int linear_act_grad(int dtype, int act, int64_t rows, int64_t cols, const void* gy, const void* y, void* gz, void* gb,
                    void* stream) {
  if (isa_level() >= 3) return avx512::linear_act_grad(dtype, act, rows, cols, gy, y, gz, gb, stream);
  return avx2::linear_act_grad(dtype, act, rows, cols, gy, y, gz, gb, stream);
}

int mse_forward(int dtype, int64_t n, const void* p, const void* t, void* out, void* stream) {
  if (isa_level() >= 3) return avx512::mse_forward(dtype, n, p, t, out, stream);
  return avx2::mse_forward(dtype, n, p, t, out, stream);
}

// The CPU needs no scratch: mse_forward sums in its own fixed segments (squared_distance).
int64_t mse_workspace(int64_t) { return 0; }

int mse_forward_split(int dtype, int64_t n, const void* p, const void* t, void* out, void*, int64_t, void* stream) {
  return mse_forward(dtype, n, p, t, out, stream);
}

int mse_backward(int dtype, int64_t n, const void* p, const void* t, const void* g, double scale, void* gp, void* gt,
                 void* stream) {
  if (isa_level() >= 3) return avx512::mse_backward(dtype, n, p, t, g, scale, gp, gt, stream);
  return avx2::mse_backward(dtype, n, p, t, g, scale, gp, gt, stream);
}
#endif

}  // namespace cpu
}  // namespace mk
