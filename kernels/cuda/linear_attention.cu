// Linear attention product on CUDA: the twin of kernels/cpu/linear_attention.cpp.
//
//   out_j = sum_{i in M(j)} (q_j . k_i) v_i      q: [G, nq, dk]  k: [G, nk, dk]  v: [G, nk, dv]
//
// Two forms, the same C signature.
//
// Chunk-parallel (the usual path; `workspace` is linear_attention_scratch() bytes of device memory
// from native/src/linear_attention.cpp). The keys are cut into state chunks of R rows (R a multiple
// of the 64-row block; the smallest power-of-two multiple whose states fit kScratchBudget):
//   1. states: S_s = sum_{i in chunk s} k_i v_i^T ([dk, dv]) for every group and chunk at once, a
//      block per (group, chunk, 64 x 64 tile of S), rows in ascending order;
//   2. scan: per state element, over the chunks of its group in a fixed order, in place: the
//      exclusive prefix (causal), the exclusive suffix (anti-causal) or the total into chunk 0
//      (no mask);
//   3. output: a block per (group, 64 query rows, 64 output columns): q S for the state of every
//      key outside the rows' own chunk, then, for the masked products, each 64-key block of that
//      chunk the rows may see: the masked (q k^T) block (in shared memory) times its values.
// All three are 64 x 64 register-tiled products (4 x 4 per thread, 16-deep slabs in shared
// memory). Every sum runs in a fixed order (rows ascending in a tile, chunks in scan order, q S
// before the key blocks, key blocks ascending): bitwise repeatable run to run, no atomics. The
// order differs from the CPU twin's: the two agree within rounding. Scratch G * chunks * dk * dv
// elements; memory O(n d + chunks d^2) as the issue asks, never n x n. The GPU's parallelism is
// G x chunks x tiles blocks instead of G x value tiles walking the whole sequence (the sequential
// form below; 256 blocks at [4,16,4096,128] left the H200 18 % busy).
//
// Sequential (workspace null: the scratch could not be allocated, or one state per group is over
// the budget): a block per (group, 32 output columns) walks the sequence in chunks of C rows,
// keeping its slice of S = sum k_i v_i^T in shared memory (C shrinks 64 -> 32 -> 16 when the tiles
// would not fit the device's opt-in shared memory).
//
// Launches are 1-D grids through cudaLaunchKernelEx (the host emulator, tests/cuda-emu, runs them).
#include <algorithm>
#include <climits>

#include "common.cuh"
#include "mk/kernels.h"

// Bytes the chunk states may take (a test lowers it to force long state chunks).
#ifndef MK_LINEAR_SCRATCH_BUDGET
#define MK_LINEAR_SCRATCH_BUDGET (int64_t(512) << 20)
#endif

