// Pieces of the F32 attention kernels on Hopper tensor cores with 3xTF32 (x3): the forward
// (tensor_core_sm90_f32.cu) and the backward (tensor_core_sm90_f32_backward.cu): 16-byte F32
// vectors, the TF32 hi/lo split, the producer's split of a swizzled tile, element offsets in
// 128-byte-swizzled F32 tiles, the quad max of a row of accumulators.
#pragma once
#include <climits>
#include <cstdint>
#include <cstring>

#include "../mma.cuh"

namespace mk {
namespace cuda {
namespace {

constexpr float kX3Log2e = 1.4426950408889634f;
constexpr float kX3Ln2 = 0.6931471805599453f;

#ifdef MK_CUDA_EMU
struct alignas(16) X3F4 {
  float x, y, z, w;
};
struct alignas(8) X3F2 {
  float x, y;
};
__device__ __forceinline__ float x3_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
__device__ __forceinline__ uint32_t x3_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
#else
using X3F4 = float4;
using X3F2 = float2;
__device__ __forceinline__ float x3_float(uint32_t u) { return __uint_as_float(u); }
__device__ __forceinline__ uint32_t x3_bits(float f) { return __float_as_uint(f); }
#endif

__device__ __forceinline__ float x3_round(float x) { return x3_float(to_tf32(x)); }

// hi / lo of four values
__device__ __forceinline__ void x3_split4(const X3F4 x, X3F4& h, X3F4& l) {
  h.x = x3_round(x.x), h.y = x3_round(x.y), h.z = x3_round(x.z), h.w = x3_round(x.w);
  l.x = x3_round(x.x - h.x), l.y = x3_round(x.y - h.y), l.z = x3_round(x.z - h.z), l.w = x3_round(x.w - h.w);
}

// The 128 producer threads: src (bytes, a swizzled tile of `atom`-byte atoms of 128-byte rows) ->
// hi, lo at the same offsets (src may be hi; kLo false: hi only, the one-term TF32 variant); rows
// >= keep become zeros (padding keys past a key length may hold anything, NaN included).
template <bool kLo>
__device__ __forceinline__ void x3_split_tile(const unsigned char* src, unsigned char* hi, unsigned char* lo,
                                              uint32_t bytes, int tid, uint32_t atom = 1u << 30, int keep = INT_MAX) {
  for (uint32_t o = uint32_t(tid) * 16; o < bytes; o += 128 * 16) {
    X3F4 x = *reinterpret_cast<const X3F4*>(src + o);
    if (int((o % atom) / 128) >= keep) x = X3F4{0.f, 0.f, 0.f, 0.f};
    X3F4 h, l;
    x3_split4(x, h, l);
    *reinterpret_cast<X3F4*>(hi + o) = h;
    if (kLo) *reinterpret_cast<X3F4*>(lo + o) = l;
  }
}

// Byte offset of element (row, col) in a tile of 32-column atoms of `atom` bytes (128-byte rows,
// swizzled: the 16-byte chunk index ^= row % 8; the atoms 1024-byte aligned).
__device__ __forceinline__ uint32_t x3_at(int row, int col, uint32_t atom) {
  const int c = col % 32;
  return uint32_t(col / 32) * atom + uint32_t(row) * 128 + uint32_t(((c / 4) ^ (row % 8)) * 16 + (c % 4) * 4);
}

__device__ __forceinline__ float x3_quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

}  // namespace
}  // namespace cuda
}  // namespace mk
