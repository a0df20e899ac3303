// Linear attention product on CUDA: the twin of kernels/cpu/linear_attention.cpp.
//
//   out_j = sum_{i in M(j)} (q_j . k_i) v_i      q: [G, nq, dk]  k: [G, nk, dk]  v: [G, nk, dv]
//
// Four forms, the same C signature; the choice is made in one place, launch() below (with
// mk/linear_attention_choice.h for the opt-in recurrent form). dtype F32 / F64 computes in that type;
// BF16 / F16 (raw 16-bit storage) computes in F32 and rounds the output once: on tensor cores (the
// third form, below) where the shape and the device allow, else in the SIMT forms on widened values.
// The fourth, recurrent form (linear_attention_recurrent.cuh, opt-in) walks the sequence per group
// and value tile with the state in registers for masked square products, and for unmasked ones
// takes its state form (a few key segments' states, their total, then O = Q S), on tensor cores
// (16-bit, TF32, or x3: F32 on three TF32 products per product).
//
// Chunk-parallel (the usual path; `workspace` is linear_attention_scratch() bytes of device memory
// from native/src/linear_attention.cpp). The keys are cut into state chunks of R rows (R a multiple
// of the 64-row block; the smallest power-of-two multiple whose states fit kScratchBudget, longer
// without a mask while the chunks of all groups stay >= MK_LINEAR_PARALLEL_CHUNKS: chunk_plan()):
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
#include <atomic>
#include <climits>
#include <type_traits>

#include "common.cuh"
#include "copy_async.cuh"
#include "mk/kernels.h"
#include "mk/linear_attention_choice.h"
#include "mma.cuh"

// Bytes the chunk states may take (a test lowers it to force long state chunks).
#ifndef MK_LINEAR_SCRATCH_BUDGET
#define MK_LINEAR_SCRATCH_BUDGET (int64_t(512) << 20)
#endif
// Without a mask: state chunks over all groups the plan keeps at least (a test lowers it).
#ifndef MK_LINEAR_PARALLEL_CHUNKS
#define MK_LINEAR_PARALLEL_CHUNKS 1024
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

// Storage types of the SIMT kernels: F32 and F64 compute in themselves; BF16 and F16 (raw 16-bit
// patterns in memory) are widened to F32 as they are staged, accumulate in F32 (the chunk states
// too) and are rounded once, to nearest even, when the output is stored.
template <class S>
struct Elem {
  using Raw = S;
  using T = S;
};
template <>
struct Elem<Bf16> {
  using Raw = uint16_t;
  using T = float;
};
template <>
struct Elem<Fp16> {
  using Raw = uint16_t;
  using T = float;
};

// x as the compute type of S (a 16-bit pattern widened; F32/F64 values, the states included, as they are)
template <class S, class X>
__device__ __forceinline__ typename Elem<S>::T widen(X x) {
  if constexpr (std::is_same<X, uint16_t>::value) return half_to_float<S>(x);
  else return x;
}
// x stored as S (16-bit: rounded to nearest even)
template <class S>
__device__ __forceinline__ typename Elem<S>::Raw narrow(typename Elem<S>::T x) {
  if constexpr (std::is_same<typename Elem<S>::Raw, uint16_t>::value) return float_to_half<S>(x);
  else return x;
}

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