namespace mk {
namespace cuda {

extern __shared__ __align__(16) unsigned char mk_linear_smem[];

namespace {

struct LinearAttentionTraits {
  static constexpr int kThreads = 256;
  // sequential form
  static constexpr int kValueTile = 32;  // output columns per block
  static constexpr int kMaxChunk = 64;
  static_assert(kThreads % kValueTile == 0, "threads must cover whole value tiles");
  // chunk-parallel form
  static constexpr int kTile = 64;  // rows of a query/key block = side of an output tile
  static constexpr int kSlab = 16;  // reduction depth staged in shared memory per step
  static constexpr int kMicro = 4;  // a thread's outputs: kMicro x kMicro
  static_assert((kTile / kMicro) * (kTile / kMicro) == kThreads, "one micro-tile per thread");
  static_assert(kSlab * kTile % kThreads == 0, "slab loads cover whole passes");
};
using Traits = LinearAttentionTraits;

// ---- launches ---------------------------------------------------------------------------------

template <class... KArgs, class... Args>
int launch_blocks(void (*kernel)(KArgs...), int64_t blocks, size_t smem, cudaStream_t stream, Args... args) {
  if (blocks <= 0) return 0;
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return int(e);
  }
  return launch_grid(kernel, blocks, Traits::kThreads, smem, stream, args...);
}

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
__host__ __device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- chunk-parallel form ----------------------------------------------------------------------

struct ChunkPlan {
  int64_t rows = 0;    // R, key rows per state chunk (a multiple of kTile)
  int64_t states = 0;  // chunks per group
  int64_t bytes = 0;   // scratch; 0: the sequential form
};

ChunkPlan chunk_plan(int dtype, int64_t groups, int64_t nk, int64_t dk, int64_t dv) {
  ChunkPlan p;
  if (groups <= 0 || nk <= 0) return p;
  const double per_state = double(dk) * double(dv) * (dtype == MK_F32 ? 4.0 : 8.0);
  for (int64_t rows = Traits::kTile;; rows *= 2) {
    const int64_t states = ceil_div(nk, rows);
    const double bytes = double(groups) * double(states) * per_state;
    if (bytes <= double(MK_LINEAR_SCRATCH_BUDGET)) {
      p.rows = rows;
      p.states = states;
      p.bytes = int64_t(bytes);
      return p;
    }
    if (states == 1) return p;  // one state per group is already over the budget
  }
}

template <class T>
struct Micro {
  T acc[Traits::kMicro][Traits::kMicro];
  __device__ void clear() {
#pragma unroll
    for (int i = 0; i < Traits::kMicro; ++i)
#pragma unroll
      for (int j = 0; j < Traits::kMicro; ++j) acc[i][j] = T(0);
  }
  // acc[i][j] += sum_r A[r][ra + i] * B[r][rb + j] over the kSlab rows of two [kSlab, kTile] tiles.
  __device__ void add_slab(const T* A, int ra, const T* B, int rb) {
#pragma unroll 4
    for (int r = 0; r < Traits::kSlab; ++r) {
      T a[Traits::kMicro], b[Traits::kMicro];
#pragma unroll
      for (int i = 0; i < Traits::kMicro; ++i) a[i] = A[r * Traits::kTile + ra + i];
#pragma unroll
      for (int j = 0; j < Traits::kMicro; ++j) b[j] = B[r * Traits::kTile + rb + j];
#pragma unroll
      for (int i = 0; i < Traits::kMicro; ++i)
#pragma unroll
        for (int j = 0; j < Traits::kMicro; ++j) acc[i][j] += a[i] * b[j];
    }
  }
};

// dst[r][c] = src[(row0 + r) * ld + col0 + c] for r < kSlab, c < kTile; zero outside rows x cols.
template <class T>
__device__ __forceinline__ void stage_rows(const T* src, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                                           int64_t ld, T* dst) {
  for (int idx = threadIdx.x; idx < Traits::kSlab * Traits::kTile; idx += Traits::kThreads) {
    const int r = idx / Traits::kTile, c = idx % Traits::kTile;
    const int64_t row = row0 + r, col = col0 + c;
    dst[idx] = row < rows && col < cols ? src[row * ld + col] : T(0);
  }
}

// dst[c][r] = src[(row0 + r) * ld + col0 + c] for r < kTile, c < kSlab (a transposed slab: the
// reduction index c becomes the slab row); zero outside rows x cols.
template <class T>
__device__ __forceinline__ void stage_cols(const T* src, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                                           int64_t ld, T* dst) {
  for (int idx = threadIdx.x; idx < Traits::kSlab * Traits::kTile; idx += Traits::kThreads) {
    const int r = idx / Traits::kSlab, c = idx % Traits::kSlab;
    const int64_t row = row0 + r, col = col0 + c;
    dst[c * Traits::kTile + r] = row < rows && col < cols ? src[row * ld + col] : T(0);
  }
}

template <class T>
constexpr size_t state_smem() {
  return sizeof(T) * 2 * Traits::kSlab * Traits::kTile;
}
template <class T>
constexpr size_t output_smem() {
  return sizeof(T) * (3 * Traits::kSlab * Traits::kTile + Traits::kTile * Traits::kTile);
}

// 1. S[g][s][d][e] = sum over the rows i of chunk s of k[i][d] v[i][e].
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
state_kernel(int64_t nk, int64_t dk, int64_t dv, int64_t rows, int64_t states, int64_t dtiles, int64_t etiles,
             const T* k, const T* v, T* S) {
  constexpr int TL = Traits::kTile, SL = Traits::kSlab, MI = Traits::kMicro;
  T* Ks = reinterpret_cast<T*>(mk_linear_smem);  // [SL][TL]
  T* Vs = Ks + SL * TL;                          // [SL][TL]
  int64_t b = blockIdx.x;
  const int64_t et = b % etiles;
  b /= etiles;
  const int64_t dt = b % dtiles;
  b /= dtiles;
  const int64_t s = b % states, g = b / states;
  const int64_t d0 = dt * TL, e0 = et * TL;
  const int64_t r0 = s * rows, r1 = min64(nk, r0 + rows);
  k += g * nk * dk;
  v += g * nk * dv;
  const int tr = int(threadIdx.x) / (TL / MI), tc = int(threadIdx.x) % (TL / MI);
  Micro<T> m;
  m.clear();
  for (int64_t i0 = r0; i0 < r1; i0 += SL) {
    stage_rows(k, i0, r1, d0, dk, dk, Ks);
    stage_rows(v, i0, r1, e0, dv, dv, Vs);
    __syncthreads();
    m.add_slab(Ks, tr * MI, Vs, tc * MI);
    __syncthreads();
  }
  T* out = S + (g * states + s) * dk * dv;
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < MI; ++j) {
      const int64_t d = d0 + tr * MI + i, e = e0 + tc * MI + j;
      if (d < dk && e < dv) out[d * dv + e] = m.acc[i][j];
    }
}

// 2. In place over the chunks of each group: the total into chunk 0 (mask 0), the exclusive prefix
// (1, causal) or the exclusive suffix (2, anti-causal).
template <class T>
__global__ void scan_kernel(int64_t groups, int64_t states, int64_t dkdv, int mask, T* S) {
  const int64_t total = groups * dkdv;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t g = t / dkdv, x = t % dkdv;
    T* p = S + g * states * dkdv + x;
    if (mask == 0) {
      T run = p[0];
      for (int64_t s = 1; s < states; ++s) run += p[s * dkdv];
      p[0] = run;
    } else {
      T run = T(0);
      for (int64_t step = 0; step < states; ++step) {
        const int64_t s = mask == 1 ? step : states - 1 - step;
        const T here = p[s * dkdv];
        p[s * dkdv] = run;
        run += here;
      }
    }
  }
}

