// Dense CUDA kernels: the twins of kernels/cpu/dense.cpp (same signatures, mk/kernels.inc).
// These ops are memory bound and sit around the fused kernels; the layout of each family:
//
// Elementwise and copies (fill, copy, cast, unary, binary, where, random): grid-stride loops. When
// every operand is contiguous (after collapsing the shape: one dim, stride 1, or stride 0 for a
// broadcast scalar operand of binary) the kernel walks a flat index with no index arithmetic and,
// when every pointer is 16-byte aligned, moves 16 bytes per load and store (Pack below); the
// remaining n % VEC elements go one per thread. Strided operands take the strided kernels
// (offset_of), unchanged, but for operands contiguous along another dim than the last (transposes,
// permutes), which go through shared-memory tiles: a copy into a destination contiguous along the
// last dim (copy_transpose_kernel), and unary / binary / where (elementwise_tiled_kernel).
//
// Reductions over x: [outer, len, inner] (mk/kernels.inc `reduce`), planned by plan_reduce from
// the shape alone (never the device), so a shape always runs the same arithmetic in the same order:
// bitwise equal run to run, on any GPU. No floating-point atomics anywhere.
//   flat   one thread per output walks len in order (short len, or many column outputs): for
//          inner > 1 this is the CPU twin's order exactly (a double accumulator, j = 0, 1, ...);
//   rows   inner == 1: a warp per row (len <= MK_DENSE_WARP_LEN, 8 rows per block) or a block per
//          row chunk: lane l adds j = l·VEC + k·(lanes·VEC) (16-byte loads when aligned), then a
//          fixed xor butterfly over the warp and, for a block, the 8 warps' results in warp order;
//   cols   inner > 1 with few outputs: a block is TX (power of two <= 32, covering inner) columns
//          by TY = 256 / TX row slices: thread (ty, tx) adds rows j ≡ ty (mod TY) of its column
//          in order, then a fixed tree over ty in shared memory (coalesced loads along inner).
// When the outputs alone cannot fill MK_DENSE_REDUCE_TARGET_BLOCKS blocks and len is long, len is
// cut into `splits` chunks of at least MK_DENSE_REDUCE_MIN_CHUNK elements per block; each block
// writes a partial (value, index) to a workspace, and reduce_finish_kernel combines the partials of
// an output in chunk order (first pass, then second pass: the split reduction). The workspace is
// reduce_workspace(...) bytes (at most 2 MB), given by native/src/dense.cpp from the device caching
// allocator (reduce_split); the plain `reduce` entry point (no workspace) plans without splits.
// Sums accumulate in double for F32 and F64, as the CPU twin does. The CPU twin's order: inner == 1
// rows by OpenMP SIMD lanes (a compiler-chosen partial-sum order), inner > 1 columns strictly in
// j order. The CUDA order equals the twin's only on the flat path with inner > 1; elsewhere the
// two sums differ by rounding (in double: the twin tests allow 2·len·2^-53·Σ|x| before the final
// rounding to T). Max/min and their indices are exact and order independent: a NaN wins (the
// first NaN, by index), then the extreme value, ties to the smallest index, as the twin's scan.
//
// Softmax / log-softmax rows: a warp per row (cols <= MK_DENSE_SOFTMAX_WARP_COLS, 8 rows per
// block) or a block per row. One pass over the row keeps an online (max, sum of exp(x - max)) per
// thread, combined by the same fixed butterfly / warp-order steps, then one pass writes the row:
// two reads and one write instead of three reads. NaN anywhere in a row makes the row NaN, a row
// of -inf gives 0 (log: -inf), as the twin. F32 rows take exp in F32 and sum in double (the twin's
// arithmetic, in another order).
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <mutex>

#include "common.cuh"
#include "mk/kernels.h"
#include "mk/random.h"
#include "mk/scalar.h"

// Plan thresholds. The host emulator's test (tests/cuda-emu/dense_emu_test.cpp) defines smaller
// ones before including this file so that small inputs take the multi-block paths.
#ifndef MK_DENSE_REDUCE_TARGET_BLOCKS
#define MK_DENSE_REDUCE_TARGET_BLOCKS 1024  // blocks a split reduction aims for (~8 per SM of an H200)
#endif
#ifndef MK_DENSE_REDUCE_MIN_CHUNK
#define MK_DENSE_REDUCE_MIN_CHUNK 16384  // elements a block of a split reduction reads at least
#endif
#ifndef MK_DENSE_WARP_LEN
#define MK_DENSE_WARP_LEN 1024  // rows up to this length: a warp per row
#endif
#ifndef MK_DENSE_FLAT_LEN
#define MK_DENSE_FLAT_LEN 8  // reduced lengths up to this: a thread per output
#endif
#ifndef MK_DENSE_FLAT_OUTPUTS
#define MK_DENSE_FLAT_OUTPUTS 65536  // column outputs from this many on: a thread per output
#endif
#ifndef MK_DENSE_SOFTMAX_WARP_COLS
#define MK_DENSE_SOFTMAX_WARP_COLS 1024  // softmax rows up to this length: a warp per row
#endif

