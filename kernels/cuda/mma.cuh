// Warp-level tensor-core primitives for the 16-bit kernels: the m16n8k16 MMA (BF16 or F16 inputs,
// F32 accumulators, sm_80+) and the 16-bit conversions around it. The host emulator
// (tests/cuda-emu, MK_CUDA_EMU) supplies the MMA as a warp-collective host function with the same
// register layout, so the kernels that use these run unchanged there.
//
// Register layout of mma.sync.aligned.m16n8k16.row.col (PTX ISA, "Matrix fragments for
// mma.m16n8k16"), lane = 4 g + t (g = lane / 4 in [0, 8), t = lane % 4):
//   A (16 x 16, row major), four 32-bit registers of two 16-bit values (low half = lower column):
//     a[0]: row g,     cols 2t, 2t+1        a[1]: row g + 8, cols 2t, 2t+1
//     a[2]: row g,     cols 2t+8, 2t+9      a[3]: row g + 8, cols 2t+8, 2t+9
//   B (16 x 8, "col": element (k, n)), two registers:
//     b0: rows k = 2t, 2t+1 of col n = g     b1: rows k = 2t+8, 2t+9 of col g
//   C, D (16 x 8, F32): c[0], c[1]: row g, cols 2t, 2t+1;  c[2], c[3]: row g + 8, cols 2t, 2t+1
// So a row-major tile X[row][k] in shared memory gives A's registers as aligned 32-bit reads, and
// B's registers are 32-bit reads from an "n-major" tile Y[n][k] (B(k, n) = Y[n][k]); and the
// accumulators of two adjacent n-blocks of a product are exactly the A registers of the next
// product's k-step (the FlashAttention register reuse of P).
#pragma once
#include <cstdint>
#include <cstring>

#include "mk/scalar.h"
#ifndef MK_CUDA_EMU
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace mk {
namespace cuda {

// The two 16-bit element types; tensors hold their raw bits (uint16_t).
struct Bf16 {
  static constexpr bool kBf16 = true;
  static constexpr int kDtype = MK_BF16;
};
struct Fp16 {
  static constexpr bool kBf16 = false;
  static constexpr int kDtype = MK_F16;
};

template <class H>
__device__ __forceinline__ float half_to_float(uint16_t h) {
  if constexpr (H::kBf16) {
    return bf16_bits_to_f32(h);  // exact: the high half of a float
  } else {
#ifdef MK_CUDA_EMU
    return f16_bits_to_f32(h);
#else
    return __half2float(__ushort_as_half(h));
#endif
  }
}

// Round to nearest even.
template <class H>
__device__ __forceinline__ uint16_t float_to_half(float f) {
#ifdef MK_CUDA_EMU
  return H::kBf16 ? f32_to_bf16_bits(f) : f32_to_f16_bits(f);
#else
  if constexpr (H::kBf16) return __bfloat16_as_ushort(__float2bfloat16_rn(f));
  else return __half_as_ushort(__float2half_rn(f));
#endif
}

// Two floats as one register of two 16-bit values: lo in the low half.
template <class H>
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
#ifdef MK_CUDA_EMU
  return uint32_t(float_to_half<H>(lo)) | (uint32_t(float_to_half<H>(hi)) << 16);
#else
  uint32_t r;
  if constexpr (H::kBf16) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo (low half), .y = hi
    memcpy(&r, &v, 4);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    memcpy(&r, &v, 4);
  }
  return r;
#endif
}