// 3. out[j0 .. j0+64][e0 .. e0+64] = q S + the masked blocks of the rows' own chunk.
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
output_kernel(int mask, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int64_t rows, int64_t states,
              int64_t qblocks, int64_t etiles, const T* q, const T* k, const T* v, const T* S, T* out) {
  constexpr int TL = Traits::kTile, SL = Traits::kSlab, MI = Traits::kMicro;
  T* Qs = reinterpret_cast<T*>(mk_linear_smem);  // [SL][TL]: q slab, transposed
  T* Bs = Qs + SL * TL;                          // [SL][TL]: S rows or a k slab, transposed
  T* Vs = Bs + SL * TL;                          // [SL][TL]: v rows
  T* At = Vs + SL * TL;                          // [TL][TL]: the masked block, At[i][j] = q_j . k_i
  int64_t b = blockIdx.x;
  const int64_t et = b % etiles;
  b /= etiles;
  const int64_t qb = b % qblocks, g = b / qblocks;
  const int64_t j0 = qb * TL, e0 = et * TL;
  q += g * nq * dk;
  k += g * nk * dk;
  v += g * nk * dv;
  out += g * nq * dv;
  const int tr = int(threadIdx.x) / (TL / MI), tc = int(threadIdx.x) % (TL / MI);
  Micro<T> m;
  m.clear();
  // the state chunk of the rows (masked products: nq == nk and a block lies in one chunk)
  const int64_t s = mask == 0 ? 0 : j0 / rows;
  const bool with_state = mask == 0 || (mask == 1 ? s > 0 : s < states - 1);
  if (with_state) {
    const T* St = S + (g * states + s) * dk * dv;
    for (int64_t d0 = 0; d0 < dk; d0 += SL) {
      stage_cols(q, j0, nq, d0, dk, dk, Qs);
      stage_rows(St, d0, dk, e0, dv, dv, Bs);
      __syncthreads();
      m.add_slab(Qs, tr * MI, Bs, tc * MI);
      __syncthreads();
    }
  }
  if (mask != 0) {
    const int64_t lo = mask == 1 ? s * rows : j0;
    const int64_t hi = mask == 1 ? j0 + 1 : min64(nk, (s + 1) * rows);
    for (int64_t i0 = lo; i0 < hi; i0 += TL) {
      Micro<T> a;
      a.clear();
      for (int64_t d0 = 0; d0 < dk; d0 += SL) {
        stage_cols(q, j0, nq, d0, dk, dk, Qs);
        stage_cols(k, i0, nk, d0, dk, dk, Bs);
        __syncthreads();
        a.add_slab(Qs, tr * MI, Bs, tc * MI);  // a.acc[x][y] = q_{j0+tr*MI+x} . k_{i0+tc*MI+y}
        __syncthreads();
      }
#pragma unroll
      for (int x = 0; x < MI; ++x)
#pragma unroll
        for (int y = 0; y < MI; ++y) {
          const int64_t j = j0 + tr * MI + x, i = i0 + tc * MI + y;
          const bool seen = i < nk && (mask == 1 ? i <= j : i >= j);
          At[(tc * MI + y) * TL + tr * MI + x] = seen ? a.acc[x][y] : T(0);
        }
      __syncthreads();
      for (int ib = 0; ib < TL; ib += SL) {
        stage_rows(v, i0 + ib, nk, e0, dv, dv, Vs);
        __syncthreads();
        m.add_slab(At + ib * TL, tr * MI, Vs, tc * MI);
        __syncthreads();
      }
    }
  }
#pragma unroll
  for (int x = 0; x < MI; ++x)
#pragma unroll
    for (int y = 0; y < MI; ++y) {
      const int64_t j = j0 + tr * MI + x, e = e0 + tc * MI + y;
      if (j < nq && e < dv) out[j * dv + e] = m.acc[x][y];
    }
}