namespace mk {
namespace cuda {

// Dynamic shared memory of the reduction and softmax kernels (at most 4 KB per block), of the
// transposing copy (32 x 33 elements, at most 8.25 KB) and of the tiled elementwise kernel (one such
// tile per input, at most 24.75 KB).
extern __shared__ __align__(16) unsigned char mk_dense_smem[];

namespace {

constexpr int kBlock = 256;
constexpr int kWarps = kBlock / 32;
constexpr int64_t kNone = INT64_MAX;  // "no index yet" of a max/min partial

template <class... KArgs, class... Args>
int launch(void (*kernel)(KArgs...), int64_t grid, int block, size_t smem, cudaStream_t stream, Args... args) {
  return launch_grid(kernel, grid < 1 ? 1 : grid, block, smem, stream, args...);
}

// N elements moved by one load or store (16 bytes when sizeof(T) * N == 16).
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <class T>
constexpr int vec_of() {
  return int(16 / sizeof(T));
}

inline bool aligned(const void* p, size_t bytes) { return (reinterpret_cast<uintptr_t>(p) % bytes) == 0; }

__device__ __forceinline__ int64_t thread_id() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t thread_count() { return int64_t(gridDim.x) * blockDim.x; }

// ---- fill, copy, cast, random -------------------------------------------------------------------
template <class T>
__global__ void fill_kernel(T* dst, int64_t n, T v) {
  for (int64_t i = thread_id(); i < n; i += thread_count()) dst[i] = v;
}

// dst 16-byte aligned: n / VEC packs, then the tail one element per thread.
template <class T>
__global__ void fill_vec_kernel(T* dst, int64_t n, T v) {
  constexpr int V = vec_of<T>();
  Pack<T, V> p;
  for (int k = 0; k < V; ++k) p.v[k] = v;
  const int64_t packs = n / V;
  Pack<T, V>* d = reinterpret_cast<Pack<T, V>*>(dst);
  for (int64_t i = thread_id(); i < packs; i += thread_count()) d[i] = p;
  for (int64_t i = packs * V + thread_id(); i < n; i += thread_count()) dst[i] = v;
}

template <class T>
__global__ void copy_kernel(Geometry g, int64_t n, const T* src, T* dst) {
  for (int64_t i = thread_id(); i < n; i += thread_count()) dst[offset_of(g, 1, i)] = src[offset_of(g, 0, i)];
}

// Copy whose source is contiguous along dim k (< last) and strided along the last dim, into a
// destination contiguous along the last dim (a transpose or permute made contiguous): the element
// loop above would read one sector per thread. Tiles of 32 (dim k) x 32 (last dim) through shared
// memory instead: a block (256 threads: 32 lanes x 8 rows) reads the tile with lanes along k and
// writes it with lanes along the last dim, both coalesced. Tiles (outer x k-tiles x column tiles)
// by a grid-stride loop over blockIdx.x.
template <class T>
__global__ void copy_transpose_kernel(Geometry g, int k, int64_t height, int64_t cols, int64_t outer,
                                      const T* __restrict__ src, T* __restrict__ dst) {
  // [column][row of k] in the dynamic shared memory (32 x 33 T, padded against bank conflicts)
  T(*tile)[33] = reinterpret_cast<T(*)[33]>(mk_dense_smem);
  const int last = g.rank - 1;
  const int lane = threadIdx.x % 32, row = threadIdx.x / 32;
  const int64_t ht = (height + 31) / 32, ct = (cols + 31) / 32;
  for (int64_t t = blockIdx.x; t < outer * ht * ct; t += gridDim.x) {
    const int64_t c0 = (t % ct) * 32, i0 = (t / ct % ht) * 32;
    int64_t o = t / (ct * ht), so = 0, dof = 0;
    for (int d = last - 1; d >= 0; --d) {
      if (d == k) continue;
      const int64_t idx = o % g.shape[d];
      o /= g.shape[d];
      so += idx * g.strides[0][d];
      dof += idx * g.strides[1][d];
    }
    for (int cc = row; cc < 32; cc += 8) {
      const int64_t c = c0 + cc, i = i0 + lane;
      if (c < cols && i < height) tile[cc][lane] = src[so + i + c * g.strides[0][last]];
    }
    __syncthreads();
    for (int ii = row; ii < 32; ii += 8) {
      const int64_t i = i0 + ii, c = c0 + lane;
      if (c < cols && i < height) dst[dof + i * g.strides[1][k] + c] = tile[lane][ii];
    }
    __syncthreads();
  }
}

// Contiguous copy of n elements of T; VEC > 1 only when both ends are aligned to sizeof(T) * VEC.
template <class T, int VEC>
__global__ void copy_flat_kernel(int64_t n, const T* __restrict__ src, T* __restrict__ dst) {
  const int64_t packs = n / VEC;
  const Pack<T, VEC>* s = reinterpret_cast<const Pack<T, VEC>*>(src);
  Pack<T, VEC>* d = reinterpret_cast<Pack<T, VEC>*>(dst);
  for (int64_t i = thread_id(); i < packs; i += thread_count()) d[i] = s[i];
  for (int64_t i = packs * VEC + thread_id(); i < n; i += thread_count()) dst[i] = src[i];
}

// The cast: one dtype pair per kernel, every element through convert<SD, DD> (the CPU twin's rules).
template <int DT> struct Storage;
template <> struct Storage<MK_F32> { using type = float; };
template <> struct Storage<MK_F64> { using type = double; };
template <> struct Storage<MK_I64> { using type = int64_t; };
template <> struct Storage<MK_BF16> { using type = uint16_t; };
template <> struct Storage<MK_F16> { using type = uint16_t; };

template <int DT>
__device__ __forceinline__ double widen(typename Storage<DT>::type v) {
  if constexpr (DT == MK_BF16) return bf16_bits_to_f32(v);
  else if constexpr (DT == MK_F16) return f16_bits_to_f32(v);
  else return double(v);
}
template <int DT>
__device__ __forceinline__ typename Storage<DT>::type narrow(double v) {
  if constexpr (DT == MK_BF16) return f64_to_bf16_bits(v);
  else if constexpr (DT == MK_F16) return f64_to_f16_bits(v);
  else if constexpr (DT == MK_F32) return float(v);
  else if constexpr (DT == MK_I64) return f64_to_i64(v);
  else return v;
}

template <int SD, int DD>
__device__ __forceinline__ typename Storage<DD>::type convert(typename Storage<SD>::type v) {
  if constexpr (SD == DD) return v;  // a copy, as the CPU twin (I64 through double lost bits)
  else if constexpr (SD == MK_I64 && DD == MK_F32) return float(v);  // one rounding, as the CPU twin
  else if constexpr (SD == MK_I64 && (DD == MK_BF16 || DD == MK_F16)) return narrow<DD>(i64_to_f64_round_odd(v));
  else return narrow<DD>(widen<SD>(v));
}

// Both ends aligned to their element size times VEC (VEC = 16 / the larger element size; 1 for any).
template <int SD, int DD, int VEC>
__global__ void cast_vec_kernel(int64_t n, const typename Storage<SD>::type* __restrict__ src,
                                typename Storage<DD>::type* __restrict__ dst) {
  using S = typename Storage<SD>::type;
  using D = typename Storage<DD>::type;
  const int64_t packs = n / VEC;
  const Pack<S, VEC>* s = reinterpret_cast<const Pack<S, VEC>*>(src);
  Pack<D, VEC>* d = reinterpret_cast<Pack<D, VEC>*>(dst);
  for (int64_t i = thread_id(); i < packs; i += thread_count()) {
    const Pack<S, VEC> a = s[i];
    Pack<D, VEC> b;
#pragma unroll
    for (int k = 0; k < VEC; ++k) b.v[k] = convert<SD, DD>(a.v[k]);
    d[i] = b;
  }
  for (int64_t i = packs * VEC + thread_id(); i < n; i += thread_count()) dst[i] = convert<SD, DD>(src[i]);
}

// Each thread makes V consecutive values (counter-based: value i depends on (seed, i) only, the same
// bits as the CPU twin: mk/random.h), stored as one pack when dst is aligned. key = random_key(seed).
template <class T>
__global__ void random_kernel(int dist, int64_t n, T* dst, uint64_t key, double a, double b, T limit) {
  for (int64_t i = thread_id(); i < n; i += thread_count())
    dst[i] = random_store<T>(dist, random_value(dist, key, uint64_t(i), a, b), limit);
}
template <class T>
__global__ void random_vec_kernel(int dist, int64_t n, T* dst, uint64_t key, double a, double b, T limit) {
  constexpr int V = vec_of<T>();
  const int64_t packs = n / V;
  Pack<T, V>* d = reinterpret_cast<Pack<T, V>*>(dst);
  for (int64_t i = thread_id(); i < packs; i += thread_count()) {
    Pack<T, V> p;
#pragma unroll
    for (int k = 0; k < V; ++k)
      p.v[k] = random_store<T>(dist, random_value(dist, key, uint64_t(i * V + k), a, b), limit);
    d[i] = p;
  }
  for (int64_t i = packs * V + thread_id(); i < n; i += thread_count())
    dst[i] = random_store<T>(dist, random_value(dist, key, uint64_t(i), a, b), limit);
}

// ---- unary, binary, where -------------------------------------------------------------------------
template <class T>
__global__ void unary_kernel(int op, Geometry g, int64_t n, const T* x, T* y, T p) {
  for (int64_t i = thread_id(); i < n; i += thread_count()) y[i] = unary_apply<T>(op, x[offset_of(g, 0, i)], p);
}

template <class T, int VEC>
__global__ void unary_flat_kernel(int op, int64_t n, const T* __restrict__ x, T* __restrict__ y, T p) {
  const int64_t packs = n / VEC;
  const Pack<T, VEC>* xs = reinterpret_cast<const Pack<T, VEC>*>(x);
  Pack<T, VEC>* ys = reinterpret_cast<Pack<T, VEC>*>(y);
  for (int64_t i = thread_id(); i < packs; i += thread_count()) {
    Pack<T, VEC> a = xs[i];
#pragma unroll
    for (int k = 0; k < VEC; ++k) a.v[k] = unary_apply<T>(op, a.v[k], p);
    ys[i] = a;
  }
  for (int64_t i = packs * VEC + thread_id(); i < n; i += thread_count()) y[i] = unary_apply<T>(op, x[i], p);
}

template <class T>
__global__ void binary_kernel(int op, Geometry g, int64_t n, const T* a, const T* b, T* y) {
  for (int64_t i = thread_id(); i < n; i += thread_count())
    y[i] = binary_apply<T>(op, a[offset_of(g, 0, i)], b[offset_of(g, 1, i)]);
}

// a and b contiguous, or one of them a broadcast scalar (A_ONE / B_ONE: element 0 everywhere).
template <class T, int VEC, bool A_ONE, bool B_ONE>
__global__ void binary_flat_kernel(int op, int64_t n, const T* __restrict__ a, const T* __restrict__ b,
                                   T* __restrict__ y) {
  const int64_t packs = n / VEC;
  const Pack<T, VEC>* as = reinterpret_cast<const Pack<T, VEC>*>(a);
  const Pack<T, VEC>* bs = reinterpret_cast<const Pack<T, VEC>*>(b);
  Pack<T, VEC>* ys = reinterpret_cast<Pack<T, VEC>*>(y);
  const T a0 = A_ONE ? a[0] : T(0), b0 = B_ONE ? b[0] : T(0);
  for (int64_t i = thread_id(); i < packs; i += thread_count()) {
    Pack<T, VEC> u, v, r;
    if (!A_ONE) u = as[i];
    if (!B_ONE) v = bs[i];
#pragma unroll
    for (int k = 0; k < VEC; ++k) r.v[k] = binary_apply<T>(op, A_ONE ? a0 : u.v[k], B_ONE ? b0 : v.v[k]);
    ys[i] = r;
  }
  for (int64_t i = packs * VEC + thread_id(); i < n; i += thread_count())
    y[i] = binary_apply<T>(op, A_ONE ? a0 : a[i], B_ONE ? b0 : b[i]);
}

// The elementwise ops when an input is contiguous along a dim k < last and strided along the last
// dim (y.add(x.mT()), x.mT().exp(), where over a transposed mask): the element kernels above would
// read it one sector per thread. 32 x 32 tiles instead (256 threads: 32 lanes x 8 rows): each such
// input (bit q of `staged`) is read into shared memory with lanes along k (coalesced), then every
// output element of the tile is computed with lanes along the last dim, the output (contiguous) and
// the other inputs read or written along it. N inputs (unary 1, binary 2, where 3); f maps their
// values to the output. The dynamic shared memory holds one 32 x 33 tile per input.
template <class T>
struct UnaryOp {
  int op;
  T p;
  __device__ T operator()(const T* v) const { return unary_apply<T>(op, v[0], p); }
};
template <class T>
struct BinaryOp {
  int op;
  __device__ T operator()(const T* v) const { return binary_apply<T>(op, v[0], v[1]); }
};
template <class T>
struct WhereOp {
  __device__ T operator()(const T* v) const { return v[0] != T(0) ? v[1] : v[2]; }
};
template <class T>
struct Inputs {
  const T* p[3];
};

template <class T, int N, class F>
__global__ void elementwise_tiled_kernel(F f, Geometry g, int k, unsigned staged, int64_t height, int64_t cols,
                                         int64_t outer, Inputs<T> in, T* __restrict__ y) {
  T(*tiles)[32][33] = reinterpret_cast<T(*)[32][33]>(mk_dense_smem);  // [input][column][row of k]
  const int last = g.rank - 1;
  const int lane = threadIdx.x % 32, row = threadIdx.x / 32;
  const int64_t ht = (height + 31) / 32, ct = (cols + 31) / 32;
  for (int64_t t = blockIdx.x; t < outer * ht * ct; t += gridDim.x) {
    const int64_t c0 = (t % ct) * 32, i0 = (t / ct % ht) * 32;
    // offsets of the tile's outer index over the dims other than k and last; the output is
    // contiguous in the collapsed shape, so its stride along dim d is the product of the later sizes
    int64_t o = t / (ct * ht), off[N] = {}, out = 0, out_k = 0, ostride = cols;
    for (int d = last - 1; d >= 0; --d) {
      if (d == k) {
        out_k = ostride;
      } else {
        const int64_t idx = o % g.shape[d];
        o /= g.shape[d];
#pragma unroll
        for (int q = 0; q < N; ++q) off[q] += idx * g.strides[q][d];
        out += idx * ostride;
      }
      ostride *= g.shape[d];
    }
#pragma unroll
    for (int q = 0; q < N; ++q)
      if (staged >> q & 1u)
        for (int cc = row; cc < 32; cc += 8) {
          const int64_t c = c0 + cc, i = i0 + lane;
          if (c < cols && i < height) tiles[q][cc][lane] = in.p[q][off[q] + i + c * g.strides[q][last]];
        }
    __syncthreads();
    for (int ii = row; ii < 32; ii += 8) {
      const int64_t i = i0 + ii, c = c0 + lane;
      if (c < cols && i < height) {
        T v[N];
#pragma unroll
        for (int q = 0; q < N; ++q)
          v[q] = staged >> q & 1u ? tiles[q][lane][ii] : in.p[q][off[q] + i * g.strides[q][k] + c * g.strides[q][last]];
        y[out + i * out_k + c] = f(v);
      }
    }
    __syncthreads();
  }
}

// The tiled kernel's dim k (transposed_dim, mk/strided.h) and the inputs it stages (those
// transposed along k), or k = -1 when no input is transposed.
template <int N>
inline int transposed_inputs(const StridedShape& sh, unsigned* staged) {
  *staged = 0;
  const int k = transposed_dim(sh, N);
  for (int q = 0; k >= 0 && q < N; ++q)
    if (transposed_along(sh, q, k)) *staged |= 1u << q;
  return k;
}

template <class T, int N, class F>
int elementwise_tiled(F f, const StridedShape& sh, int k, unsigned staged, Inputs<T> in, T* y, cudaStream_t s) {
  const int64_t height = sh.shape[k], cols = sh.shape[sh.rank - 1], outer = sh.numel / (height * cols);
  const int64_t tiles = outer * ((height + 31) / 32) * ((cols + 31) / 32);
  return launch(elementwise_tiled_kernel<T, N, F>, std::min<int64_t>(tiles, 65535LL * 32), kBlock,
                size_t(N) * 32 * 33 * sizeof(T), s, f, to_geometry(sh), k, staged, height, cols, outer, in, y);
}

template <class T>
__global__ void where_kernel(Geometry g, int64_t n, const T* c, const T* a, const T* b, T* y) {
  for (int64_t i = thread_id(); i < n; i += thread_count())
    y[i] = c[offset_of(g, 0, i)] != T(0) ? a[offset_of(g, 1, i)] : b[offset_of(g, 2, i)];
}

template <class T, int VEC>
__global__ void where_flat_kernel(int64_t n, const T* __restrict__ c, const T* __restrict__ a, const T* __restrict__ b,
                                  T* __restrict__ y) {
  const int64_t packs = n / VEC;
  const Pack<T, VEC>* cs = reinterpret_cast<const Pack<T, VEC>*>(c);
  const Pack<T, VEC>* as = reinterpret_cast<const Pack<T, VEC>*>(a);
  const Pack<T, VEC>* bs = reinterpret_cast<const Pack<T, VEC>*>(b);
  Pack<T, VEC>* ys = reinterpret_cast<Pack<T, VEC>*>(y);
  for (int64_t i = thread_id(); i < packs; i += thread_count()) {
    const Pack<T, VEC> cc = cs[i], aa = as[i], bb = bs[i];
    Pack<T, VEC> r;
#pragma unroll
    for (int k = 0; k < VEC; ++k) r.v[k] = cc.v[k] != T(0) ? aa.v[k] : bb.v[k];
    ys[i] = r;
  }
  for (int64_t i = packs * VEC + thread_id(); i < n; i += thread_count()) y[i] = c[i] != T(0) ? a[i] : b[i];
}

// ---- reductions ---------------------------------------------------------------------------------
// A partial result: a sum (index unused), or an extreme value with the index of its element.
struct Partial {
  double v;
  int64_t i;
};

__device__ __forceinline__ bool is_nan(double v) { return v != v; }

template <int OP>
__device__ __forceinline__ void red_init(double& v, int64_t& i) {
  v = OP == MK_REDUCE_SUM ? 0.0 : (OP == MK_REDUCE_MAX ? -INFINITY : INFINITY);
  i = kNone;
}

// Element j after every element this thread has seen (j increasing): the twin's scan step.
template <int OP>
__device__ __forceinline__ void red_add(double& v, int64_t& i, double x, int64_t j) {
  if (OP == MK_REDUCE_SUM) {
    v += x;
  } else {
    const bool better = i == kNone || (OP == MK_REDUCE_MAX ? x > v : x < v) || (is_nan(x) && !is_nan(v));
    if (better) {
      v = x;
      i = j;
    }
  }
}

// Two partials over disjoint index sets, in any order: for max/min the result is what the twin's
// scan over the union gives (NaN first by index, then the extreme value, ties to the lower index).
template <int OP>
__device__ __forceinline__ void red_combine(double& v, int64_t& i, double w, int64_t k) {
  if (OP == MK_REDUCE_SUM) {
    v += w;
    return;
  }
  if (k == kNone) return;
  bool take;
  if (i == kNone) take = true;
  else if (is_nan(w)) take = !is_nan(v) || k < i;
  else if (is_nan(v)) take = false;
  else if (w == v) take = k < i;
  else take = OP == MK_REDUCE_MAX ? w > v : w < v;
  if (take) {
    v = w;
    i = k;
  }
}

template <int OP>
__device__ __forceinline__ void warp_combine(double& v, int64_t& i) {
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) {
    const double w = __shfl_xor_sync(0xffffffffu, v, m);
    const int64_t k = OP == MK_REDUCE_SUM ? 0 : __shfl_xor_sync(0xffffffffu, i, m);
    red_combine<OP>(v, i, w, k);
  }
}

template <class T>
__device__ __forceinline__ void store_result(T* y, int64_t* idx, Partial* part, int64_t slot, int64_t out, double v,
                                             int64_t i) {
  if (part) {
    part[slot] = Partial{v, i};
  } else {
    y[out] = T(v);
    if (idx) idx[out] = i == kNone ? 0 : i;
  }
}

// One thread per output (o, i), j = 0 .. len-1 in order.
template <class T, int OP>
__global__ void reduce_flat_kernel(int64_t outer, int64_t len, int64_t inner, const T* __restrict__ x, T* y,
                                   int64_t* idx) {
  const int64_t outs = outer * inner;
  for (int64_t out = thread_id(); out < outs; out += thread_count()) {
    const int64_t o = out / inner, i = out % inner;
    const T* base = x + o * len * inner + i;
    double v;
    int64_t b;
    red_init<OP>(v, b);
    for (int64_t j = 0; j < len; ++j) red_add<OP>(v, b, double(base[j * inner]), j);
    y[out] = T(v);
    if (idx) idx[out] = b == kNone ? 0 : b;
  }
}

// inner == 1: a group of G threads (32: a warp; kBlock: the block) per (row, chunk) item; items =
// rows * splits, chunk s of row r = [s * chunk, min(len, (s + 1) * chunk)). VEC > 1 only when x is
// aligned and len and chunk are multiples of VEC (no tails). part == nullptr: splits == 1 and the
// results go to y / idx.
template <class T, int OP, int G, int VEC>
__global__ void reduce_rows_kernel(int64_t rows, int64_t len, int64_t splits, int64_t chunk, const T* __restrict__ x,
                                   T* y, int64_t* idx, Partial* part) {
  constexpr int kGroups = kBlock / G;
  Partial* const warp_part = reinterpret_cast<Partial*>(mk_dense_smem);  // [kWarps], G == kBlock only
  const int lane = int(threadIdx.x % unsigned(G));
  const int64_t items = rows * splits;
  for (int64_t item0 = int64_t(blockIdx.x) * kGroups; item0 < items; item0 += int64_t(gridDim.x) * kGroups) {
    const int64_t item = item0 + threadIdx.x / unsigned(G);  // uniform over the group
    double v;
    int64_t b;
    red_init<OP>(v, b);
    if (item < items) {
      const int64_t r = item / splits, s = item % splits;
      const int64_t lo = s * chunk, hi = lo + chunk < len ? lo + chunk : len;
      const T* xr = x + r * len;
#pragma unroll 4
      for (int64_t j = lo + int64_t(lane) * VEC; j < hi; j += int64_t(G) * VEC) {
        if (VEC > 1) {
          const Pack<T, VEC> p = *reinterpret_cast<const Pack<T, VEC>*>(xr + j);
#pragma unroll
          for (int k = 0; k < VEC; ++k) red_add<OP>(v, b, double(p.v[k]), j + k);
        } else {
          red_add<OP>(v, b, double(xr[j]), j);
        }
      }
    }
    warp_combine<OP>(v, b);
    if (G == kBlock) {
      const int warp = int(threadIdx.x / 32);
      if (threadIdx.x % 32 == 0) warp_part[warp] = Partial{v, b};
      __syncthreads();
      if (threadIdx.x == 0) {
        v = warp_part[0].v;
        b = warp_part[0].i;
        for (int w = 1; w < kWarps; ++w) red_combine<OP>(v, b, warp_part[w].v, warp_part[w].i);
        if (item < items) store_result(y, idx, part, item, item, v, b);
      }
      __syncthreads();  // warp_part is reused by the next item
    } else if (lane == 0 && item < items) {
      store_result(y, idx, part, item, item, v, b);
    }
  }
}

// inner > 1: a block is tx columns (a power of two) by ty = kBlock / tx row slices of one chunk;
// items = outer * column tiles * splits. The outputs' partials go to part[out * splits + s].
template <class T, int OP>
__global__ void reduce_cols_kernel(int64_t outer, int64_t len, int64_t inner, int tx, int64_t splits, int64_t chunk,
                                   const T* __restrict__ x, T* y, int64_t* idx, Partial* part) {
  Partial* const sm = reinterpret_cast<Partial*>(mk_dense_smem);  // [ty][tx]
  const int ty_count = kBlock / tx;
  const int cx = int(threadIdx.x) % tx, cy = int(threadIdx.x) / tx;
  const int64_t tiles = (inner + tx - 1) / tx;
  const int64_t items = outer * tiles * splits;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t s = item % splits, t = item / splits;
    const int64_t o = t / tiles, i = (t % tiles) * tx + cx;
    const int64_t lo = s * chunk, hi = lo + chunk < len ? lo + chunk : len;
    double v;
    int64_t b;
    red_init<OP>(v, b);
    if (i < inner) {
      const T* base = x + o * len * inner + i;
#pragma unroll 4
      for (int64_t j = lo + cy; j < hi; j += ty_count) red_add<OP>(v, b, double(base[j * inner]), j);
    }
    sm[threadIdx.x] = Partial{v, b};
    __syncthreads();
    for (int h = ty_count / 2; h >= 1; h /= 2) {
      if (cy < h) {
        Partial& me = sm[threadIdx.x];
        const Partial other = sm[threadIdx.x + h * tx];
        red_combine<OP>(me.v, me.i, other.v, other.i);
      }
      __syncthreads();
    }
    if (cy == 0 && i < inner) {
      const int64_t out = o * inner + i;
      store_result(y, idx, part, out * splits + s, out, sm[threadIdx.x].v, sm[threadIdx.x].i);
    }
    __syncthreads();  // sm is reused by the next item
  }
}

// The second pass: output `out` combines its splits partials in chunk order.
template <class T, int OP>
__global__ void reduce_finish_kernel(int64_t outs, int64_t splits, const Partial* __restrict__ part, T* y,
                                     int64_t* idx) {
  for (int64_t out = thread_id(); out < outs; out += thread_count()) {
    const Partial* p = part + out * splits;
    double v = p[0].v;
    int64_t b = p[0].i;
    for (int64_t s = 1; s < splits; ++s) red_combine<OP>(v, b, p[s].v, p[s].i);
    y[out] = T(v);
    if (idx) idx[out] = b == kNone ? 0 : b;
  }
}

// ---- softmax ------------------------------------------------------------------------------------
// An online (max m, sum s of exp(x - m)) pair. NaN in m marks a NaN row; -inf entries add nothing.
template <class T>
__device__ __forceinline__ double exp_of(double d) {
  if constexpr (sizeof(T) == 4) return double(expf(float(d)));
  else return exp(d);
}

template <class T>
__device__ __forceinline__ void online_add(double& m, double& s, T xv) {
  const double v = double(xv);
  if (v != v) {
    m = NAN;
    s = NAN;
  } else if (v > m) {
    s = s * exp_of<T>(m - v) + exp_of<T>(v - v);  // exp(m - v): 0 while m is -inf; NaN for +inf - +inf as the twin
    m = v;
  } else if (v != -INFINITY) {
    s += exp_of<T>(v - m);
  }
}

// The rescale factors in T's precision (F32: expf; the sums stay in double).
template <class T>
__device__ __forceinline__ void online_combine(double& m, double& s, double m2, double s2) {
  if (m != m || m2 != m2) {
    m = NAN;
    s = NAN;
    return;
  }
  const double mm = m > m2 ? m : m2;
  if (mm == -INFINITY) return;  // both empty
  const double a = m == -INFINITY ? 0.0 : s * exp_of<T>(m - mm);
  const double b = m2 == -INFINITY ? 0.0 : s2 * exp_of<T>(m2 - mm);
  m = mm;
  s = a + b;
}

template <class T>
__device__ __forceinline__ void warp_online(double& m, double& s) {
#pragma unroll
  for (int k = 16; k >= 1; k /= 2) {
    const double m2 = __shfl_xor_sync(0xffffffffu, m, k);
    const double s2 = __shfl_xor_sync(0xffffffffu, s, k);
    online_combine<T>(m, s, m2, s2);
  }
}

template <class T>
__device__ __forceinline__ T softmax_out(int log, T xv, double m, double s) {
  if (m == -INFINITY) return log ? T(-INFINITY) : T(0);
  if constexpr (sizeof(T) == 4) {
    if (log) return (xv - float(m)) - float(::log(s));  // as the CPU twin: full relative precision at large m
    return expf(xv - float(m)) * float(1.0 / s);
  } else {
    if (log) return (xv - m) - ::log(s);
    return exp(xv - m) * (1.0 / s);
  }
}

// A group of G threads (a warp, or the block) per row; VEC > 1 when x and y are aligned and cols
// is a multiple of VEC.
template <class T, int G, int VEC>
__global__ void softmax_rows_kernel(int log, int64_t rows, int64_t cols, const T* __restrict__ x, T* __restrict__ y) {
  constexpr int kGroups = kBlock / G;
  double* const sm = reinterpret_cast<double*>(mk_dense_smem);  // [2][kWarps], G == kBlock only
  const int lane = int(threadIdx.x % unsigned(G));
  for (int64_t r0 = int64_t(blockIdx.x) * kGroups; r0 < rows; r0 += int64_t(gridDim.x) * kGroups) {
    const int64_t r = r0 + threadIdx.x / unsigned(G);  // uniform over the group
    const bool live = r < rows;
    const T* xr = x + (live ? r : 0) * cols;
    T* yr = y + (live ? r : 0) * cols;
    double m = -INFINITY, s = 0;
    if (live) {
      for (int64_t c = int64_t(lane) * VEC; c < cols; c += int64_t(G) * VEC) {
        if (VEC > 1) {
          const Pack<T, VEC> p = *reinterpret_cast<const Pack<T, VEC>*>(xr + c);
#pragma unroll
          for (int k = 0; k < VEC; ++k) online_add<T>(m, s, p.v[k]);
        } else {
          online_add<T>(m, s, xr[c]);
        }
      }
    }
    warp_online<T>(m, s);
    if (G == kBlock) {
      const int warp = int(threadIdx.x / 32);
      if (threadIdx.x % 32 == 0) {
        sm[warp] = m;
        sm[kWarps + warp] = s;
      }
      __syncthreads();
      m = sm[0];
      s = sm[kWarps];
      for (int w = 1; w < kWarps; ++w) online_combine<T>(m, s, sm[w], sm[kWarps + w]);
      __syncthreads();  // sm is reused by the next row
    }
    if (!live) continue;
    for (int64_t c = int64_t(lane) * VEC; c < cols; c += int64_t(G) * VEC) {
      if (VEC > 1) {
        Pack<T, VEC> p = *reinterpret_cast<const Pack<T, VEC>*>(xr + c);
#pragma unroll
        for (int k = 0; k < VEC; ++k) p.v[k] = softmax_out<T>(log, p.v[k], m, s);
        *reinterpret_cast<Pack<T, VEC>*>(yr + c) = p;
      } else {
        yr[c] = softmax_out<T>(log, xr[c], m, s);
      }
    }
  }
}

// ---- indexing and the matmul fallback -----------------------------------------------------------
template <class T>
__global__ void index_select_kernel(int64_t outer, int64_t src_len, int64_t inner, const T* x,
                                    const int64_t* idx, int64_t n_idx, T* y) {
  const int64_t n = outer * n_idx * inner;
  for (int64_t t = thread_id(); t < n; t += thread_count()) {
    const int64_t i = t % inner, j = (t / inner) % n_idx, o = t / (inner * n_idx);
    y[t] = x[(o * src_len + idx[j]) * inner + i];
  }
}

// Deterministic: one thread per (o, i) column walks j in order (no atomics).
template <class T>
__global__ void index_add_kernel(int64_t outer, int64_t dst_len, int64_t inner, T* dst,
                                 const int64_t* idx, int64_t n_idx, const T* src) {
  const int64_t n = outer * inner;
  for (int64_t t = thread_id(); t < n; t += thread_count()) {
    const int64_t i = t % inner, o = t / inner;
    for (int64_t j = 0; j < n_idx; ++j)
      dst[(o * dst_len + idx[j]) * inner + i] += src[(o * n_idx + j) * inner + i];
  }
}

template <class T>
__global__ void gather_kernel(int64_t outer, int64_t src_len, int64_t inner, const T* x,
                              const int64_t* idx, int64_t idx_len, T* y) {
  const int64_t n = outer * idx_len * inner;
  for (int64_t t = thread_id(); t < n; t += thread_count()) {
    const int64_t i = t % inner, o = t / (inner * idx_len);
    y[t] = x[(o * src_len + idx[t]) * inner + i];
  }
}

template <class T>
__global__ void scatter_add_kernel(int64_t outer, int64_t dst_len, int64_t inner, T* dst,
                                   const int64_t* idx, int64_t idx_len, const T* src) {
  const int64_t n = outer * inner;
  for (int64_t t = thread_id(); t < n; t += thread_count()) {
    const int64_t i = t % inner, o = t / inner;
    for (int64_t j = 0; j < idx_len; ++j) {
      const int64_t s = (o * idx_len + j) * inner + i;
      dst[(o * dst_len + idx[s]) * inner + i] += src[s];
    }
  }
}

__device__ unsigned long long g_bad_indices;

__global__ void index_check_kernel(int64_t n, const int64_t* idx, int64_t bound) {
  unsigned long long local = 0;
  for (int64_t t = thread_id(); t < n; t += thread_count())
    local += (idx[t] < 0 || idx[t] >= bound) ? 1ull : 0ull;
  if (local) atomicAdd(&g_bad_indices, local);
}

template <class T>
__global__ void matmul_naive_kernel(int64_t batch, int64_t m, int64_t n, int64_t k, const T* a,
                                    int64_t a_bs, int64_t a_rs, int64_t a_cs, const T* b,
                                    int64_t b_bs, int64_t b_rs, int64_t b_cs, T* c, int64_t c_bs) {
  const int64_t total = batch * m * n;
  for (int64_t t = thread_id(); t < total; t += thread_count()) {
    const int64_t j = t % n, i = (t / n) % m, bb = t / (m * n);
    const T* ar = a + bb * a_bs + i * a_rs;
    const T* bc = b + bb * b_bs + j * b_cs;
    T acc = 0;
    for (int64_t p = 0; p < k; ++p) acc += ar[p * a_cs] * bc[p * b_rs];
    c[bb * c_bs + i * n + j] = acc;
  }
}

int64_t contiguous_strides(int rank, const int64_t* shape, int64_t* out) {
  int64_t acc = 1;
  for (int d = rank - 1; d >= 0; --d) {
    out[d] = acc;
    acc *= shape[d];
  }
  return acc;
}

// Operand k of a collapsed shape: 1 contiguous (one dim of stride 1, or a single element), 0 one
// element broadcast (stride 0), -1 strided.
int flat_kind(const StridedShape& sh, int k) {
  if (sh.rank == 0) return 1;
  if (sh.rank != 1) return -1;
  if (sh.strides[k][0] == 1) return 1;
  if (sh.strides[k][0] == 0) return 0;
  return -1;
}

template <class T, int VEC>
int unary_flat(int op, int64_t n, const T* x, T* y, T p, cudaStream_t s) {
  return launch(unary_flat_kernel<T, VEC>, grid_for((n + VEC - 1) / VEC), kBlock, 0, s, op, n, x, y, p);
}

template <class T>
int unary_t(int op, const StridedShape& sh, const T* x, T* y, T p, cudaStream_t s) {
  const int64_t n = sh.numel;
  if (flat_kind(sh, 0) == 1) {
    constexpr int V = vec_of<T>();
    if (aligned(x, 16) && aligned(y, 16)) return unary_flat<T, V>(op, n, x, y, p, s);
    return unary_flat<T, 1>(op, n, x, y, p, s);
  }
  unsigned staged;
  const int k = transposed_inputs<1>(sh, &staged);
  if (k >= 0) return elementwise_tiled<T, 1>(UnaryOp<T>{op, p}, sh, k, staged, Inputs<T>{{x, nullptr, nullptr}}, y, s);
  return launch(unary_kernel<T>, grid_for(n), kBlock, 0, s, op, to_geometry(sh), n, x, y, p);
}

template <class T, int VEC>
int binary_flat(int op, int ka, int kb, int64_t n, const T* a, const T* b, T* y, cudaStream_t s) {
  const int64_t grid = grid_for((n + VEC - 1) / VEC);
  if (ka == 0) return launch(binary_flat_kernel<T, VEC, true, false>, grid, kBlock, 0, s, op, n, a, b, y);
  if (kb == 0) return launch(binary_flat_kernel<T, VEC, false, true>, grid, kBlock, 0, s, op, n, a, b, y);
  return launch(binary_flat_kernel<T, VEC, false, false>, grid, kBlock, 0, s, op, n, a, b, y);
}

template <class T>
int binary_t(int op, const StridedShape& sh, const T* a, const T* b, T* y, cudaStream_t s) {
  const int64_t n = sh.numel;
  const int ka = flat_kind(sh, 0), kb = flat_kind(sh, 1);
  if (ka >= 0 && kb >= 0 && (ka == 1 || kb == 1)) {
    constexpr int V = vec_of<T>();
    if ((ka == 0 || aligned(a, 16)) && (kb == 0 || aligned(b, 16)) && aligned(y, 16))
      return binary_flat<T, V>(op, ka, kb, n, a, b, y, s);
    return binary_flat<T, 1>(op, ka, kb, n, a, b, y, s);
  }
  unsigned staged;
  const int k = transposed_inputs<2>(sh, &staged);
  if (k >= 0) return elementwise_tiled<T, 2>(BinaryOp<T>{op}, sh, k, staged, Inputs<T>{{a, b, nullptr}}, y, s);
  return launch(binary_kernel<T>, grid_for(n), kBlock, 0, s, op, to_geometry(sh), n, a, b, y);
}

template <class T>
int where_t(const StridedShape& sh, const T* c, const T* a, const T* b, T* y, cudaStream_t s) {
  const int64_t n = sh.numel;
  if (flat_kind(sh, 0) == 1 && flat_kind(sh, 1) == 1 && flat_kind(sh, 2) == 1) {
    constexpr int V = vec_of<T>();
    if (aligned(c, 16) && aligned(a, 16) && aligned(b, 16) && aligned(y, 16))
      return launch(where_flat_kernel<T, V>, grid_for((n + V - 1) / V), kBlock, 0, s, n, c, a, b, y);
    return launch(where_flat_kernel<T, 1>, grid_for(n), kBlock, 0, s, n, c, a, b, y);
  }
  unsigned staged;
  const int k = transposed_inputs<3>(sh, &staged);
  if (k >= 0) return elementwise_tiled<T, 3>(WhereOp<T>{}, sh, k, staged, Inputs<T>{{c, a, b}}, y, s);
  return launch(where_kernel<T>, grid_for(n), kBlock, 0, s, to_geometry(sh), n, c, a, b, y);
}

template <class T>
int copy_t(const StridedShape& sh, const T* src, T* dst, cudaStream_t s) {
  const int64_t n = sh.numel;
  if (flat_kind(sh, 0) == 1 && flat_kind(sh, 1) == 1) {
    constexpr int V = vec_of<T>();
    if (aligned(src, 16) && aligned(dst, 16))
      return launch(copy_flat_kernel<T, V>, grid_for((n + V - 1) / V), kBlock, 0, s, n, src, dst);
    return launch(copy_flat_kernel<T, 1>, grid_for(n), kBlock, 0, s, n, src, dst);
  }
  // a transposed source into a destination contiguous along the last dim: the tiled kernel
  if (sh.rank >= 2 && sh.strides[1][sh.rank - 1] == 1) {
    const int k = transposed_dim(sh, 1);  // of the source
    if (k >= 0) {
      const int64_t height = sh.shape[k], cols = sh.shape[sh.rank - 1];
      const int64_t tiles = (n / (height * cols)) * ((height + 31) / 32) * ((cols + 31) / 32);
      return launch(copy_transpose_kernel<T>, std::min<int64_t>(tiles, 65535LL * 32), kBlock, 32 * 33 * sizeof(T), s,
                    to_geometry(sh), k,
                    height, cols, n / (height * cols), src, dst);
    }
  }
  return launch(copy_kernel<T>, grid_for(n), kBlock, 0, s, to_geometry(sh), n, src, dst);
}

template <class T>
int fill_t(int64_t n, T* dst, T v, cudaStream_t s) {
  if (aligned(dst, 16)) return launch(fill_vec_kernel<T>, grid_for((n + vec_of<T>() - 1) / vec_of<T>()), kBlock, 0, s, dst, n, v);
  return launch(fill_kernel<T>, grid_for(n), kBlock, 0, s, dst, n, v);
}

template <int SD, int DD>
int cast_typed(int64_t n, const void* src, void* dst, cudaStream_t s) {
  using S = typename Storage<SD>::type;
  using D = typename Storage<DD>::type;
  constexpr int V = int(16 / (sizeof(S) > sizeof(D) ? sizeof(S) : sizeof(D)));
  if (!aligned(src, sizeof(S) * V) || !aligned(dst, sizeof(D) * V))
    return launch(cast_vec_kernel<SD, DD, 1>, grid_for(n), kBlock, 0, s, n, static_cast<const S*>(src),
                  static_cast<D*>(dst));
  return launch(cast_vec_kernel<SD, DD, V>, grid_for((n + V - 1) / V), kBlock, 0, s, n, static_cast<const S*>(src),
                static_cast<D*>(dst));
}

template <int SD>
int cast_from(int dd, int64_t n, const void* src, void* dst, cudaStream_t s) {
  switch (dd) {
    case MK_F32: return cast_typed<SD, MK_F32>(n, src, dst, s);
    case MK_F64: return cast_typed<SD, MK_F64>(n, src, dst, s);
    case MK_I64: return cast_typed<SD, MK_I64>(n, src, dst, s);
    case MK_BF16: return cast_typed<SD, MK_BF16>(n, src, dst, s);
    case MK_F16: return cast_typed<SD, MK_F16>(n, src, dst, s);
    default: return KERNEL_UNSUPPORTED;
  }
}

// ---- the reduction plan -------------------------------------------------------------------------
enum ReduceKind { kFlat = 0, kWarpRows = 1, kBlockRows = 2, kCols = 3 };

struct ReducePlan {
  int kind;
  int tx;          // kCols: columns per block
  int64_t splits;  // chunks of len (1: no second pass)
  int64_t chunk;   // elements of len per chunk
  int64_t outs;