#ifdef MK_CUDA_EMU
}  // namespace cuda
}  // namespace mk
namespace emu {
void mma_m16n8k16(bool bf16, float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
}
namespace mk {
namespace cuda {
#endif

// c += A B for one 16 x 8 x 16 block; every lane of the warp calls it together.
template <class H>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef MK_CUDA_EMU
  emu::mma_m16n8k16(H::kBf16, c, a, b0, b1);
#else
  if constexpr (H::kBf16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#endif
}

// Zero an MMA accumulator tile (NB n-blocks of 8 columns, the four F32 registers of each).
template <int NB>
__device__ __forceinline__ void zero_acc(float (&a)[NB][4]) {
#pragma unroll
  for (int nb = 0; nb < NB; ++nb)
#pragma unroll
    for (int r = 0; r < 4; ++r) a[nb][r] = 0.f;
}

// 32-bit read of the two 16-bit values at (row, col), (row, col + 1) of a shared tile with
// leading dimension ld (col and ld even).
__device__ __forceinline__ uint32_t smem_pair(const uint16_t* tile, int ld, int row, int col) {
  return *reinterpret_cast<const uint32_t*>(tile + row * ld + col);
}

// A registers of rows [0, 16) x cols [k0, k0 + 16) of a row-major shared tile.
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const uint16_t* tile, int ld, int k0, int g, int t) {
  a[0] = smem_pair(tile, ld, g, k0 + 2 * t);
  a[1] = smem_pair(tile, ld, g + 8, k0 + 2 * t);
  a[2] = smem_pair(tile, ld, g, k0 + 2 * t + 8);
  a[3] = smem_pair(tile, ld, g + 8, k0 + 2 * t + 8);
}

// One k-step of B = Yᵀ from rows [n0, n0 + 8) of an n-major shared tile Y, cols [k0, k0 + 16).
__device__ __forceinline__ void mma_b(uint32_t& b0, uint32_t& b1, const uint16_t* tile, int ld, int n0, int k0,
                                      int g, int t) {
  b0 = smem_pair(tile, ld, n0 + g, k0 + 2 * t);
  b1 = smem_pair(tile, ld, n0 + g, k0 + 2 * t + 8);
}

// A registers of k-step kk from F32 accumulators of n-blocks 2kk and 2kk + 1 (rounded to 16 bit).
template <class H>
__device__ __forceinline__ void acc_to_a(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
  a[0] = pack_half2<H>(lo[0], lo[1]);
  a[1] = pack_half2<H>(lo[2], lo[3]);
  a[2] = pack_half2<H>(hi[0], hi[1]);
  a[3] = pack_half2<H>(hi[2], hi[3]);
}


// ---- TF32 (F32 tensors on m16n8k8 .tf32 MMAs, opt-in) ---------------------------------------------
// Register layout of mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 (one 32-bit value each):
//   A (16 x 8): a[0] (g, t), a[1] (g + 8, t), a[2] (g, t + 4), a[3] (g + 8, t + 4)
//   B (8 x 8):  b0 (k = t, n = g), b1 (k = t + 4, n = g);   C as for m16n8k16.
// The kernels feed the k index permuted within each k-step, k = t <-> 2t and k = t + 4 <-> 2t + 1
// (a product sums over k, so any order works when A and B agree): then an F32 accumulator pair
// (g, 2t), (g, 2t + 1) of an n-block is directly the A registers of the next product, and no
// shuffles are needed. Values enter the MMAs rounded to TF32 (round to nearest, ties away).
struct Tf32 {
  static constexpr bool kBf16 = false;
  static constexpr int kDtype = MK_F32;
};

__device__ __forceinline__ uint32_t to_tf32(float f) {
#ifdef MK_CUDA_EMU
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;  // finite: round the 13 low bits away
  return u;
#else
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(f));
  return r;
#endif
}

#ifdef MK_CUDA_EMU
}  // namespace cuda
}  // namespace mk
namespace emu {
void mma_m16n8k8_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
}
namespace mk {
namespace cuda {
#endif

__device__ __forceinline__ void mma1688_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef MK_CUDA_EMU
  emu::mma_m16n8k8_tf32(c, a, b0, b1);
#else
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// ---- the operand type E of the tensor-core attention kernels: Bf16, Fp16 or Tf32 ---------------
// Raw: the element type in global and shared memory; kK: the k of one MMA; kTransposed: whether
// products whose B is a row-major [k][n] tile (P V, dS K, Pᵀ dO, dSᵀ Q) need a transposed copy
// of that tile (16-bit: two k values share a register, so B must be read along k; TF32: one value
// per register, read straight from the row-major tile).
template <class E>
struct Operand {
  using Raw = uint16_t;
  static constexpr int kK = 16;
  static constexpr bool kTransposed = true;
  static __device__ __forceinline__ float to_float(Raw x) { return half_to_float<E>(x); }
  static __device__ __forceinline__ Raw from_float(float f) { return float_to_half<E>(f); }
  // the value as stored in shared memory (the same bits for 16-bit types)
  static __device__ __forceinline__ Raw to_smem(Raw x) { return x; }
  // A registers of rows [0, 16) x k [k0, k0 + kK) of a row-major tile X[row][k]
  static __device__ __forceinline__ void a(uint32_t (&r)[4], const Raw* x, int ld, int k0, int g, int t) {
    load_a(r, x, ld, k0, g, t);
  }
  // B = Yᵀ from an n-major tile Y[n][k]
  static __device__ __forceinline__ void b_nk(uint32_t& b0, uint32_t& b1, const Raw* y, int ld, int n0, int k0, int g,
                                              int t) {
    mma_b(b0, b1, y, ld, n0, k0, g, t);
  }
  // B from a row-major [k][n] tile, given as its transposed copy (n-major)
  static __device__ __forceinline__ void b_kn(uint32_t& b0, uint32_t& b1, const Raw* xt, int ld, int k0, int n0, int g,
                                              int t) {
    mma_b(b0, b1, xt, ld, n0, k0, g, t);
  }
  // A registers of k-step kk of a product whose A is an F32 accumulator tile (n-blocks of 8)
  template <int NB>
  static __device__ __forceinline__ void acc_a(uint32_t (&r)[4], const float (&acc)[NB][4], int kk) {
    acc_to_a<E>(r, acc[2 * kk], acc[2 * kk + 1]);
  }
  static __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&r)[4], uint32_t b0, uint32_t b1) {
    mma16816<E>(c, r, b0, b1);
  }
};

