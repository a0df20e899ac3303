// Graph message passing on CUDA: the twin of kernels/cpu/graph.cpp (shapes and the CSR form in
// mk/kernels.inc and metakernels.h).
//
//   spmm:  out[r, h, :] = ⊕_{k ∈ row r} w[k, h] · x[col[k], h, :]     ⊕ ∈ {sum, mean, max, min}
//   sddmm: out[k, h]    = Σ_d a[r, h, d] · b[col[k], h, d]              for each k ∈ row r
//
// spmm: a group of G lanes (G a power of two ≤ 32, so several small rows share a warp) owns one
// row and one block of feature columns; each lane holds C chunks of VEC adjacent columns in
// registers (VEC = 4 floats or 2 doubles, one 16-byte load, where the columns and pointers allow),
// walks the row's non-zeros in CSR order and writes its columns once. Each output element is
// therefore reduced by one lane in the CPU twin's order with the CPU twin's arithmetic (sum:
// fma(w, x, acc) from 0; mean: / row length; max/min: the first of equal candidates, NaN wins):
// no atomics, bitwise equal to the CPU. kUnroll non-zeros are loaded before they are accumulated
// (in order), so several x rows are in flight per lane.
//
// sddmm: a group of G lanes owns one (non-zero, head); each lane sums its columns in order, then
// the group adds the lanes' partial sums with a fixed butterfly (__shfl_xor_sync): deterministic,
// though in another order than the CPU's, so the two agree to rounding. Every lane of a warp runs
// the same number of shuffles (no early exit), as full-mask shuffles require.
//
// The structure check counts bad row pointers and columns with integer atomics into a device
// counter (exact, so order does not matter) and copies the counts to the host.
#include <algorithm>
#include <climits>
#include <mutex>

#include "common.cuh"
#include "graph_launch.cuh"
#include "mk/kernels.h"