  int64_t workspace_bytes() const { return splits > 1 ? outs * splits * int64_t(sizeof(Partial)) : 0; }
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The plan depends on the shape (and whether a workspace may be used) only.
ReducePlan plan_reduce(int64_t outer, int64_t len, int64_t inner, bool may_split) {
  ReducePlan p{};
  p.outs = outer * inner;
  p.splits = 1;
  p.chunk = len;
  p.tx = 1;
  const int64_t target = MK_DENSE_REDUCE_TARGET_BLOCKS, min_chunk = MK_DENSE_REDUCE_MIN_CHUNK;
  if (len <= MK_DENSE_FLAT_LEN || (inner > 1 && p.outs >= MK_DENSE_FLAT_OUTPUTS)) {
    p.kind = kFlat;
    return p;
  }
  if (inner == 1) {
    if (len <= MK_DENSE_WARP_LEN) {
      p.kind = kWarpRows;
      return p;
    }
    p.kind = kBlockRows;
    if (may_split && outer < target) {
      const int64_t want = std::min(ceil_div(target, outer), ceil_div(len, min_chunk));
      if (want > 1) {
        p.chunk = ceil_div(ceil_div(len, want), 8) * 8;  // a multiple of every VEC
        p.splits = ceil_div(len, p.chunk);
      }
    }
    return p;
  }
  p.kind = kCols;
  int tx = 2;
  while (tx < 32 && tx < inner) tx *= 2;
  p.tx = tx;
  const int64_t tiles = outer * ceil_div(inner, tx);
  if (may_split && tiles < target) {
    const int64_t want = std::min(ceil_div(target, tiles), ceil_div(len * tx, min_chunk));
    if (want > 1) {
      p.chunk = ceil_div(len, want);
      p.splits = ceil_div(len, p.chunk);
    }
  }
  return p;
}

template <class T, int OP>
int reduce_run(const ReducePlan& p, int64_t outer, int64_t len, int64_t inner, const T* x, T* y, int64_t* idx,
               void* workspace, cudaStream_t s) {
  Partial* part = p.splits > 1 ? static_cast<Partial*>(workspace) : nullptr;
  constexpr int64_t kMaxGrid = 65535LL * 32;
  int st = 0;
  switch (p.kind) {
    case kFlat:
      return launch(reduce_flat_kernel<T, OP>, grid_for(p.outs), kBlock, 0, s, outer, len, inner, x, y, idx);
    case kWarpRows:
    case kBlockRows: {
      constexpr int V = vec_of<T>();
      const bool vec = aligned(x, 16) && len % V == 0 && p.chunk % V == 0;
      const int64_t items = outer * p.splits;
      if (p.kind == kWarpRows) {
        const int64_t grid = std::min(ceil_div(items, kWarps), kMaxGrid);
        st = vec ? launch(reduce_rows_kernel<T, OP, 32, V>, grid, kBlock, 0, s, outer, len, p.splits, p.chunk, x, y,
                          idx, part)
                 : launch(reduce_rows_kernel<T, OP, 32, 1>, grid, kBlock, 0, s, outer, len, p.splits, p.chunk, x, y,
                          idx, part);
      } else {
        const int64_t grid = std::min(items, kMaxGrid);
        const size_t smem = sizeof(Partial) * kWarps;
        st = vec ? launch(reduce_rows_kernel<T, OP, kBlock, V>, grid, kBlock, smem, s, outer, len, p.splits, p.chunk,
                          x, y, idx, part)
                 : launch(reduce_rows_kernel<T, OP, kBlock, 1>, grid, kBlock, smem, s, outer, len, p.splits, p.chunk,
                          x, y, idx, part);
      }
      break;
    }
    default: {
      const int64_t items = outer * ceil_div(inner, p.tx) * p.splits;
      st = launch(reduce_cols_kernel<T, OP>, std::min(items, kMaxGrid), kBlock, sizeof(Partial) * kBlock, s, outer,
                  len, inner, p.tx, p.splits, p.chunk, x, y, idx, part);
      break;
    }
  }
  if (st != 0 || !part) return st;
  return launch(reduce_finish_kernel<T, OP>, grid_for(p.outs), kBlock, 0, s, p.outs, p.splits,
                static_cast<const Partial*>(part), y, idx);
}

template <class T>
int reduce_t(int op, const ReducePlan& p, int64_t outer, int64_t len, int64_t inner, const void* x, void* y,
             int64_t* idx, void* workspace, cudaStream_t s) {
  const T* xt = static_cast<const T*>(x);
  T* yt = static_cast<T*>(y);
  switch (op) {
    case MK_REDUCE_SUM: return reduce_run<T, MK_REDUCE_SUM>(p, outer, len, inner, xt, yt, nullptr, workspace, s);
    case MK_REDUCE_MAX: return reduce_run<T, MK_REDUCE_MAX>(p, outer, len, inner, xt, yt, idx, workspace, s);
    case MK_REDUCE_MIN: return reduce_run<T, MK_REDUCE_MIN>(p, outer, len, inner, xt, yt, idx, workspace, s);
    default: return KERNEL_UNSUPPORTED;
  }
}

template <class T>
int softmax_t(int log, int64_t rows, int64_t cols, const T* x, T* y, cudaStream_t s) {
  constexpr int V = vec_of<T>();
  constexpr int64_t kMaxGrid = 65535LL * 32;
  const bool vec = aligned(x, 16) && aligned(y, 16) && cols % V == 0;
  if (cols <= MK_DENSE_SOFTMAX_WARP_COLS) {
    const int64_t grid = std::min(ceil_div(rows, kWarps), kMaxGrid);
    if (vec) return launch(softmax_rows_kernel<T, 32, V>, grid, kBlock, 0, s, log, rows, cols, x, y);
    return launch(softmax_rows_kernel<T, 32, 1>, grid, kBlock, 0, s, log, rows, cols, x, y);
  }
  const int64_t grid = std::min(rows, kMaxGrid);
  const size_t smem = 2 * kWarps * sizeof(double);
  if (vec) return launch(softmax_rows_kernel<T, kBlock, V>, grid, kBlock, smem, s, log, rows, cols, x, y);
  return launch(softmax_rows_kernel<T, kBlock, 1>, grid, kBlock, smem, s, log, rows, cols, x, y);
}

}  // namespace

int fill(int dtype, int64_t n, void* dst, double value, void* stream) {
  auto s = as_stream(stream);
  if (n <= 0) return 0;
  switch (dtype) {
    case MK_F32: return fill_t(n, static_cast<float*>(dst), float(value), s);
    case MK_F64: return fill_t(n, static_cast<double*>(dst), value, s);
    case MK_I64: return fill_t(n, static_cast<int64_t*>(dst), f64_to_i64(value), s);
    case MK_BF16: return fill_t(n, static_cast<uint16_t*>(dst), f64_to_bf16_bits(value), s);
    case MK_F16: return fill_t(n, static_cast<uint16_t*>(dst), f64_to_f16_bits(value), s);
    default: return KERNEL_UNSUPPORTED;
  }
}

int copy_strided(int dtype, int rank, const int64_t* shape, const void* src, const int64_t* src_strides, void* dst,
                 const int64_t* dst_strides, void* stream) {
  const int64_t* st[2] = {src_strides, dst_strides};
  StridedShape sh = collapse(rank, shape, 2, st);
  if (sh.numel == 0) return 0;
  auto s = as_stream(stream);
  switch (dtype_size(dtype)) {
    case 8: return copy_t(sh, static_cast<const int64_t*>(src), static_cast<int64_t*>(dst), s);
    case 4: return copy_t(sh, static_cast<const int32_t*>(src), static_cast<int32_t*>(dst), s);
    case 2: return copy_t(sh, static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst), s);
    default: return KERNEL_UNSUPPORTED;
  }
}

