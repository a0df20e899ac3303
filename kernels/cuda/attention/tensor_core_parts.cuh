// Device helpers the 16-bit tensor-core attention kernels share (moved unchanged from
// kernels/cuda/attention/tensor_core.cu's anonymous namespace): the v1 traits, the head view, the
// global -> shared tile loaders, the quad reductions, the two warp products, the D preprocess and
// the launch helpers. Included by tensor_core.cu (forward, backward) and tensor_core_dd.cu (double
// backward); each translation unit gets its own copy (anonymous namespace).
#pragma once
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "mk/attention.h"
#include "../common.cuh"
#include "../mma.cuh"

namespace mk {
namespace cuda {
namespace {

struct TcTraits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockQ = 16 * kWarps;  // query rows per block: forward, dQ pass
  static constexpr int kBlockK = 64;           // keys per tile (forward, dQ) and per dK/dV block
  static constexpr int kTileQ = 32;            // query rows per tile of the dK/dV pass
  static constexpr int kPad = 8;               // 16-bit pad per shared row (16 bytes): conflict-free A/B reads
  static constexpr int kMaxCols = 128;         // output columns per backward block
};
using TT = TcTraits;
static_assert(TT::kBlockK == 16 * TT::kWarps, "the dK/dV pass gives each warp 16 keys of the block");
static_assert(TT::kBlockK % 16 == 0 && TT::kTileQ % 16 == 0, "k-steps of P V and Pᵀ dO are 16 wide");
static_assert((TT::kPad * 2) % 16 == 0, "shared rows stay 16-byte aligned");

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Dynamic shared memory of every kernel in this file (the layouts below carve it).
extern __shared__ __align__(16) unsigned char mk_attention_smem[];

// One (batch, query head): the shared view of mk/attention.h (16-bit or F32 operands, F32 lse)
// plus the row statistic of the backward.
template <class Raw>
struct TcHead : AttentionHead<Raw, float> {
  const float* drow;  // the row statistic D = rowsum(dO o O) in the workspace (backward)
};

template <class Raw>
__device__ TcHead<Raw> tc_head(const AttentionParams& p, int64_t b, int64_t h) {
  TcHead<Raw> x;
  static_cast<AttentionHead<Raw, float>&>(x) = attention_head<Raw, float>(p, b, h);
  x.drow = p.workspace ? static_cast<const float*>(p.workspace) + x.base : nullptr;
  return x;
}

// The F32 row statistics of the double backward in the workspace: D, C, E, each [B, H, Nq]
// (tensor_core_dd.cu and its Hopper passes, tensor_core_sm90_dd.cu)
struct DdStats {
  float *d, *c, *e;
};
__device__ __forceinline__ DdStats dd_stats(const AttentionParams& p) {
  float* w = static_cast<float*>(p.workspace);
  const int64_t rows = p.batch * p.heads * p.nq;
  return DdStats{w, w + rows, w + 2 * rows};
}

// ---- global -> shared tile loads; every thread of the block calls these -------------------------
// One 16-byte chunk (8 16-bit or 4 F32 values) of row r, columns [c, c + n) of a row-major [rows,
// width] matrix, zero past `rows` or `width`; one 16-byte load when `vec` (16-byte aligned rows).
template <class Raw>
struct Chunk {
  static constexpr int n = 16 / int(sizeof(Raw));
  Raw e[n];
};

template <class Raw>
__device__ __forceinline__ Chunk<Raw> load_chunk(const Raw* src, int64_t width, int r, int rows, int c, bool vec) {
  Chunk<Raw> x;
  constexpr int n = Chunk<Raw>::n;
  if (r < rows && vec && c + n <= width) {
    const uint4 w = *reinterpret_cast<const uint4*>(src + int64_t(r) * width + c);
    memcpy(x.e, &w, 16);
  } else {
#pragma unroll
    for (int i = 0; i < n; ++i) x.e[i] = (r < rows && c + i < width) ? src[int64_t(r) * width + c + i] : Raw(0);
  }
  return x;
}

// dst[r][c] = src[r][c0 + c], r < ROWS, c < COLS (row-major shared tile, leading dim ld), in the
// form the MMAs read (TF32: rounded)
template <class E, int ROWS, int COLS>
__device__ void load_tile(typename Operand<E>::Raw* dst, int ld, const typename Operand<E>::Raw* src, int64_t width,
                          int rows, int c0, bool vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  constexpr int n = Chunk<Raw>::n, chunks = COLS / n;
  for (int idx = threadIdx.x; idx < ROWS * chunks; idx += TT::kThreads) {
    const int r = idx / chunks, c = (idx % chunks) * n;
    Chunk<Raw> x = load_chunk(src, width, r, rows, c0 + c, vec);
#pragma unroll
    for (int i = 0; i < n; ++i) x.e[i] = O::to_smem(x.e[i]);
    uint4 w;
    memcpy(&w, x.e, 16);
    *reinterpret_cast<uint4*>(dst + r * ld + c) = w;
  }
}

// dst[c][r] = src[r][c0 + c], r < ROWS, c < COLS (transposed shared tile, leading dim ld; the 16-bit
// types only). Consecutive threads take consecutive rows, so the shared stores of a warp fall in
// distinct banks.
template <class E, int ROWS, int COLS>
__device__ void load_tile_t(typename Operand<E>::Raw* dst, int ld, const typename Operand<E>::Raw* src, int64_t width,
                            int rows, int c0, bool vec) {
  using Raw = typename Operand<E>::Raw;
  constexpr int n = Chunk<Raw>::n, chunks = COLS / n;
  for (int idx = threadIdx.x; idx < ROWS * chunks; idx += TT::kThreads) {
    const int r = idx % ROWS, c = (idx / ROWS) * n;
    const Chunk<Raw> x = load_chunk(src, width, r, rows, c0 + c, vec);
#pragma unroll
    for (int i = 0; i < n; ++i) dst[(c + i) * ld + r] = x.e[i];
  }
}

__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// ---- the two warp products every pass is made of ---------------------------------------------------
// acc[nb] += A Yᵀ over k < steps·kK: A the warp's 16 rows of a row-major shared tile a (ld lda,
// head-dim wide: at most DP), Y an n-major shared tile (n = 8 nb + ..., NB n-blocks).
template <class E, int DP, int NB>
__device__ __forceinline__ void product_abt(float (&acc)[NB][4], const typename Operand<E>::Raw* a, int lda,
                                            const typename Operand<E>::Raw* y, int ldy, int steps, int g, int t) {
  using O = Operand<E>;
#pragma unroll
  for (int kk = 0; kk < DP / O::kK; ++kk) {
    if (kk < steps) {
      uint32_t r[4];
      O::a(r, a, lda, kk * O::kK, g, t);
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) {
        uint32_t b0, b1;
        O::b_nk(b0, b1, y, ldy, nb * 8, kk * O::kK, g, t);
        O::mma(acc[nb], r, b0, b1);
      }
    }
  }
}

// acc[nb] += P X for n-blocks nb < nblocks: P an F32 accumulator tile of the warp (KB n-blocks of 8:
// its k range), rounded to the operand type as the A registers; X a row-major [k][n] tile, given as
// E reads it (the transposed copy for 16-bit types, the tile itself for TF32; leading dim ldx).
template <class E, int KB, int NB>
__device__ __forceinline__ void product_pb(float (&acc)[NB][4], const float (&p)[KB][4],
                                           const typename Operand<E>::Raw* x, int ldx, int nblocks, int g, int t) {
  using O = Operand<E>;
#pragma unroll
  for (int kk = 0; kk < KB * 8 / O::kK; ++kk) {
    uint32_t r[4];
    O::acc_a(r, p, kk);
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
      if (nb < nblocks) {
        uint32_t b0, b1;
        O::b_kn(b0, b1, x, ldx, kk * O::kK, nb * 8, g, t);
        O::mma(acc[nb], r, b0, b1);
      }
    }
  }
}

