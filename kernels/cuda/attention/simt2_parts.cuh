// Softmax attention on CUDA, SIMT v2 (F32 / F64): the register-tile machinery shared by the v2
// forward / backward (simt2.cu) and the v2 double backward (simt2_dd.cu): 16-byte shared and
// global accesses, padded bank-conflict-free shared rows, cp.async row copies, row reductions over
// the TX lanes of a row, register outer products (scores) and register accumulations.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../common.cuh"
#include "../copy_async.cuh"
#include "simt.cuh"

namespace mk {
namespace cuda {
namespace {

// ---- 16-byte shared / global accesses of 4 (F32) or 2 + 2 (F64) elements ----------------------------
#ifdef MK_CUDA_EMU
struct alignas(16) Simt2F4 {
  float x, y, z, w;
};
struct alignas(16) Simt2D2 {
  double x, y;
};
#else
using Simt2F4 = float4;
using Simt2D2 = double2;
#endif

__device__ __forceinline__ void load4(const float* p, float (&v)[4]) {
  const Simt2F4 r = *reinterpret_cast<const Simt2F4*>(p);
  v[0] = r.x;
  v[1] = r.y;
  v[2] = r.z;
  v[3] = r.w;
}
__device__ __forceinline__ void load4(const double* p, double (&v)[4]) {
  const Simt2D2 a = reinterpret_cast<const Simt2D2*>(p)[0], b = reinterpret_cast<const Simt2D2*>(p)[1];
  v[0] = a.x;
  v[1] = a.y;
  v[2] = b.x;
  v[3] = b.y;
}
__device__ __forceinline__ void store4(float* p, const float (&v)[4]) {
  Simt2F4 r;
  r.x = v[0];
  r.y = v[1];
  r.z = v[2];
  r.w = v[3];
  *reinterpret_cast<Simt2F4*>(p) = r;
}
__device__ __forceinline__ void store4(double* p, const double (&v)[4]) {
  Simt2D2 a, b;
  a.x = v[0];
  a.y = v[1];
  b.x = v[2];
  b.y = v[3];
  reinterpret_cast<Simt2D2*>(p)[0] = a;
  reinterpret_cast<Simt2D2*>(p)[1] = b;
}

constexpr int kSimt2Threads = 256;
static_assert(kSimt2Threads == kThreads, "launch() of simt.cuh starts kThreads threads per block");

// Leading dim (elements) of a shared row of `width` elements (a multiple of 4): an odd number of
// 16-byte units, so 8 consecutive rows read at the same column by a quarter warp hit distinct banks.
__host__ __device__ __forceinline__ int simt2_ld(int width, int esize) {
  const int units = (width * esize / 16) | 1;
  return units * 16 / esize;
}

// Every thread copies its share of `rows` rows of `width` elements (global rows row0.. of src,
// `valid` of them present; the others are zero-filled) into dst (leading dim ld) by cp.async.
template <class T>
__device__ __forceinline__ void simt2_rows_async(T* dst, int ld, const T* src, int64_t row0, int rows, int valid,
                                                 int width) {
  constexpr int kPer = 16 / int(sizeof(T));
  const int chunks = width / kPer;
  for (int idx = int(threadIdx.x); idx < rows * chunks; idx += kSimt2Threads) {
    const int r = idx / chunks, c = idx - r * chunks;
    const bool ok = r < valid;
    cp_async16(dst + r * ld + c * kPer, ok ? src + (row0 + r) * width + c * kPer : src, ok ? 16 : 0);
  }
}

// max / sum over the TX lanes that share a row (consecutive lanes of one warp)
template <int TX, class T>
__device__ __forceinline__ T simt2_row_max(T v) {
#pragma unroll
  for (int o = TX / 2; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}
template <int TX, class T>
__device__ __forceinline__ T simt2_row_sum(T v) {
#pragma unroll
  for (int o = TX / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// s[i][j] = Σ_{c < width} A[ty + TY·i][c] B[tx + TX·j][c]: a register outer product per chunk of 4
// columns, 16-byte loads (A rows: two per warp, broadcasts; B rows: 8 consecutive, distinct banks).
template <class T, int RPT, int KPT, int TX>
__device__ __forceinline__ void simt2_scores(const T* A, int lda, const T* B, int ldb, int width, int ty, int tx,
                                             T (&s)[RPT][KPT]) {
  constexpr int TY = kSimt2Threads / TX;
#pragma unroll
  for (int i = 0; i < RPT; ++i)
#pragma unroll
    for (int j = 0; j < KPT; ++j) s[i][j] = T(0);
  for (int c = 0; c < width; c += 4) {
    T a[RPT][4];
#pragma unroll
    for (int i = 0; i < RPT; ++i) load4(A + (ty + TY * i) * lda + c, a[i]);
#pragma unroll
    for (int j = 0; j < KPT; ++j) {
      T b[4];
      load4(B + (tx + TX * j) * ldb + c, b);
#pragma unroll
      for (int i = 0; i < RPT; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[i][j] += a[i][e] * b[e];
    }
  }
}

// acc[i][j][e] += Σ_{k < kdim} P[ty + TY·i][k] B[k][col[j] + e]: P rows by 16-byte loads of 4 of
// their entries, B rows by 16-byte loads of this thread's column chunks (kdim rounded up to 4: the
// entries of P past kdim must be 0 and the rows of B there finite).
template <class T, int RPT, int NC, int TX>
__device__ __forceinline__ void simt2_accumulate(const T* P, int ldp, const T* B, int ldb, int kdim, int ty,
                                                 const int (&col)[NC], T (&acc)[RPT][NC][4]) {
  constexpr int TY = kSimt2Threads / TX;
  for (int k = 0; k < kdim; k += 4) {
    T pv[RPT][4];
#pragma unroll
    for (int i = 0; i < RPT; ++i) load4(P + (ty + TY * i) * ldp + k, pv[i]);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        T b[4];
        load4(B + (k + kk) * ldb + col[j], b);
#pragma unroll
        for (int i = 0; i < RPT; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[i][j][e] += pv[i][kk] * b[e];
      }
    }
  }
}

// this thread's column chunks (4 columns each) of a width: chunk tx + TX·j (past the last: the
// last, computed but never stored)
template <int NC, int TX>
__device__ __forceinline__ void simt2_columns(int width, int tx, int (&col)[NC]) {
#pragma unroll
  for (int j = 0; j < NC; ++j) col[j] = 4 * std::min(tx + TX * j, width / 4 - 1);
}

template <class T, int R, int NC>
__device__ __forceinline__ void simt2_zero(T (&acc)[R][NC][4]) {
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int j = 0; j < NC; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = T(0);
}

// The write-out of a key pass (simt2_backward_key_kernel, simt2_dd_key_kernel): thread (ty, tx)
// stores its keys ty + TY·i (those < C of the tile starting at global key row krow), ak scaled by
// `scale` into kout (rows of d), av into vout (rows of dv), its chunks tx + TX·j; a null output is
// skipped.
template <class T, int KPT, int ND, int NV, int TX>
__device__ __forceinline__ void store_key_tile(T* kout, T* vout, int64_t krow, int C, int d, int dv, int ty, int tx,
                                               T scale, const T (&ak)[KPT][ND][4], const T (&av)[KPT][NV][4]) {
  constexpr int TY = kSimt2Threads / TX;
#pragma unroll
  for (int i = 0; i < KPT; ++i) {
    const int kr = ty + TY * i;
    if (kr >= C) continue;
    if (kout) {
      T* out = kout + (krow + kr) * d;
#pragma unroll
      for (int j = 0; j < ND; ++j) {
        if (tx + TX * j >= d / 4) continue;
        T w[4];
#pragma unroll
        for (int e2 = 0; e2 < 4; ++e2) w[e2] = ak[i][j][e2] * scale;
        store4(out + 4 * (tx + TX * j), w);
      }
    }
    if (vout) {
      T* out = vout + (krow + kr) * dv;
#pragma unroll
      for (int j = 0; j < NV; ++j)
        if (tx + TX * j < dv / 4) store4(out + 4 * (tx + TX * j), av[i][j]);
    }
  }
}

// ---- launch checks shared by simt2.cu and simt2_dd.cu -----------------------------------------------
bool simt2_aligned(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

}  // namespace
}  // namespace cuda
}  // namespace mk