namespace mk {
namespace cuda {
namespace {

struct GraphTraits {
  static constexpr int kThreads = 256;  // 8 warps per block
  static constexpr int kMaxChunks = 2;  // VEC-wide column chunks per lane (registers)
  static constexpr int kUnroll = 4;     // non-zeros whose x rows are loaded before accumulating
  static_assert(kThreads % 32 == 0, "whole warps");
};
using Traits = GraphTraits;

// VEC adjacent elements, loaded and stored as one 8- or 16-byte access.
template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

template <class T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, VEC>*>(p);
}

__device__ __forceinline__ float fma_t(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_t(double a, double b, double c) { return fma(a, b, c); }

// Launch geometry of spmm and sddmm: G lanes per group, C chunks per lane, col_blocks blocks of
// G·VEC·C columns per row (spmm).
struct SpmmGeometry {
  int lanes, chunks;
  int64_t col_blocks;
};

SpmmGeometry spmm_geometry(int64_t F, int vec) {
  const int64_t lanes_needed = (F + vec - 1) / vec;
  SpmmGeometry g{};
  if (lanes_needed <= 32) {
    g.lanes = pow2_at_least(lanes_needed);
    g.chunks = 1;
  } else {
    g.lanes = 32;
    g.chunks = int(std::min<int64_t>(Traits::kMaxChunks, (lanes_needed + 31) / 32));
  }
  const int64_t block_cols = int64_t(g.lanes) * vec * g.chunks;
  g.col_blocks = (F + block_cols - 1) / block_cols;
  return g;
}

// ---- spmm ----------------------------------------------------------------------------------------
// One group per (row, column block); lane `lane` owns columns c0 + c·G·VEC + [0, VEC), c < C.
template <class T, int VEC, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    spmm_sum_kernel(int mean, int64_t rows, int lanes, int64_t col_blocks, int64_t heads, int64_t D,
                    const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col, const T* __restrict__ w,
                    const int64_t* __restrict__ widx, const T* __restrict__ x, T* __restrict__ out) {
  const int64_t F = heads * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t r = group / col_blocks;
  if (r >= rows) return;
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * VEC * C) + int64_t(lane) * VEC;
  int64_t cols[C];
  int64_t head[C];
  bool live[C];
#pragma unroll
  for (int c = 0; c < C; ++c) {
    cols[c] = c0 + int64_t(c) * lanes * VEC;
    live[c] = cols[c] < F;
    head[c] = live[c] ? cols[c] / D : 0;
  }
  T acc[C][VEC];
#pragma unroll
  for (int c = 0; c < C; ++c)
#pragma unroll
    for (int v = 0; v < VEC; ++v) acc[c][v] = T(0);
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  for (int64_t k0 = b; k0 < e; k0 += Traits::kUnroll) {
    Pack<T, VEC> p[Traits::kUnroll][C];
    T wk[Traits::kUnroll][C];
#pragma unroll
    for (int u = 0; u < Traits::kUnroll; ++u) {
      const int64_t k = k0 + u;
      if (k < e) {
        const T* xr = x + col[k] * F;
#pragma unroll
        for (int c = 0; c < C; ++c)
          if (live[c]) {
            p[u][c] = load_pack<T, VEC>(xr + cols[c]);
            // fma(1, x, acc) is acc + x exactly
            wk[u][c] = w ? w[(widx ? widx[k] : k) * heads + head[c]] : T(1);
          }
      }
    }
#pragma unroll
    for (int u = 0; u < Traits::kUnroll; ++u)
      if (k0 + u < e)
#pragma unroll
        for (int c = 0; c < C; ++c)
          if (live[c])
#pragma unroll
            for (int v = 0; v < VEC; ++v) acc[c][v] = fma_t(wk[u][c], p[u][c].v[v], acc[c][v]);
  }
  const T len = T(e - b);
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (live[c]) {
      Pack<T, VEC> o;
#pragma unroll
      for (int v = 0; v < VEC; ++v) o.v[v] = mean && e > b ? acc[c][v] / len : acc[c][v];
      *reinterpret_cast<Pack<T, VEC>*>(out + r * F + cols[c]) = o;
    }
}

// max (is_max = 1) or min: candidates w·x (x unweighted); ties keep the first, NaN wins.
template <class T, int VEC, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    spmm_extreme_kernel(int is_max, int64_t rows, int64_t nnz, int lanes, int64_t col_blocks, int64_t heads, int64_t D,
                        const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col, const T* __restrict__ w,
                        const int64_t* __restrict__ widx, const T* __restrict__ x, T* __restrict__ out,
                        int64_t* __restrict__ arg) {
  const int64_t F = heads * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t r = group / col_blocks;
  if (r >= rows) return;
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * VEC * C) + int64_t(lane) * VEC;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int64_t f = c0 + int64_t(c) * lanes * VEC;
    if (f >= F) continue;
    const int64_t h = f / D;
    T best[VEC];
    int64_t pos[VEC];
    if (b == e) {
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        best[v] = T(0);
        pos[v] = nnz;
      }
    } else {
      {
        const Pack<T, VEC> p = load_pack<T, VEC>(x + col[b] * F + f);
        const T wk = w ? w[(widx ? widx[b] : b) * heads + h] : T(1);
#pragma unroll
        for (int v = 0; v < VEC; ++v) {
          best[v] = w ? wk * p.v[v] : p.v[v];
          pos[v] = b;
        }
      }
      for (int64_t k = b + 1; k < e; ++k) {
        const Pack<T, VEC> p = load_pack<T, VEC>(x + col[k] * F + f);
        const T wk = w ? w[(widx ? widx[k] : k) * heads + h] : T(1);
#pragma unroll
        for (int v = 0; v < VEC; ++v) {
          const T cand = w ? wk * p.v[v] : p.v[v];
          const bool better = is_max ? cand > best[v] : cand < best[v];
          if (better || (cand != cand && best[v] == best[v])) {
            best[v] = cand;
            pos[v] = k;
          }
        }
      }
    }
    Pack<T, VEC> o;
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      o.v[v] = best[v];
      arg[r * F + f + v] = pos[v];
    }
    *reinterpret_cast<Pack<T, VEC>*>(out + r * F + f) = o;
  }
}