// Preprocess: D[r] = Σ_e dO[r, e] O[r, e] in F32, one warp per row.
template <class E>
__global__ void __launch_bounds__(TT::kThreads) tc_rowdot_kernel(int64_t rows, int width,
                                                                  const typename Operand<E>::Raw* a,
                                                                  const typename Operand<E>::Raw* b, float* out) {
  using O = Operand<E>;
  const int lane = int(threadIdx.x) % 32;
  for (int64_t r = int64_t(blockIdx.x) * TT::kWarps + int(threadIdx.x) / 32; r < rows;
       r += int64_t(gridDim.x) * TT::kWarps) {
    float acc = 0.f;
    for (int e = lane; e < width; e += 32) acc += O::to_float(a[r * width + e]) * O::to_float(b[r * width + e]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) out[r] = acc;
  }
}

// dQ pass. Block: (b, h, 64 query rows, column part); warps and lanes as in the forward. Per key
// tile: S = Q Kᵀ, P = exp(S − lse), dP = dO Vᵀ, dS = P ∘ (dP − D); dQ[:, part] += dS K[:, part].

int optin_smem(size_t* bytes) {
  int dev = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return int(e);
  e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e != cudaSuccess) return int(e);
  *bytes = size_t(optin);
  return 0;
}

template <class... KArgs, class... Args>
int tc_launch_n(void (*kernel)(KArgs...), int64_t blocks, int threads, size_t smem, cudaStream_t stream,
                Args... args) {
  if (blocks <= 0) return 0;
  if (blocks > int64_t(INT_MAX)) return int(cudaErrorInvalidConfiguration);
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (smem > optin) return KERNEL_UNSUPPORTED;  // (fits() has said so before any launch)
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (e != cudaSuccess) return int(e);
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(blocks), 1, 1);
  cfg.blockDim = dim3(unsigned(threads), 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = nullptr;
  cfg.numAttrs = 0;
  e = cudaLaunchKernelEx(&cfg, kernel, args...);
  if (e != cudaSuccess) return int(e);
  return last_error();
}

template <class... KArgs, class... Args>
int tc_launch(void (*kernel)(KArgs...), int64_t blocks, size_t smem, cudaStream_t stream, Args... args) {
  return tc_launch_n(kernel, blocks, TT::kThreads, smem, stream, args...);
}

// 16-byte vector loads need every row start 16-byte aligned: aligned bases and widths that are a
// multiple of 16 bytes.
template <class E>
int vector_ok(const AttentionParams& p) {
  constexpr int64_t n = 16 / int64_t(sizeof(typename Operand<E>::Raw));
  auto aligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  return p.d % n == 0 && p.dv % n == 0 && aligned(p.q) && aligned(p.k) && aligned(p.v) && aligned(p.out) &&
         aligned(p.dout);
}

int padded_dim(const AttentionParams& p) {
  const int64_t w = std::max(p.d, p.dv);
  return w <= 64 ? 64 : w <= 128 ? 128 : 256;
}

// Whether this device's shared memory per block holds the tiles of every pass a call runs, asked
// before anything is launched, so that a call either runs whole or reports "unsupported" (which

}  // namespace
}  // namespace cuda
}  // namespace mk