// R: the smallest power-of-two multiple of kTile whose states fit the budget. Without a mask (mask 0)
// the chunks only spread the state pass over blocks (the scan sums them into chunk 0, the only
// state the output pass reads) and no masked key block depends on R: there R also grows while all
// groups keep at least MK_LINEAR_PARALLEL_CHUNKS chunks, so that fewer F32 states are written and
// summed (at [4,16,4096,128]: R = 256, 16 chunks per group, a quarter of the R = 64 state traffic,
// 2,048 state blocks). Causal and anti-causal masks keep the smallest R (the masked key blocks of
// a query block grow with R; benchmarks/gpu/linear_attention_harness.cu times R = 128, 256).
ChunkPlan chunk_plan(int dtype, int64_t groups, int64_t nk, int64_t dk, int64_t dv, int mask = 1) {
  ChunkPlan p;
  if (groups <= 0 || nk <= 0) return p;
  const double per_state = double(dk) * double(dv) * (dtype == MK_F64 ? 8.0 : 4.0);  // 16-bit: F32 states
  int64_t first = Traits::kTile;
  if (mask == 0) {
    const int64_t want = ceil_div(MK_LINEAR_PARALLEL_CHUNKS, groups);  // chunks per group
    while (first < nk && ceil_div(nk, 2 * first) >= want) first *= 2;
  }
  for (int64_t rows = first;; rows *= 2) {
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

// The tensor-core forms' plan for a masked product: state chunks of at least kTcMaskedRows keys.
// Measured on an H100 (benchmarks/results/gpu-2026-12-05/linear_attention_harness.md, causal,
// [4,16,4096,128] and [1,16,16384,128]): R = 256 takes 1.16 ms against 2.12 ms at R = 64 in BF16 and
// F16, 2.01 against 2.65 ms in TF32: a quarter of the F32 states to write, scan and read outweighs
// the longer masked diagonal (up to 4 key blocks per query block instead of 1). The states need at
// most the bytes of plan p (fewer chunks), so the scratch sized by linear_attention_scratch fits.
// The SIMT chunked form keeps the smallest R (untimed at longer R). Without a mask p already is
// the long-chunk plan.
constexpr int64_t kTcMaskedRows = 256;
ChunkPlan tc_plan(const ChunkPlan& p, int64_t groups, int64_t nk, int64_t dk, int64_t dv, int mask) {
  if (mask == 0 || p.rows <= 0 || p.rows >= kTcMaskedRows) return p;
  ChunkPlan t;
  t.rows = kTcMaskedRows;
  t.states = ceil_div(nk, t.rows);
  t.bytes = groups * t.states * dk * dv * int64_t(sizeof(float));  // tensor-core states are F32
  return t.bytes <= p.bytes ? t : p;
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
// (src: S's storage, or the compute type for the states; dst: the compute type)
template <class S, class X>
__device__ __forceinline__ void stage_rows(const X* src, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                                           int64_t ld, typename Elem<S>::T* dst) {
  using T = typename Elem<S>::T;
  for (int idx = threadIdx.x; idx < Traits::kSlab * Traits::kTile; idx += Traits::kThreads) {
    const int r = idx / Traits::kTile, c = idx % Traits::kTile;
    const int64_t row = row0 + r, col = col0 + c;
    dst[idx] = row < rows && col < cols ? widen<S>(src[row * ld + col]) : T(0);
  }
}

// dst[c][r] = src[(row0 + r) * ld + col0 + c] for r < kTile, c < kSlab (a transposed slab: the
// reduction index c becomes the slab row); zero outside rows x cols.
template <class S, class X>
__device__ __forceinline__ void stage_cols(const X* src, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                                           int64_t ld, typename Elem<S>::T* dst) {
  using T = typename Elem<S>::T;
  for (int idx = threadIdx.x; idx < Traits::kSlab * Traits::kTile; idx += Traits::kThreads) {
    const int r = idx / Traits::kSlab, c = idx % Traits::kSlab;
    const int64_t row = row0 + r, col = col0 + c;
    dst[c * Traits::kTile + r] = row < rows && col < cols ? widen<S>(src[row * ld + col]) : T(0);
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
template <class SS>
__global__ void __launch_bounds__(Traits::kThreads)
state_kernel(int64_t nk, int64_t dk, int64_t dv, int64_t rows, int64_t states, int64_t dtiles, int64_t etiles,
             const typename Elem<SS>::Raw* k, const typename Elem<SS>::Raw* v, typename Elem<SS>::T* S) {
  using T = typename Elem<SS>::T;
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
    stage_rows<SS>(k, i0, r1, d0, dk, dk, Ks);
    stage_rows<SS>(v, i0, r1, e0, dv, dv, Vs);
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
template <class SS>
__global__ void __launch_bounds__(Traits::kThreads)
output_kernel(int mask, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int64_t rows, int64_t states,
              int64_t qblocks, int64_t etiles, const typename Elem<SS>::Raw* q, const typename Elem<SS>::Raw* k,
              const typename Elem<SS>::Raw* v, const typename Elem<SS>::T* S, typename Elem<SS>::Raw* out) {
  using T = typename Elem<SS>::T;
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
      stage_cols<SS>(q, j0, nq, d0, dk, dk, Qs);
      stage_rows<SS>(St, d0, dk, e0, dv, dv, Bs);
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
        stage_cols<SS>(q, j0, nq, d0, dk, dk, Qs);
        stage_cols<SS>(k, i0, nk, d0, dk, dk, Bs);
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
        stage_rows<SS>(v, i0 + ib, nk, e0, dv, dv, Vs);
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
      if (j < nq && e < dv) out[j * dv + e] = narrow<SS>(m.acc[x][y]);
    }
}

// step 2 of either chunk-parallel form (SIMT or tensor cores): the scan over the chunk states
template <class T>
int scan_states(const ChunkPlan& p, int64_t groups, int64_t dk, int64_t dv, int mask, T* S, cudaStream_t stream) {
  if (p.states <= 1) return 0;
  const int64_t cells = groups * dk * dv;
  return launch_blocks(scan_kernel<T>, int64_t(grid_for(cells, Traits::kThreads)), 0, stream, groups, p.states,
                       dk * dv, mask, S);
}

template <class SS>
int run_chunked(const ChunkPlan& p, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                const typename Elem<SS>::Raw* q, const typename Elem<SS>::Raw* k, const typename Elem<SS>::Raw* v,
                typename Elem<SS>::Raw* out, int mask, typename Elem<SS>::T* S, cudaStream_t stream) {
  using T = typename Elem<SS>::T;
  const int64_t dtiles = ceil_div(dk, Traits::kTile), etiles = ceil_div(dv, Traits::kTile);
  int st = launch_blocks(state_kernel<SS>, groups * p.states * dtiles * etiles, state_smem<T>(), stream, nk, dk, dv,
                         p.rows, p.states, dtiles, etiles, k, v, S);
  if (st != 0) return st;
  if ((st = scan_states(p, groups, dk, dv, mask, S, stream)) != 0) return st;
  const int64_t qblocks = ceil_div(nq, Traits::kTile);
  return launch_blocks(output_kernel<SS>, groups * qblocks * etiles, output_smem<T>(), stream, mask, nq, nk, dk, dv,
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

template <class SS>
__device__ void load_rows(const typename Elem<SS>::Raw* src, int64_t row0, int rows, int width, int64_t ld, int col0,
                          typename Elem<SS>::T* dst, int ldd) {
  for (int idx = threadIdx.x; idx < rows * width; idx += blockDim.x) {
    const int r = idx / width, c = idx % width;
    dst[r * ldd + c] = widen<SS>(src[(row0 + r) * ld + col0 + c]);
  }
}

template <class SS>
__global__ void __launch_bounds__(Traits::kThreads)
linear_attention_kernel(int mask, int64_t nq, int64_t nk, int dk, int dv, int C, int64_t vtiles,
                        const typename Elem<SS>::Raw* q, const typename Elem<SS>::Raw* k,
                        const typename Elem<SS>::Raw* v, typename Elem<SS>::Raw* out) {
  using T = typename Elem<SS>::T;
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
      load_rows<SS>(k, c0, len, dk, dk, 0, Kc, dk);
      load_rows<SS>(v, c0, len, et, dv, e0, Vc, ET);
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
      load_rows<SS>(q, c0, len, dk, dk, 0, Qc, dk);
      __syncthreads();
      for (int idx = threadIdx.x; idx < len * et; idx += blockDim.x) {
        const int j = idx / et, e = idx % et;
        T acc = 0;
        for (int d = 0; d < dk; ++d) acc += Qc[j * dk + d] * S[d * ET + e];
        out[(c0 + j) * dv + e0 + e] = narrow<SS>(acc);
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
    load_rows<SS>(q, c0, len, dk, dk, 0, Qc, dk);
    load_rows<SS>(k, c0, len, dk, dk, 0, Kc, dk);
    load_rows<SS>(v, c0, len, et, dv, e0, Vc, ET);
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
      out[(c0 + j) * dv + e0 + e] = narrow<SS>(acc);
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

template <class SS>
int run_sequential(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const void* q, const void* k,
                   const void* v, void* out, int mask, cudaStream_t stream) {
  using T = typename Elem<SS>::T;
  using Raw = typename Elem<SS>::Raw;
  int dev = 0, optin = 48 * 1024;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  int chunk = Traits::kMaxChunk;
  while (chunk > 8 && smem_bytes<T>(int(dk), chunk) > size_t(optin)) chunk /= 2;
  const size_t bytes = smem_bytes<T>(int(dk), chunk);
  // the key-feature width decides the shared tile: too wide for this GPU is "unsupported"
  if (bytes > size_t(optin)) return KERNEL_UNSUPPORTED;
  const int64_t vtiles = ceil_div(dv, Traits::kValueTile);
  return launch_blocks(linear_attention_kernel<SS>, groups * vtiles, bytes, stream, mask, nq, nk, int(dk), int(dv),
                       chunk, vtiles, static_cast<const Raw*>(q), static_cast<const Raw*>(k),
                       static_cast<const Raw*>(v), static_cast<Raw*>(out));
}

// ---- tensor-core form (BF16 / F16 inputs; F32 inputs through TF32, opt-in) ------------------------
// The chunk-parallel form above with its products on tensor cores, templated over the operand type
// E of mma.cuh (Operand<E>): m16n8k16 MMAs on BF16 / F16 inputs, or m16n8k8 TF32 MMAs on F32 inputs
// when the caller asks for TF32 (MK_LINEAR_MASK_TF32 in `mask`: native/src/linear_attention.cpp
// sets it while the runtime's one TF32 switch, mk_runtime_allow_tf32, is on). F32 accumulation and
// F32 states either way; same plan, same scratch, same fixed orders:
//   1. states S_s = K_sᵀ V_s (F32, in the scratch, stored transposed: [dv][dk], so that step 3
//      stages them with coalesced reads and conflict-free shared stores): a block per (group,
//      chunk, 64 key features, ET value columns), warp w the features [16w, 16w + 16); A = Kᵀ from a
//      transposed shared copy of each 64-key slab, B = V (16-bit: a transposed copy, read along k;
//      TF32: the row-major slab itself) (slabs ascending);
//   2. the scan of the SIMT form, in F32 (scan_kernel<float>): the inter-chunk prefix stays F32;
//   3. output: a block per (group, 64 query rows, ET value columns), warp w the rows [16w, 16w + 16):
//      O = Q·Ŝ with Ŝ the prefix state rounded to the operand type as it is staged (transposed), then
//      per 64-key block of the rows' own chunk P = mask(Q Kᵀ) in F32 registers, rounded to the operand
//      type as the A operand of P V (FlashAttention's register reuse; key blocks a warp cannot see,
//      half of the diagonal block, are skipped); O stored once (16-bit: rounded).
// Precision: 16-bit inputs enter the MMAs exactly, F32 inputs rounded to TF32 (10-bit mantissa, to
// nearest) as they are staged; the roundings are then Ŝ, P (both to the operand type, as a composition
// of matmuls in that type rounds its intermediates) and, for 16-bit, the output. The CPU twin computes
// the same function in F32 from the same inputs and rounds only a 16-bit output; the emulator test
// bounds the error by twice that of a naive composition in the operand type
// (tests/cuda-emu/linear_attention_emu_test.cpp). F32 without TF32 never comes here (the SIMT form is
// the exact default). Key features up to kMaxDk (the Q and K tiles are padded to 64, 128 or 256); any
// value width (tiles of ET = 64 or 128 columns; TF32 with keys over 128: 64, so that the F32 tiles fit
// an A100's 163 KB; TF32 where the 128-column tiles do not fit, e.g. 99 KB devices: 64). Wider keys,
// or a device whose shared memory does not hold the tiles, run the SIMT chunk-parallel form on the
// same data (F32 inside: exact for F32).
struct TcTraits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kRows = 16 * kWarps;  // query rows of an output block, key features of a state
                                             // block, keys of a slab
  static constexpr int kPad = 8;             // pad per shared row, in elements (16-bit: 16 bytes, TF32:
                                             // 32): conflict-free fragment reads
  static constexpr int kPadKN = 4;           // TF32 row-major [k][n] tiles (V): row stride = 4 mod 16
                                             // words, so b_kn's reads (rows 2t, 2t + 1) hit 32 banks
  static constexpr int kMaxDk = 256;
};
using TC = TcTraits;
static_assert(TC::kRows == Traits::kTile, "the plan's state chunks are whole 64-key slabs");
static_assert((TC::kPad * 2) % 16 == 0 && (TC::kPadKN * 4) % 16 == 0, "shared rows stay 16-byte aligned");

// Shared layouts in elements of E's raw type (16-bit or F32). V of a key block: 16-bit Vᵀ [ET][64 +
// pad] (B read along k), TF32 V [64][ET + kPadKN] (row-major, read by b_kn).
template <class E, int DKP, int ET>
struct TcOutLayout {
  using O = Operand<E>;
  static constexpr int LDK = DKP + TC::kPad;
  static constexpr int LV = O::kTransposed ? TC::kRows + TC::kPad : ET + TC::kPadKN;
  static constexpr int vsize = O::kTransposed ? ET * LV : TC::kRows * LV;
  static constexpr int q = 0;                     // Q   [64][LDK]
  static constexpr int k = q + TC::kRows * LDK;   // K   [64][LDK]  (key blocks)
  static constexpr int v = k + TC::kRows * LDK;   // Vᵀ or V        (key blocks)
  static constexpr int st = k;                    // Ŝᵀ  [ET][LDK]  (the state, consumed before the key blocks)
  static constexpr int total = v + vsize > st + ET * LDK ? v + vsize : st + ET * LDK;
  static constexpr size_t bytes = size_t(total) * sizeof(typename O::Raw);
};
template <class E, int ET>
struct TcStateLayout {
  using O = Operand<E>;
  static constexpr int LT = TC::kRows + TC::kPad;
  static constexpr int LV = O::kTransposed ? LT : ET + TC::kPadKN;
  static constexpr int kt = 0;                     // Kᵀ [64][LT]
  static constexpr int v = kt + TC::kRows * LT;    // Vᵀ [ET][LV] or V [64][LV]
  static constexpr int vsize = O::kTransposed ? ET * LV : TC::kRows * LV;
  static constexpr size_t bytes = size_t(v + vsize) * sizeof(typename O::Raw);
};

// Elements of E's raw type in one 16-byte load (8 16-bit values, 4 F32).
template <class E>
struct VecElems {
  static constexpr int value = 16 / int(sizeof(typename Operand<E>::Raw));
};

// x[0..N) = src[row][col .. col + N) as staged in shared memory (Operand<E>::to_smem: TF32 rounds),
// zero outside rows x cols; one 16-byte load when `vec` (16-byte aligned rows) and all N lie inside.
template <class E>
__device__ __forceinline__ void load_vec(typename Operand<E>::Raw (&x)[VecElems<E>::value],
                                         const typename Operand<E>::Raw* src, int64_t ld, int64_t row, int64_t rows,
                                         int64_t col, int64_t cols, bool vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  constexpr int N = VecElems<E>::value;
  if (row < rows && vec && col + N <= cols) {
    const uint4 w = *reinterpret_cast<const uint4*>(src + row * ld + col);
    memcpy(x, &w, 16);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) x[i] = row < rows && col + i < cols ? src[row * ld + col + i] : Raw(0);
  }
#pragma unroll
  for (int i = 0; i < N; ++i) x[i] = O::to_smem(x[i]);
}

// dst[r][c] = src[row0 + r][col0 + c] for r < 64, c < COLS (row-major shared tile, leading dim ldd)
template <class E, int COLS>
__device__ void tc_rows(typename Operand<E>::Raw* dst, int ldd, const typename Operand<E>::Raw* src, int64_t ld,
                        int64_t row0, int64_t rows, int64_t col0, int64_t cols, bool vec) {
  constexpr int N = VecElems<E>::value, chunks = COLS / N;
  for (int idx = threadIdx.x; idx < TC::kRows * chunks; idx += TC::kThreads) {
    const int r = idx / chunks, c = (idx % chunks) * N;
    typename Operand<E>::Raw x[N];
    load_vec<E>(x, src, ld, row0 + r, rows, col0 + c, cols, vec);
    uint4 w;
    memcpy(&w, x, 16);
    *reinterpret_cast<uint4*>(dst + r * ldd + c) = w;
  }
}

// dst[c][r] = src[row0 + r][col0 + c] for r < 64, c < COLS (the transposed copy an A = Xᵀ or a 16-bit
// B read along k needs; consecutive threads take consecutive rows)
template <class E, int COLS>
__device__ void tc_cols(typename Operand<E>::Raw* dst, int ldd, const typename Operand<E>::Raw* src, int64_t ld,
                        int64_t row0, int64_t rows, int64_t col0, int64_t cols, bool vec) {
  constexpr int N = VecElems<E>::value;
  for (int idx = threadIdx.x; idx < TC::kRows * (COLS / N); idx += TC::kThreads) {
    const int r = idx % TC::kRows, c = (idx / TC::kRows) * N;
    typename Operand<E>::Raw x[N];
    load_vec<E>(x, src, ld, row0 + r, rows, col0 + c, cols, vec);
#pragma unroll
    for (int i = 0; i < N; ++i) dst[(c + i) * ldd + r] = x[i];
  }
}

// The V slab of a key block, as mma_n_blocks<E, true> reads it: 16-bit Vᵀ, TF32 V.
template <class E, int ET>
__device__ __forceinline__ void tc_values(typename Operand<E>::Raw* dst, int ldd, const typename Operand<E>::Raw* src,
                                          int64_t ld, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                                          bool vec) {
  if constexpr (Operand<E>::kTransposed) tc_cols<E, ET>(dst, ldd, src, ld, row0, rows, col0, cols, vec);
  else tc_rows<E, ET>(dst, ldd, src, ld, row0, rows, col0, cols, vec);
}

// 1. S[g][s][e][d] = sum over the keys i of chunk s of k[i][d] v[i][e], F32 (transposed).
template <class E, int ET>
__global__ void __launch_bounds__(TC::kThreads)
tc_state_kernel(int64_t nk, int64_t dk, int64_t dv, int64_t rows, int64_t states, int64_t dtiles, int64_t etiles,
                const typename Operand<E>::Raw* k, const typename Operand<E>::Raw* v, float* S, int vec) {
  using O = Operand<E>;
  using L = TcStateLayout<E, ET>;
  using Raw = typename O::Raw;
  constexpr int KK = O::kK;
  Raw* const sm = reinterpret_cast<Raw*>(mk_linear_smem);
  Raw *kt = sm + L::kt, *vs = sm + L::v;
  int64_t b = blockIdx.x;
  const int64_t et = b % etiles;
  b /= etiles;
  const int64_t dt = b % dtiles;
  b /= dtiles;
  const int64_t s = b % states, g = b / states;
  const int64_t d0 = dt * TC::kRows, e0 = et * ET;
  const int64_t r0 = s * rows, r1 = min64(nk, r0 + rows);
  k += g * nk * dk;
  v += g * nk * dv;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, gq = lane >> 2, tq = lane & 3;
  const int nblocks = int((min64(ET, dv - e0) + 7) / 8);
  float acc[ET / 8][4];
#pragma unroll
  for (int nb = 0; nb < ET / 8; ++nb)
#pragma unroll
    for (int r = 0; r < 4; ++r) acc[nb][r] = 0.f;
  const Raw* a = kt + warp * 16 * L::LT;
  for (int64_t i0 = r0; i0 < r1; i0 += TC::kRows) {
    __syncthreads();  // the previous slab is consumed
    tc_cols<E, TC::kRows>(kt, L::LT, k, dk, i0, r1, d0, dk, vec != 0);  // kt[d][i] = k[i0 + i][d0 + d]
    tc_values<E, ET>(vs, L::LV, v, dv, i0, r1, e0, dv, vec != 0);      // v[i0 + i][e0 + e]
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TC::kRows / KK; ++kk) {
      uint32_t ra[4];
      O::a(ra, a, L::LT, kk * KK, gq, tq);
      mma_n_blocks<E, true>(acc, ra, vs, L::LV, kk * KK, 0, nblocks, gq, tq);
    }
  }
  float* out = S + (g * states + s) * dk * dv;
#pragma unroll
  for (int nb = 0; nb < ET / 8; ++nb)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int64_t d = d0 + warp * 16 + gq + 8 * (r >> 1), e = e0 + nb * 8 + 2 * tq + (r & 1);
      if (d < dk && e < dv) out[e * dk + d] = acc[nb][r];
    }
}

// st[e][d] = Ŝ[d][e0 + e] as the operand type (rounded), zero outside dk x dv; Sg is Ŝᵀ, [dv][dk] F32.
template <class E, int DKP, int ET>
__device__ __forceinline__ void tc_stage_state(typename Operand<E>::Raw* st, int ldk, const float* Sg, int64_t dk,
                                               int64_t dv, int64_t e0) {
  if constexpr (Operand<E>::kTransposed) {
    for (int idx = threadIdx.x; idx < DKP / 2 * ET; idx += TC::kThreads) {  // pairs of key features
      const int e = idx / (DKP / 2), d = (idx % (DKP / 2)) * 2;
      const bool row = e0 + e < dv;
      float lo = 0.f, hi = 0.f;
      if (row && d + 1 < dk && (dk & 1) == 0) {  // (an even dk keeps every pair 8-byte aligned)
        const uint64_t x = *reinterpret_cast<const uint64_t*>(Sg + (e0 + e) * dk + d);  // one 8-byte load
        float f[2];
        memcpy(f, &x, 8);
        lo = f[0];
        hi = f[1];
      } else {
        if (row && d < dk) lo = Sg[(e0 + e) * dk + d];
        if (row && d + 1 < dk) hi = Sg[(e0 + e) * dk + d + 1];
      }
      *reinterpret_cast<uint32_t*>(st + e * ldk + d) = pack_half2<E>(lo, hi);
    }
  } else {
    for (int idx = threadIdx.x; idx < DKP / 4 * ET; idx += TC::kThreads) {  // quads of key features
      const int e = idx / (DKP / 4), d = (idx % (DKP / 4)) * 4;
      const bool row = e0 + e < dv;
      float f[4] = {0.f, 0.f, 0.f, 0.f};
      if (row && d + 3 < dk && (dk & 3) == 0) {  // (dk % 4 == 0 keeps every quad 16-byte aligned)
        const uint4 x = *reinterpret_cast<const uint4*>(Sg + (e0 + e) * dk + d);  // one 16-byte load
        memcpy(f, &x, 16);
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i)
          if (row && d + i < dk) f[i] = Sg[(e0 + e) * dk + d + i];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) f[i] = Operand<E>::to_smem(f[i]);
      uint4 w;
      memcpy(&w, f, 16);
      *reinterpret_cast<uint4*>(st + e * ldk + d) = w;
    }
  }
}

// 3. out[j0 .. j0+64][e0 .. e0+ET] = q Ŝ + the masked blocks of the rows' own chunk.
template <class E, int DKP, int ET>
__global__ void __launch_bounds__(TC::kThreads)
tc_output_kernel(int mask, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int64_t rows, int64_t states,
                 int64_t qblocks, int64_t etiles, const typename Operand<E>::Raw* q,
                 const typename Operand<E>::Raw* k, const typename Operand<E>::Raw* v, const float* S,
                 typename Operand<E>::Raw* out, int vec) {
  using O = Operand<E>;
  using L = TcOutLayout<E, DKP, ET>;
  using Raw = typename O::Raw;
  constexpr int KK = O::kK, NPK = KK / 8;  // k of one MMA; n-blocks of P per k-step of P V
  Raw* const sm = reinterpret_cast<Raw*>(mk_linear_smem);
  Raw *qs = sm + L::q, *ks = sm + L::k, *vs = sm + L::v, *st = sm + L::st;
  int64_t b = blockIdx.x;
  const int64_t et = b % etiles;
  b /= etiles;
  const int64_t qb = b % qblocks, g = b / qblocks;
  const int64_t j0 = qb * TC::kRows, e0 = et * ET;
  q += g * nq * dk;
  k += g * nk * dk;
  v += g * nk * dv;
  out += g * nq * dv;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, gq = lane >> 2, tq = lane & 3;
  const int ksteps = int((dk + KK - 1) / KK), nblocks = int((min64(ET, dv - e0) + 7) / 8);
  float o[ET / 8][4];
#pragma unroll
  for (int nb = 0; nb < ET / 8; ++nb)
#pragma unroll
    for (int r = 0; r < 4; ++r) o[nb][r] = 0.f;
  tc_rows<E, DKP>(qs, L::LDK, q, dk, j0, nq, 0, dk, vec != 0);
  const Raw* qw = qs + warp * 16 * L::LDK;
  // the state chunk of the rows (masked products: nq == nk and a block lies in one chunk)
  const int64_t s = mask == 0 ? 0 : j0 / rows;
  const bool with_state = mask == 0 || (mask == 1 ? s > 0 : s < states - 1);
  if (with_state) {
    tc_stage_state<E, DKP, ET>(st, L::LDK, S + (g * states + s) * dk * dv, dk, dv, e0);
    __syncthreads();  // (the Q tile too)
#pragma unroll
    for (int kk = 0; kk < DKP / KK; ++kk)
      if (kk < ksteps) {
        uint32_t ra[4];
        O::a(ra, qw, L::LDK, kk * KK, gq, tq);
        mma_n_blocks<E>(o, ra, st, L::LDK, kk * KK, 0, nblocks, gq, tq);
      }
  }
  if (mask != 0) {
    const int64_t lo = mask == 1 ? s * rows : j0;
    const int64_t hi = mask == 1 ? j0 + 1 : min64(nk, (s + 1) * rows);
    const int64_t jlo = j0 + warp * 16, jhi = jlo + 15;  // the warp's rows
    for (int64_t i0 = lo; i0 < hi; i0 += TC::kRows) {
      __syncthreads();  // Ŝ or the previous key block is consumed
      tc_rows<E, DKP>(ks, L::LDK, k, dk, i0, nk, 0, dk, vec != 0);
      tc_values<E, ET>(vs, L::LV, v, dv, i0, nk, e0, dv, vec != 0);
      __syncthreads();
      // the n-blocks (8 keys) of this block that the warp's rows may see: [nb_lo, nb_hi)
      int nb_hi = int(min64(8, (nk - i0 + 7) / 8)), nb_lo = 0;
      if (mask == 1) nb_hi = jhi < i0 ? 0 : int(min64(nb_hi, (jhi - i0) / 8 + 1));
      else nb_lo = jlo > i0 ? int(min64(8, (jlo - i0) / 8)) : 0;
      if (nb_lo >= nb_hi) continue;  // (warp-uniform; the barriers above are block-wide)
      float p[8][4];
#pragma unroll
      for (int nb = 0; nb < 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) p[nb][r] = 0.f;
#pragma unroll
      for (int kk = 0; kk < DKP / KK; ++kk)
        if (kk < ksteps) {
          uint32_t ra[4];
          O::a(ra, qw, L::LDK, kk * KK, gq, tq);
          mma_n_blocks<E>(p, ra, ks, L::LDK, kk * KK, nb_lo, nb_hi, gq, tq);
        }
#pragma unroll
      for (int nb = 0; nb < 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int64_t j = jlo + gq + 8 * (r >> 1), i = i0 + nb * 8 + 2 * tq + (r & 1);
          const bool seen = i < nk && (mask == 1 ? i <= j : i >= j);
          if (!seen) p[nb][r] = 0.f;
        }
#pragma unroll
      for (int kk = 0; kk < TC::kRows / KK; ++kk)  // k-step kk of P V: the n-blocks [NPK kk, NPK kk + NPK) of P
        if (NPK * kk + NPK - 1 >= nb_lo && NPK * kk < nb_hi) {
          uint32_t ra[4];
          O::template acc_a<8>(ra, p, kk);
          mma_n_blocks<E, true>(o, ra, vs, L::LV, kk * KK, 0, nblocks, gq, tq);
        }
    }
  }
  // stored once (16-bit: rounded); pairs of columns as one 32-bit (16-bit) or 64-bit (F32) store when
  // the rows are aligned
#pragma unroll
  for (int nb = 0; nb < ET / 8; ++nb)
    if (nb < nblocks)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t j = j0 + warp * 16 + gq + 8 * h, e = e0 + nb * 8 + 2 * tq;
        if (j >= nq || e >= dv) continue;
        if constexpr (O::kTransposed) {
          if (vec && e + 1 < dv) {
            *reinterpret_cast<uint32_t*>(out + j * dv + e) = pack_half2<E>(o[nb][2 * h], o[nb][2 * h + 1]);
          } else {
            out[j * dv + e] = float_to_half<E>(o[nb][2 * h]);
            if (e + 1 < dv) out[j * dv + e + 1] = float_to_half<E>(o[nb][2 * h + 1]);
          }
        } else {
          if (vec && e + 1 < dv) {
            const float pair[2] = {o[nb][2 * h], o[nb][2 * h + 1]};
            uint64_t w;
            memcpy(&w, pair, 8);
            *reinterpret_cast<uint64_t*>(out + j * dv + e) = w;
          } else {
            out[j * dv + e] = o[nb][2 * h];
            if (e + 1 < dv) out[j * dv + e + 1] = o[nb][2 * h + 1];
          }
        }
      }
}

template <class... KArgs, class... Args>
int tc_launch(void (*kernel)(KArgs...), int64_t blocks, size_t smem, cudaStream_t stream, Args... args) {
  if (blocks <= 0) return 0;
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return int(e);
  }
  return launch_grid(kernel, blocks, TC::kThreads, smem, stream, args...);
}

size_t optin_smem() {
  int dev = 0, optin = 48 * 1024;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  return size_t(optin);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <class E, int DKP, int ET>
int run_tc_tiles(const ChunkPlan& p, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                 const typename Operand<E>::Raw* q, const typename Operand<E>::Raw* k,
                 const typename Operand<E>::Raw* v, typename Operand<E>::Raw* out, int mask, float* S,
                 cudaStream_t stream) {
  using LO = TcOutLayout<E, DKP, ET>;
  using LS = TcStateLayout<E, ET>;
  // decided before anything is launched: the call runs whole here or whole on the SIMT form
  const size_t optin = optin_smem();
  if (LO::bytes > optin || LS::bytes > optin) return KERNEL_UNSUPPORTED;
  constexpr int N = VecElems<E>::value;
  const int vec = dk % N == 0 && dv % N == 0 && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
  const int64_t dtiles = ceil_div(dk, TC::kRows), etiles = ceil_div(dv, ET);
  int st = tc_launch(tc_state_kernel<E, ET>, groups * p.states * dtiles * etiles, LS::bytes, stream, nk, dk, dv, p.rows,
                     p.states, dtiles, etiles, k, v, S, vec);
  if (st != 0) return st;
  if ((st = scan_states(p, groups, dk, dv, mask, S, stream)) != 0) return st;
  const int64_t qblocks = ceil_div(nq, TC::kRows);
  return tc_launch(tc_output_kernel<E, DKP, ET>, groups * qblocks * etiles, LO::bytes, stream, mask, nq, nk, dk, dv,
                   p.rows, p.states, qblocks, etiles, q, k, v, static_cast<const float*>(S), out, vec);
}

template <class E, int ET>
int run_tc_et(const ChunkPlan& p, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
              const typename Operand<E>::Raw* q, const typename Operand<E>::Raw* k, const typename Operand<E>::Raw* v,
              typename Operand<E>::Raw* out, int mask, float* S, cudaStream_t stream) {
  if (dk <= 64) return run_tc_tiles<E, 64, ET>(p, groups, nq, nk, dk, dv, q, k, v, out, mask, S, stream);
  if (dk <= 128) return run_tc_tiles<E, 128, ET>(p, groups, nq, nk, dk, dv, q, k, v, out, mask, S, stream);
  return run_tc_tiles<E, 256, ET>(p, groups, nq, nk, dk, dv, q, k, v, out, mask, S, stream);
}

// E: Bf16 or Fp16 (raw 16-bit data), or Tf32 (F32 data). mask: 0, 1 or 2 (the TF32 bit cleared).
template <class E>
int run_tc(const ChunkPlan& p, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
           const typename Operand<E>::Raw* q, const typename Operand<E>::Raw* k, const typename Operand<E>::Raw* v,
           typename Operand<E>::Raw* out, int mask, float* S, cudaStream_t stream) {
  if (dk > TC::kMaxDk) return KERNEL_UNSUPPORTED;
  constexpr bool f32 = sizeof(typename Operand<E>::Raw) == 4;
  if (dv <= 64 || (f32 && dk > 128)) return run_tc_et<E, 64>(p, groups, nq, nk, dk, dv, q, k, v, out, mask, S, stream);
  const int st = run_tc_et<E, 128>(p, groups, nq, nk, dk, dv, q, k, v, out, mask, S, stream);
  // TF32 on a device with ~99 KB per block (sm_86 class): the <128, 128> tiles (104,448 B) do not
  // fit, the <128, 64> ones (87,040 B) do (refused before any launch, so nothing ran yet)
  if (f32 && st == KERNEL_UNSUPPORTED)
    return run_tc_et<E, 64>(p, groups, nq, nk, dk, dv, q, k, v, out, mask, S, stream);
  return st;
}

// ---- recurrent tensor-core form (masked products) ---------------------------------------------
#include "linear_attention_recurrent.cuh"

// ---- the choice of form (the one place) ----------------------------------------------------------
// First the recurrent tensor-core form where linear_attention_choice.h asks for it (16-bit and TF32:
// MK_LINEAR_TC=recurrent; F32 without TF32: MK_LINEAR_F32=x3) and it applies (masked: square products;
// unmasked: its state form, with scratch; dk <= 128, the tiles fit; else it refuses before launching
// and the rest decides).
// With scratch (the usual case): BF16 / F16 on tensor cores, and F32 on TF32 tensor cores when the
// call asks for it (tf32), where the key width (<= 256) and the device's shared memory allow; else
// the SIMT chunk-parallel form (F32 by default and F64 always; 16-bit data widened to F32 there);
// without scratch the sequential SIMT form (TF32 or not: it has no tensor-core twin).
// mk_linear_attention_select's process-wide choice (kernels.inc linear_attention_select), 0: none
struct LinearSelection {
  std::atomic<int> tensor_core{0}, f32{0};
};
LinearSelection& linear_selection() {
  static LinearSelection s;
  return s;
}

template <class SS>
int launch(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const void* q, const void* k,
           const void* v, void* out, int mask, bool tf32, void* workspace, void* stream) {
  using T = typename Elem<SS>::T;
  using Raw = typename Elem<SS>::Raw;
  const ChunkPlan p = chunk_plan(sizeof(T) == 4 ? MK_F32 : MK_F64, groups, nk, dk, dv, mask);
  // the recurrent form, where chosen (linear_attention_choice.h): masked square products walk with
  // the state in registers, unmasked products take its state form; the scratch (sized by the plan)
  // holds the segment states (the state form needs at least one per group: without scratch it refuses)
  {
    const LinearAttentionChoice ch = linear_attention_choose(linear_selection().tensor_core.load(std::memory_order_relaxed),
                                                             linear_selection().f32.load(std::memory_order_relaxed));
    float* const RS = workspace && p.bytes > 0 ? static_cast<float*>(workspace) : nullptr;
    const int64_t rs_bytes = RS ? p.bytes : 0;
    int st = KERNEL_UNSUPPORTED;
    if constexpr (std::is_same<Raw, uint16_t>::value) {
      if (ch.tensor_core == MK_LINEAR_RECURRENT)
        st = run_tc_recurrent<RecOps<SS>>(groups, nq, nk, dk, dv, static_cast<const Raw*>(q),
                                          static_cast<const Raw*>(k), static_cast<const Raw*>(v),
                                          static_cast<Raw*>(out), mask, as_stream(stream), RS, rs_bytes, 0);
    } else if constexpr (std::is_same<SS, float>::value) {
      const float *qf = static_cast<const float*>(q), *kf = static_cast<const float*>(k),
                  *vf = static_cast<const float*>(v);
      if (tf32 && ch.tensor_core == MK_LINEAR_RECURRENT)
        st = run_tc_recurrent<RecOpsF32<1>>(groups, nq, nk, dk, dv, qf, kf, vf, static_cast<float*>(out), mask,
                                            as_stream(stream), RS, rs_bytes, 0);
      else if (!tf32 && ch.f32 == MK_LINEAR_F32_X3)
        st = run_tc_recurrent<RecOpsF32<3>>(groups, nq, nk, dk, dv, qf, kf, vf, static_cast<float*>(out), mask,
                                            as_stream(stream), RS, rs_bytes, 0);
    }
    if (st != KERNEL_UNSUPPORTED) return st;
  }
  if (workspace && p.bytes > 0) {
    int st = KERNEL_UNSUPPORTED;
    const ChunkPlan tp = tc_plan(p, groups, nk, dk, dv, mask);
    if constexpr (std::is_same<Raw, uint16_t>::value) {
      st = run_tc<SS>(tp, groups, nq, nk, dk, dv, static_cast<const Raw*>(q), static_cast<const Raw*>(k),
                      static_cast<const Raw*>(v), static_cast<Raw*>(out), mask, static_cast<T*>(workspace),
                      as_stream(stream));
    } else if constexpr (std::is_same<SS, float>::value) {
      if (tf32)
        st = run_tc<Tf32>(tp, groups, nq, nk, dk, dv, static_cast<const float*>(q), static_cast<const float*>(k),
                          static_cast<const float*>(v), static_cast<float*>(out), mask, static_cast<float*>(workspace),
                          as_stream(stream));
    }
    if (st != KERNEL_UNSUPPORTED) return st;
    return run_chunked<SS>(p, groups, nq, nk, dk, dv, static_cast<const Raw*>(q), static_cast<const Raw*>(k),
                           static_cast<const Raw*>(v), static_cast<Raw*>(out), mask, static_cast<T*>(workspace),
                           as_stream(stream));
  }
  return run_sequential<SS>(groups, nq, nk, dk, dv, q, k, v, out, mask, as_stream(stream));
}

// m_j = decay (m_{j-1} + v_{j-1}) in the compute type (F32 for 16-bit data, rounded per store)
template <class SS>
__global__ void momentum_kernel(int64_t groups, int64_t n, int64_t d, const typename Elem<SS>::Raw* v,
                                typename Elem<SS>::Raw* out, typename Elem<SS>::T decay, int reverse) {
  using T = typename Elem<SS>::T;
  const int64_t cols = groups * d;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < cols; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t g = t / d, e = t % d;
    const typename Elem<SS>::Raw* vg = v + g * n * d + e;
    typename Elem<SS>::Raw* og = out + g * n * d + e;
    // walk step s writes row j(s) = s (reverse: n - 1 - s) with m_s = decay (m_{s-1} + v[j(s - 1)]),
    // m_0 = 0. The recurrence is serial, the loads are not: each batch of kBatch steps issues its
    // loads first, so a column waits for one load latency per batch instead of one per row (the
    // grid is only groups·d threads). The arithmetic and its order are unchanged (the CPU twin's).
    constexpr int kBatch = 16;
    T m = 0;
    for (int64_t s0 = 0; s0 < n; s0 += kBatch) {
      T x[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int64_t s = s0 + u;
        x[u] = s > 0 && s < n ? widen<SS>(vg[(reverse ? n - s : s - 1) * d]) : T(0);
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int64_t s = s0 + u;
        if (s >= n) break;
        if (s > 0) m = decay * (m + x[u]);
        og[(reverse ? n - 1 - s : s) * d] = narrow<SS>(m);
      }
    }
  }
}

template <class SS>
int launch_momentum(int64_t groups, int64_t n, int64_t d, const void* v, void* out, double decay, int reverse,
                    void* stream) {
  using T = typename Elem<SS>::T;
  using Raw = typename Elem<SS>::Raw;
  const int64_t blocks = int64_t(grid_for(groups * d, Traits::kThreads));
  return launch_blocks(momentum_kernel<SS>, blocks, 0, as_stream(stream), groups, n, d, static_cast<const Raw*>(v),
                       static_cast<Raw*>(out), T(decay), reverse);
}

}  // namespace

int linear_attention(int dtype, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                     const void* q, const void* k, const void* v, void* out, int mask,
                     void* workspace, void* stream) {
  // MK_LINEAR_MASK_TF32: F32 may run on TF32 tensor cores (ignored for the other dtypes)
  const bool tf32 = (mask & MK_LINEAR_MASK_TF32) != 0;
  mask &= ~MK_LINEAR_MASK_TF32;
  switch (dtype) {
    case MK_F32: return launch<float>(groups, nq, nk, dk, dv, q, k, v, out, mask, tf32, workspace, stream);
    case MK_F64: return launch<double>(groups, nq, nk, dk, dv, q, k, v, out, mask, false, workspace, stream);
    case MK_BF16: return launch<Bf16>(groups, nq, nk, dk, dv, q, k, v, out, mask, false, workspace, stream);
    case MK_F16: return launch<Fp16>(groups, nq, nk, dk, dv, q, k, v, out, mask, false, workspace, stream);
    default: return KERNEL_UNSUPPORTED;
  }
}

// Packed groups only: the CUDA forms index [groups, n, d] blocks (native/ packs strided operands into
// device scratch before calling; a strided CUDA load path would go here).
int linear_attention_strided(int dtype, const LinearAttentionLayout* layout, int64_t nq, int64_t nk, int64_t dk,
                             int64_t dv, const void* q, const void* k, const void* v, void* out, int mask,
                             void* workspace, void* stream) {
  const LinearAttentionLayout& l = *layout;
  if (!l.packed(l.q, nq, dk) || !l.packed(l.k, nk, dk) || !l.packed(l.v, nk, dv) || !l.packed(l.out, nq, dv))
    return KERNEL_UNSUPPORTED;
  return linear_attention(dtype, l.batch * l.heads, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream);
}

int64_t linear_attention_workspace(int, int64_t, int64_t, int) { return 0; }

// The process-wide choice of form (mk/kernels.inc linear_attention_select; mk/linear_attention_choice.h),
// read by every call from the next one on.
int linear_attention_select(int tensor_core, int f32) {
  if (!linear_attention_select_valid(tensor_core, f32)) return KERNEL_UNSUPPORTED;
  linear_selection().tensor_core.store(tensor_core, std::memory_order_relaxed);
  linear_selection().f32.store(f32, std::memory_order_relaxed);
  return 0;
}

int64_t linear_attention_scratch(int dtype, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                                 int mask) {
  (void)nq;
  return chunk_plan(dtype, groups, nk, dk, dv, mask & ~MK_LINEAR_MASK_TF32).bytes;
}

int linear_attention_momentum(int dtype, int64_t groups, int64_t n, int64_t d, const void* v,
                              void* out, double decay, int reverse, void* stream) {
  switch (dtype) {
    case MK_F32: return launch_momentum<float>(groups, n, d, v, out, decay, reverse, stream);
    case MK_F64: return launch_momentum<double>(groups, n, d, v, out, decay, reverse, stream);
    case MK_BF16: return launch_momentum<Bf16>(groups, n, d, v, out, decay, reverse, stream);
    case MK_F16: return launch_momentum<Fp16>(groups, n, d, v, out, decay, reverse, stream);
    default: return KERNEL_UNSUPPORTED;
  }
}

}  // namespace cuda
}  // namespace mk