template <class T>
int run_chunked(const ChunkPlan& p, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const T* q,
                const T* k, const T* v, T* out, int mask, T* S, cudaStream_t stream) {
  const int64_t dtiles = ceil_div(dk, Traits::kTile), etiles = ceil_div(dv, Traits::kTile);
  int st = launch_blocks(state_kernel<T>, groups * p.states * dtiles * etiles, state_smem<T>(), stream, nk, dk, dv,
                         p.rows, p.states, dtiles, etiles, k, v, S);
  if (st != 0) return st;
  if (p.states > 1) {
    const int64_t cells = groups * dk * dv;
    st = launch_blocks(scan_kernel<T>, int64_t(grid_for(cells, Traits::kThreads)), 0, stream, groups, p.states,
                       dk * dv, mask, S);
    if (st != 0) return st;
  }
  const int64_t qblocks = ceil_div(nq, Traits::kTile);
  return launch_blocks(output_kernel<T>, groups * qblocks * etiles, output_smem<T>(), stream, mask, nq, nk, dk, dv,
                       p.rows, p.states, qblocks, etiles, q, k, v, static_cast<const T*>(S), out);
}

// ---- sequential form --------------------------------------------------------------------------

template <class T>
size_t smem_bytes(int dk, int chunk) {
  const int ET = Traits::kValueTile;
  return sizeof(T) * size_t(dk * ET + 2 * chunk * dk + chunk * ET + chunk * chunk);
}