int cast(int src_dtype, int dst_dtype, int64_t n, const void* src, void* dst, void* stream) {
  auto s = as_stream(stream);
  if (n <= 0) return 0;
  switch (src_dtype) {
    case MK_F32: return cast_from<MK_F32>(dst_dtype, n, src, dst, s);
    case MK_F64: return cast_from<MK_F64>(dst_dtype, n, src, dst, s);
    case MK_I64: return cast_from<MK_I64>(dst_dtype, n, src, dst, s);
    case MK_BF16: return cast_from<MK_BF16>(dst_dtype, n, src, dst, s);
    case MK_F16: return cast_from<MK_F16>(dst_dtype, n, src, dst, s);
    default: return KERNEL_UNSUPPORTED;
  }
}

int random_fill(int dtype, int dist, int64_t n, void* dst, uint64_t seed, double a, double b, void* stream) {
  const uint64_t key = random_key(seed);
  auto s = as_stream(stream);
  if (n <= 0) return 0;
  if (dtype == MK_F32) {
    float* d = static_cast<float*>(dst);
    const float lim = random_limit<float>(a, b);
    if (aligned(d, 16)) return launch(random_vec_kernel<float>, grid_for((n + 3) / 4), kBlock, 0, s, dist, n, d, key, a, b, lim);
    return launch(random_kernel<float>, grid_for(n), kBlock, 0, s, dist, n, d, key, a, b, lim);
  }
  double* d = static_cast<double*>(dst);
  const double lim = random_limit<double>(a, b);
  if (aligned(d, 16)) return launch(random_vec_kernel<double>, grid_for((n + 1) / 2), kBlock, 0, s, dist, n, d, key, a, b, lim);
  return launch(random_kernel<double>, grid_for(n), kBlock, 0, s, dist, n, d, key, a, b, lim);
}