// ---- sddmm ---------------------------------------------------------------------------------------
// One group of `lanes` lanes per (non-zero k, head h), item = k·heads + h; its row r is found by
// binary search in row_ptr (rows with no non-zeros are skipped over).
template <class T, int VEC>
__global__ void __launch_bounds__(Traits::kThreads)
    sddmm_kernel(int64_t rows, int64_t nnz, int lanes, int64_t heads, int64_t D, const int64_t* __restrict__ row_ptr,
                 const int64_t* __restrict__ col, const T* __restrict__ a, const T* __restrict__ b,
                 T* __restrict__ out) {
  const int64_t F = heads * D;
  const int64_t item = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const bool valid = item < nnz * heads;  // lanes past the end still join the shuffles
  T partial = T(0);
  if (valid) {
    const int64_t k = item / heads, h = item % heads;
    int64_t lo = 0, hi = rows;  // the last r with row_ptr[r] <= k
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (row_ptr[mid] <= k)
        lo = mid;
      else
        hi = mid - 1;
    }
    const T* ar = a + lo * F + h * D;
    const T* br = b + col[k] * F + h * D;
    for (int64_t d = int64_t(lane) * VEC; d < D; d += int64_t(lanes) * VEC) {
      const Pack<T, VEC> pa = load_pack<T, VEC>(ar + d), pb = load_pack<T, VEC>(br + d);
#pragma unroll
      for (int v = 0; v < VEC; ++v) partial = fma_t(pa.v[v], pb.v[v], partial);
    }
  }
  for (int m = lanes / 2; m >= 1; m /= 2) partial += __shfl_xor_sync(0xffffffffu, partial, m);
  if (valid && lane == 0) out[item] = partial;
}

// ---- structure check -------------------------------------------------------------------------------
__device__ unsigned long long g_graph_bad[2];

__global__ void __launch_bounds__(Traits::kThreads)
    graph_check_kernel(int64_t rows, int64_t cols, int64_t nnz, const int64_t* row_ptr, const int64_t* col) {
  unsigned long long bad_ptr = 0, bad_col = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t <= rows; t += stride) {
    if (t == 0)
      bad_ptr += row_ptr[0] != 0 ? 1ull : 0ull;
    else
      bad_ptr += row_ptr[t] < row_ptr[t - 1] ? 1ull : 0ull;
    if (t == rows) bad_ptr += row_ptr[rows] != nnz ? 1ull : 0ull;
  }
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < nnz; t += stride)
    bad_col += (col[t] < 0 || col[t] >= cols) ? 1ull : 0ull;
  if (bad_ptr) atomicAdd(&g_graph_bad[0], bad_ptr);
  if (bad_col) atomicAdd(&g_graph_bad[1], bad_col);
}

template <class T, int VEC>
bool aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % (sizeof(T) * VEC) == 0;
}

template <class T, int VEC>
int spmm_launch(int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t D, const int64_t* row_ptr,
                const int64_t* col, const T* w, const int64_t* widx, const T* x, T* out, int64_t* arg, cudaStream_t s) {
  const SpmmGeometry g = spmm_geometry(heads * D, VEC);
  const int64_t threads = rows * g.col_blocks * g.lanes;
  const bool extreme = reduce == MK_GRAPH_REDUCE_MAX || reduce == MK_GRAPH_REDUCE_MIN;
  if (extreme) {
    const int is_max = reduce == MK_GRAPH_REDUCE_MAX;
    if (g.chunks == 1)
      return launch_1d<Traits::kThreads>(spmm_extreme_kernel<T, VEC, 1>, threads, s, is_max, rows, nnz, g.lanes, g.col_blocks, heads, D,
                    row_ptr, col, w, widx, x, out, arg);
    return launch_1d<Traits::kThreads>(spmm_extreme_kernel<T, VEC, Traits::kMaxChunks>, threads, s, is_max, rows, nnz, g.lanes, g.col_blocks,
                  heads, D, row_ptr, col, w, widx, x, out, arg);
  }
  const int mean = reduce == MK_GRAPH_REDUCE_MEAN;
  if (g.chunks == 1)
    return launch_1d<Traits::kThreads>(spmm_sum_kernel<T, VEC, 1>, threads, s, mean, rows, g.lanes, g.col_blocks, heads, D, row_ptr, col, w,
                  widx, x, out);
  return launch_1d<Traits::kThreads>(spmm_sum_kernel<T, VEC, Traits::kMaxChunks>, threads, s, mean, rows, g.lanes, g.col_blocks, heads, D,
                row_ptr, col, w, widx, x, out);
}

