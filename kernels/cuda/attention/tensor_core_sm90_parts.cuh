// Pieces the Hopper backward (tensor_core_sm90_backward.cu) and double backward
// (tensor_core_sm90_dd.cu) share: packing a warpgroup accumulator tile into 16-bit A fragments, and
// zeroing the rows of a swizzled tile past a key length.
#pragma once
#include <cstdint>

#include "../mma.cuh"
#include "../sm90.cuh"

namespace mk {
namespace cuda {

constexpr float kSm90bLog2e = 1.4426950408889634f;

// 16-bit A fragments (m16n8k16 layout per warp) of the k-steps of a 64 x N accumulator tile:
// k-step kk takes column blocks 2kk and 2kk + 1, with no shuffles.
template <class E, int N>
__device__ __forceinline__ void sm90b_pack(const float (&s)[N / 2], uint32_t (&a)[N / 16][4]) {
#pragma unroll
  for (int kk = 0; kk < N / 16; ++kk) {
    a[kk][0] = pack_half2<E>(s[8 * kk + 0], s[8 * kk + 1]);  // row g, columns 16kk + 2t, + 1
    a[kk][1] = pack_half2<E>(s[8 * kk + 2], s[8 * kk + 3]);  // row g + 8
    a[kk][2] = pack_half2<E>(s[8 * kk + 4], s[8 * kk + 5]);  // row g, columns 16kk + 8 + 2t, + 1
    a[kk][3] = pack_half2<E>(s[8 * kk + 6], s[8 * kk + 7]);  // row g + 8
  }
}

// Zeroes rows [keep, rows) of a [D/64][rows][64] swizzled tile at `tile` (whole 128-byte rows: the
// swizzle permutes chunks within a row), by the 32 lanes of a warp, then orders the writes before
// the async proxy's reads (wgmma operands).
__device__ __forceinline__ void sm90b_zero_rows(unsigned char* tile, int atoms, uint32_t atom_bytes, int rows, int keep,
                                                int lane) {
  // lane: chunk lane % 8 of rows keep + lane / 8, + 4, ...
  unsigned char* const at = tile + (keep + lane / 8) * 128 + (lane % 8) * 16;
  for (int a = 0; a < atoms; ++a)
    for (int r = keep + lane / 8; r < rows; r += 4)
      *reinterpret_cast<uint4*>(at + a * atom_bytes + (r - keep - lane / 8) * 128) = uint4{0, 0, 0, 0};
  sm90::fence_proxy_async();
  __syncwarp();
}

}  // namespace cuda
}  // namespace mk