int unary(int dtype, int op, int rank, const int64_t* shape, const void* x, const int64_t* x_strides, void* y,
          double p, void* stream) {
  int64_t ys[MK_MAX_RANK];
  contiguous_strides(rank, shape, ys);
  const int64_t* st[2] = {x_strides, ys};
  StridedShape sh = collapse(rank, shape, 2, st);
  if (sh.numel == 0) return 0;
  auto s = as_stream(stream);
  if (dtype == MK_F32) return unary_t(op, sh, static_cast<const float*>(x), static_cast<float*>(y), float(p), s);
  return unary_t(op, sh, static_cast<const double*>(x), static_cast<double*>(y), p, s);
}

int binary(int dtype, int op, int rank, const int64_t* shape, const void* a, const int64_t* a_strides, const void* b,
           const int64_t* b_strides, void* out, void* stream) {
  const int64_t* st[2] = {a_strides, b_strides};
  StridedShape sh = collapse(rank, shape, 2, st);
  if (sh.numel == 0) return 0;
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    return binary_t(op, sh, static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(out), s);
  return binary_t(op, sh, static_cast<const double*>(a), static_cast<const double*>(b), static_cast<double*>(out), s);
}

int where(int dtype, int rank, const int64_t* shape, const void* cond, const int64_t* c_strides, const void* a,
          const int64_t* a_strides, const void* b, const int64_t* b_strides, void* out, void* stream) {
  const int64_t* st[3] = {c_strides, a_strides, b_strides};
  StridedShape sh = collapse(rank, shape, 3, st);
  if (sh.numel == 0) return 0;
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    return where_t(sh, static_cast<const float*>(cond), static_cast<const float*>(a), static_cast<const float*>(b),
                   static_cast<float*>(out), s);
  return where_t(sh, static_cast<const double*>(cond), static_cast<const double*>(a), static_cast<const double*>(b),
                 static_cast<double*>(out), s);
}