__device__ __forceinline__ int chunk_len(int64_t total, int64_t c0, int C) {
  return total - c0 < C ? int(total - c0) : C;
}

template <class T>
__device__ void load_rows(const T* src, int64_t row0, int rows, int width, int64_t ld, int col0,
                          T* dst, int ldd) {
  for (int idx = threadIdx.x; idx < rows * width; idx += blockDim.x) {
    const int r = idx / width, c = idx % width;
    dst[r * ldd + c] = src[(row0 + r) * ld + col0 + c];
  }
}

template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
linear_attention_kernel(int mask, int64_t nq, int64_t nk, int dk, int dv, int C, int64_t vtiles, const T* q,
                        const T* k, const T* v, T* out) {
  constexpr int ET = Traits::kValueTile;
  T* S = reinterpret_cast<T*>(mk_linear_smem);  // [dk, ET]
  T* Qc = S + dk * ET;                          // [C, dk]
  T* Kc = Qc + C * dk;                          // [C, dk]
  T* Vc = Kc + C * dk;                          // [C, ET]
  T* A = Vc + C * ET;                           // [C, C]
  const int64_t g = blockIdx.x / vtiles;
  const int e0 = int(blockIdx.x % vtiles) * ET;
  const int et = int(min64(ET, dv - e0));
  q += g * nq * dk;
  k += g * nk * dk;
  v += g * nk * dv;
  out += g * nq * dv;
  for (int i = threadIdx.x; i < dk * ET; i += blockDim.x) S[i] = T(0);
  __syncthreads();

  if (mask == 0) {
    for (int64_t c0 = 0; c0 < nk; c0 += C) {
      const int len = chunk_len(nk, c0, C);
      load_rows(k, c0, len, dk, dk, 0, Kc, dk);
      load_rows(v, c0, len, et, dv, e0, Vc, ET);
      __syncthreads();
      for (int idx = threadIdx.x; idx < dk * et; idx += blockDim.x) {
        const int d = idx / et, e = idx % et;
        T acc = 0;
        for (int i = 0; i < len; ++i) acc += Kc[i * dk + d] * Vc[i * ET + e];
        S[d * ET + e] += acc;
      }
      __syncthreads();
    }
    for (int64_t c0 = 0; c0 < nq; c0 += C) {
      const int len = chunk_len(nq, c0, C);
      load_rows(q, c0, len, dk, dk, 0, Qc, dk);
      __syncthreads();
      for (int idx = threadIdx.x; idx < len * et; idx += blockDim.x) {
        const int j = idx / et, e = idx % et;
        T acc = 0;
        for (int d = 0; d < dk; ++d) acc += Qc[j * dk + d] * S[d * ET + e];
        out[(c0 + j) * dv + e0 + e] = acc;
      }
      __syncthreads();
    }
    return;
  }

  const int64_t n = nq;
  const int64_t chunks = (n + C - 1) / C;
  for (int64_t step = 0; step < chunks; ++step) {
    const int64_t c = mask == 1 ? step : chunks - 1 - step;
    const int64_t c0 = c * C;
    const int len = chunk_len(n, c0, C);
    load_rows(q, c0, len, dk, dk, 0, Qc, dk);
    load_rows(k, c0, len, dk, dk, 0, Kc, dk);
    load_rows(v, c0, len, et, dv, e0, Vc, ET);
    __syncthreads();
    for (int idx = threadIdx.x; idx < len * len; idx += blockDim.x) {
      const int j = idx / len, i = idx % len;
      const bool allowed = mask == 1 ? i <= j : i >= j;
      T acc = 0;
      if (allowed)
        for (int d = 0; d < dk; ++d) acc += Qc[j * dk + d] * Kc[i * dk + d];
      A[j * C + i] = acc;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < len * et; idx += blockDim.x) {
      const int j = idx / et, e = idx % et;
      T acc = 0;
      for (int d = 0; d < dk; ++d) acc += Qc[j * dk + d] * S[d * ET + e];
      for (int i = 0; i < len; ++i) acc += A[j * C + i] * Vc[i * ET + e];
      out[(c0 + j) * dv + e0 + e] = acc;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < dk * et; idx += blockDim.x) {
      const int d = idx / et, e = idx % et;
      T acc = 0;
      for (int i = 0; i < len; ++i) acc += Kc[i * dk + d] * Vc[i * ET + e];
      S[d * ET + e] += acc;
    }
    __syncthreads();
  }
}