template <class T>
int spmm_t(int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t D, const int64_t* row_ptr, const int64_t* col,
           const T* w, const int64_t* widx, const T* x, T* out, int64_t* arg, cudaStream_t s) {
  constexpr int kVec = 16 / sizeof(T);  // 4 floats or 2 doubles
  if (D % kVec == 0 && aligned<T, kVec>(x) && aligned<T, kVec>(out))
    return spmm_launch<T, kVec>(reduce, rows, nnz, heads, D, row_ptr, col, w, widx, x, out, arg, s);
  return spmm_launch<T, 1>(reduce, rows, nnz, heads, D, row_ptr, col, w, widx, x, out, arg, s);
}

template <class T>
int sddmm_t(int64_t rows, int64_t nnz, int64_t heads, int64_t D, const int64_t* row_ptr, const int64_t* col, const T* a,
            const T* b, T* out, cudaStream_t s) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = D % kVec == 0 && aligned<T, kVec>(a) && aligned<T, kVec>(b);
  const int lanes = pow2_at_least(vec ? D / kVec : D);
  const int64_t threads = nnz * heads * lanes;
  if (vec) return launch_1d<Traits::kThreads>(sddmm_kernel<T, kVec>, threads, s, rows, nnz, lanes, heads, D, row_ptr, col, a, b, out);
  return launch_1d<Traits::kThreads>(sddmm_kernel<T, 1>, threads, s, rows, nnz, lanes, heads, D, row_ptr, col, a, b, out);
}

}  // namespace

int graph_spmm(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width, const int64_t* row_ptr,
               const int64_t* col, const void* weight, const int64_t* weight_index, const void* x, void* out,
               int64_t* arg, void* stream) {
  if (reduce < 0 || reduce >= MK_GRAPH_REDUCE_COUNT) return KERNEL_UNSUPPORTED;
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    return spmm_t(reduce, rows, nnz, heads, width, row_ptr, col, static_cast<const float*>(weight), weight_index,
                  static_cast<const float*>(x), static_cast<float*>(out), arg, s);
  if (dtype == MK_F64)
    return spmm_t(reduce, rows, nnz, heads, width, row_ptr, col, static_cast<const double*>(weight), weight_index,
                  static_cast<const double*>(x), static_cast<double*>(out), arg, s);
  return KERNEL_UNSUPPORTED;
}

int graph_sddmm(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, const int64_t* row_ptr,
                const int64_t* col, const void* a, const void* b, void* out, void* stream) {
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    return sddmm_t(rows, nnz, heads, width, row_ptr, col, static_cast<const float*>(a), static_cast<const float*>(b),
                   static_cast<float*>(out), s);
  if (dtype == MK_F64)
    return sddmm_t(rows, nnz, heads, width, row_ptr, col, static_cast<const double*>(a), static_cast<const double*>(b),
                   static_cast<double*>(out), s);
  return KERNEL_UNSUPPORTED;
}

int graph_check(int64_t rows, int64_t cols, int64_t nnz, const int64_t* row_ptr, const int64_t* col, int64_t* bad,
                void* stream) {
  // one counter pair per device: the reset-count-read runs under a lock (as index_check's does)
  static std::mutex lock;
  std::lock_guard<std::mutex> guard(lock);
  auto s = as_stream(stream);
  const unsigned long long zero[2] = {0, 0};
  cudaError_t e = cudaMemcpyToSymbolAsync(g_graph_bad, zero, sizeof zero, 0, cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) return int(e);
  const int64_t n = std::max(rows + 1, nnz);
  const int blocks = int(std::min<int64_t>((n + Traits::kThreads - 1) / Traits::kThreads, 4096));
  const int st =
      launch_grid(graph_check_kernel, std::max(blocks, 1), Traits::kThreads, 0, s, rows, cols, nnz, row_ptr, col);
  if (st != 0) return st;
  unsigned long long counts[2] = {0, 0};
  e = cudaMemcpyFromSymbolAsync(counts, g_graph_bad, sizeof counts, 0, cudaMemcpyDeviceToHost, s);
  if (e != cudaSuccess) return int(e);
  e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return int(e);
  bad[0] = int64_t(counts[0]);
  bad[1] = int64_t(counts[1]);
  return last_error();
}

}  // namespace cuda
}  // namespace mk