int reduce(int dtype, int op, int64_t outer, int64_t len, int64_t inner, const void* x, void* y, int64_t* indices,
           void* stream) {
  if (outer * inner == 0) return 0;
  const ReducePlan p = plan_reduce(outer, len, inner, false);
  if (dtype == MK_F32) return reduce_t<float>(op, p, outer, len, inner, x, y, indices, nullptr, as_stream(stream));
  return reduce_t<double>(op, p, outer, len, inner, x, y, indices, nullptr, as_stream(stream));
}

int64_t reduce_workspace(int dtype, int op, int64_t outer, int64_t len, int64_t inner) {
  (void)dtype;
  (void)op;
  if (outer * inner == 0) return 0;
  return plan_reduce(outer, len, inner, true).workspace_bytes();
}

int reduce_split(int dtype, int op, int64_t outer, int64_t len, int64_t inner, const void* x, void* y,
                 int64_t* indices, void* workspace, int64_t workspace_bytes, void* stream) {
  if (outer * inner == 0) return 0;
  ReducePlan p = plan_reduce(outer, len, inner, true);
  if (!workspace || workspace_bytes < p.workspace_bytes()) p = plan_reduce(outer, len, inner, false);
  if (dtype == MK_F32) return reduce_t<float>(op, p, outer, len, inner, x, y, indices, workspace, as_stream(stream));
  return reduce_t<double>(op, p, outer, len, inner, x, y, indices, workspace, as_stream(stream));
}