template <class T>
int run_sequential(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const void* q, const void* k,
                   const void* v, void* out, int mask, cudaStream_t stream) {
  int dev = 0, optin = 48 * 1024;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  int chunk = Traits::kMaxChunk;
  while (chunk > 8 && smem_bytes<T>(int(dk), chunk) > size_t(optin)) chunk /= 2;
  const size_t bytes = smem_bytes<T>(int(dk), chunk);
  // the key-feature width decides the shared tile: too wide for this GPU is "unsupported"
  if (bytes > size_t(optin)) return KERNEL_UNSUPPORTED;
  const int64_t vtiles = ceil_div(dv, Traits::kValueTile);
  return launch_blocks(linear_attention_kernel<T>, groups * vtiles, bytes, stream, mask, nq, nk, int(dk), int(dv),
                       chunk, vtiles, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                       static_cast<T*>(out));
}

template <class T>
int launch(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const void* q, const void* k,
           const void* v, void* out, int mask, void* workspace, void* stream) {
  const ChunkPlan p = chunk_plan(sizeof(T) == 4 ? MK_F32 : MK_F64, groups, nk, dk, dv);
  if (workspace && p.bytes > 0)
    return run_chunked<T>(p, groups, nq, nk, dk, dv, static_cast<const T*>(q), static_cast<const T*>(k),
                          static_cast<const T*>(v), static_cast<T*>(out), mask, static_cast<T*>(workspace),
                          as_stream(stream));
  return run_sequential<T>(groups, nq, nk, dk, dv, q, k, v, out, mask, as_stream(stream));
}

template <class T>
__global__ void momentum_kernel(int64_t groups, int64_t n, int64_t d, const T* v, T* out, T decay,
                                int reverse) {
  const int64_t cols = groups * d;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < cols; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t g = t / d, e = t % d;
    const T* vg = v + g * n * d + e;
    T* og = out + g * n * d + e;
    T m = 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t j = reverse ? n - 1 - s : s;
      if (s > 0) {
        const int64_t p = reverse ? j + 1 : j - 1;
        m = decay * (m + vg[p * d]);
      }
      og[j * d] = m;
    }
  }
}

}  // namespace

int linear_attention(int dtype, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                     const void* q, const void* k, const void* v, void* out, int mask,
                     void* workspace, void* stream) {
  if (dtype == MK_F32) return launch<float>(groups, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream);
  return launch<double>(groups, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream);
}

int64_t linear_attention_workspace(int64_t, int64_t, int) { return 0; }

int64_t linear_attention_scratch(int dtype, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                                 int mask) {
  (void)nq;
  (void)mask;
  return chunk_plan(dtype, groups, nk, dk, dv).bytes;
}

int linear_attention_momentum(int dtype, int64_t groups, int64_t n, int64_t d, const void* v,
                              void* out, double decay, int reverse, void* stream) {
  const int64_t cols = groups * d;
  const int64_t blocks = int64_t(grid_for(cols, Traits::kThreads));
  if (dtype == MK_F32)
    return launch_blocks(momentum_kernel<float>, blocks, 0, as_stream(stream), groups, n, d,
                         static_cast<const float*>(v), static_cast<float*>(out), float(decay), reverse);
  return launch_blocks(momentum_kernel<double>, blocks, 0, as_stream(stream), groups, n, d,
                       static_cast<const double*>(v), static_cast<double*>(out), decay, reverse);
}

}  // namespace cuda
}  // namespace mk
