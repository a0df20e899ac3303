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
  static constexpr int kDtype = BF16;
};
struct Fp16 {
  static constexpr bool kBf16 = false;
  static constexpr int kDtype = F16;
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

}  // namespace cuda
}  // namespace mk