int softmax(int dtype, int log, int64_t rows, int64_t cols, const void* x, void* y, void* stream) {
  if (rows * cols == 0) return 0;
  auto s = as_stream(stream);
  if (dtype == MK_F32) return softmax_t(log, rows, cols, static_cast<const float*>(x), static_cast<float*>(y), s);
  return softmax_t(log, rows, cols, static_cast<const double*>(x), static_cast<double*>(y), s);
}

int index_select(int dtype, int64_t outer, int64_t src_len, int64_t inner, const void* x,
                 const int64_t* idx, int64_t n_idx, void* y, void* stream) {
  const int64_t n = outer * n_idx * inner;
  auto s = as_stream(stream);
  switch (dtype_size(dtype)) {
    case 8: return launch(index_select_kernel<int64_t>, grid_for(n), kBlock, 0, s, outer, src_len, inner, static_cast<const int64_t*>(x), idx, n_idx, static_cast<int64_t*>(y));
    case 4: return launch(index_select_kernel<int32_t>, grid_for(n), kBlock, 0, s, outer, src_len, inner, static_cast<const int32_t*>(x), idx, n_idx, static_cast<int32_t*>(y));
    case 2: return launch(index_select_kernel<uint16_t>, grid_for(n), kBlock, 0, s, outer, src_len, inner, static_cast<const uint16_t*>(x), idx, n_idx, static_cast<uint16_t*>(y));
    default: return KERNEL_UNSUPPORTED;
  }
  return last_error();
}

