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

// Thread 0 initialises a block's barriers: `once` (a block-constant tile, and `tmp` unless 0: a
// private landing barrier; one arrival each), the ring's `full` (one arrival, the producer's) and
// `empty` (one arrival per consumer warp) for each of the 2 stages, 8 bytes apart; then the fence
// that shows them to the async proxy. The caller's __syncthreads follows.
__device__ __forceinline__ void sm90_ring_init(uint32_t once, uint32_t full, uint32_t empty, uint32_t tmp,
                                               int consumer_warps) {
  if (threadIdx.x != 0) return;
  sm90::mbar_init(once, 1);
  for (int s = 0; s < 2; ++s) {
    sm90::mbar_init(full + 8 * s, 1);
    sm90::mbar_init(empty + 8 * s, consumer_warps);
  }
  if (tmp) sm90::mbar_init(tmp, 1);
  sm90::mbar_init_fence();
}

// Stores the thread's part of a warpgroup's 64 x D F32 accumulator tile (rows first and first + 8,
// columns 8nb + 2t, + 1: the wgmma layout) times f as 16-bit pairs into out[row · D + column], rows
// below `rows` only.
template <class E, int D>
__device__ __forceinline__ void sm90_store_tile(uint16_t* out, int64_t first, int64_t rows, const float (&acc)[D / 2],
                                                float f, int t) {
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t i = first + 8 * hr;
    if (i >= rows) continue;
#pragma unroll
    for (int nb = 0; nb < D / 8; ++nb)
      *reinterpret_cast<uint32_t*>(out + i * D + nb * 8 + 2 * t) =
          pack_half2<E>(acc[4 * nb + 2 * hr] * f, acc[4 * nb + 2 * hr + 1] * f);
  }
}

}  // namespace cuda
}  // namespace mk