template <>
struct Operand<Tf32> {
  using Raw = float;
  static constexpr int kK = 8;
  static constexpr bool kTransposed = false;
  static __device__ __forceinline__ float to_float(Raw x) { return x; }
  static __device__ __forceinline__ Raw from_float(float f) { return f; }
  static __device__ __forceinline__ Raw to_smem(Raw x) {
    const uint32_t u = to_tf32(x);
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  static __device__ __forceinline__ uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
  }
  // (permuted k: hardware column t is k0 + 2t, column t + 4 is k0 + 2t + 1)
  static __device__ __forceinline__ void a(uint32_t (&r)[4], const Raw* x, int ld, int k0, int g, int t) {
    r[0] = bits(x[g * ld + k0 + 2 * t]);
    r[1] = bits(x[(g + 8) * ld + k0 + 2 * t]);
    r[2] = bits(x[g * ld + k0 + 2 * t + 1]);
    r[3] = bits(x[(g + 8) * ld + k0 + 2 * t + 1]);
  }
  static __device__ __forceinline__ void b_nk(uint32_t& b0, uint32_t& b1, const Raw* y, int ld, int n0, int k0, int g,
                                              int t) {
    b0 = bits(y[(n0 + g) * ld + k0 + 2 * t]);
    b1 = bits(y[(n0 + g) * ld + k0 + 2 * t + 1]);
  }
  static __device__ __forceinline__ void b_kn(uint32_t& b0, uint32_t& b1, const Raw* x, int ld, int k0, int n0, int g,
                                              int t) {
    b0 = bits(x[(k0 + 2 * t) * ld + n0 + g]);
    b1 = bits(x[(k0 + 2 * t + 1) * ld + n0 + g]);
  }
  template <int NB>
  static __device__ __forceinline__ void acc_a(uint32_t (&r)[4], const float (&acc)[NB][4], int kk) {
    r[0] = to_tf32(acc[kk][0]);  // (g, 2t)
    r[1] = to_tf32(acc[kk][2]);  // (g + 8, 2t)
    r[2] = to_tf32(acc[kk][1]);  // (g, 2t + 1)
    r[3] = to_tf32(acc[kk][3]);  // (g + 8, 2t + 1)
  }
  static __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&r)[4], uint32_t b0, uint32_t b1) {
    mma1688_tf32(c, r, b0, b1);
  }
};

// One k-step of a warp's tile product over n-blocks: acc[nb] += A · Bₙᵦ for nb in [lo, hi), with Bₙᵦ
// the n-block nb (columns [8 nb, 8 nb + 8)) at k0 of an n-major shared tile Y[n][k] (Operand<E>::b_nk),
// or with KN of a row-major [k][n] tile (Operand<E>::b_kn: for 16-bit E given as its transposed copy,
// read like Y; TF32 reads the row-major tile itself).
template <class E, bool KN = false, int NB>
__device__ __forceinline__ void mma_n_blocks(float (&acc)[NB][4], const uint32_t (&a)[4],
                                             const typename Operand<E>::Raw* tile, int ld, int k0, int lo, int hi,
                                             int g, int t) {
  using O = Operand<E>;
#pragma unroll
  for (int nb = 0; nb < NB; ++nb)
    if (nb >= lo && nb < hi) {
      uint32_t b0, b1;
      if constexpr (KN) O::b_kn(b0, b1, tile, ld, k0, nb * 8, g, t);
      else O::b_nk(b0, b1, tile, ld, nb * 8, k0, g, t);
      O::mma(acc[nb], a, b0, b1);
    }
}

}  // namespace cuda
}  // namespace mk