int index_add(int dtype, int64_t outer, int64_t dst_len, int64_t inner, void* dst,
              const int64_t* idx, int64_t n_idx, const void* src, void* stream) {
  const int64_t n = outer * inner;
  auto s = as_stream(stream);
  if (dtype == MK_F32) return launch(index_add_kernel<float>, grid_for(n), kBlock, 0, s, outer, dst_len, inner, static_cast<float*>(dst), idx, n_idx, static_cast<const float*>(src));
  else return launch(index_add_kernel<double>, grid_for(n), kBlock, 0, s, outer, dst_len, inner, static_cast<double*>(dst), idx, n_idx, static_cast<const double*>(src));
}

int gather(int dtype, int64_t outer, int64_t src_len, int64_t inner, const void* x,
           const int64_t* idx, int64_t idx_len, void* y, void* stream) {
  const int64_t n = outer * idx_len * inner;
  auto s = as_stream(stream);
  if (dtype == MK_F32) return launch(gather_kernel<float>, grid_for(n), kBlock, 0, s, outer, src_len, inner, static_cast<const float*>(x), idx, idx_len, static_cast<float*>(y));
  else return launch(gather_kernel<double>, grid_for(n), kBlock, 0, s, outer, src_len, inner, static_cast<const double*>(x), idx, idx_len, static_cast<double*>(y));
}

int scatter_add(int dtype, int64_t outer, int64_t dst_len, int64_t inner, void* dst,
                const int64_t* idx, int64_t idx_len, const void* src, void* stream) {
  const int64_t n = outer * inner;
  auto s = as_stream(stream);
  if (dtype == MK_F32) return launch(scatter_add_kernel<float>, grid_for(n), kBlock, 0, s, outer, dst_len, inner, static_cast<float*>(dst), idx, idx_len, static_cast<const float*>(src));
  else return launch(scatter_add_kernel<double>, grid_for(n), kBlock, 0, s, outer, dst_len, inner, static_cast<double*>(dst), idx, idx_len, static_cast<const double*>(src));
}

int index_check(int64_t n, const int64_t* idx, int64_t bound, int64_t* bad, void* stream) {
  // g_bad_indices is one counter per device: two host threads checking on different streams
  // would reset and read each other's count, so the whole reset-count-read runs under a lock.
  static std::mutex lock;
  std::lock_guard<std::mutex> guard(lock);
  auto s = as_stream(stream);
  const unsigned long long zero = 0;
  cudaError_t e = cudaMemcpyToSymbolAsync(g_bad_indices, &zero, sizeof zero, 0, cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) return int(e);
  e = cudaError_t(launch(index_check_kernel, grid_for(n), kBlock, 0, s, n, idx, bound));
  if (e != cudaSuccess) return int(e);
  unsigned long long count = 0;
  e = cudaMemcpyFromSymbolAsync(&count, g_bad_indices, sizeof count, 0, cudaMemcpyDeviceToHost, s);
  if (e != cudaSuccess) return int(e);
  e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return int(e);
  *bad = int64_t(count);
  return last_error();
}

int matmul_naive(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a,
                 int64_t a_bs, int64_t a_rs, int64_t a_cs, const void* b, int64_t b_bs,
                 int64_t b_rs, int64_t b_cs, void* c, int64_t c_bs, void* stream) {
  const int64_t total = batch * m * n;
  auto s = as_stream(stream);
  if (dtype == MK_F32) return launch(matmul_naive_kernel<float>, grid_for(total), kBlock, 0, s, batch, m, n, k, static_cast<const float*>(a), a_bs, a_rs, a_cs, static_cast<const float*>(b), b_bs, b_rs, b_cs, static_cast<float*>(c), c_bs);
  else return launch(matmul_naive_kernel<double>, grid_for(total), kBlock, 0, s, batch, m, n, k, static_cast<const double*>(a), a_bs, a_rs, a_cs, static_cast<const double*>(b), b_bs, b_rs, b_cs, static_cast<double*>(c), c_bs);
}

// mk_runtime_noop: one empty block of one thread, the floor under every launch.
__global__ void noop_kernel() {}

int noop(void* stream) { return launch_grid(noop_kernel, 1, 1, 0, as_stream(stream)); }

}  // namespace cuda
}  // namespace mk
