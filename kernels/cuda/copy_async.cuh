// Shared-memory staging primitives of the sm_80+ tensor-core kernels: cp.async (global -> shared
// copies that run while the warp computes, in commit groups) and ldmatrix (a warp loads 8x8
// 16-bit matrices from shared memory straight into the MMA fragment layout, optionally
// transposed). The host emulator (tests/cuda-emu, MK_CUDA_EMU) supplies both as warp-collective /
// per-thread host functions with the layouts of the PTX ISA, so kernels that use them run unchanged
// there.
//
// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{,.trans}.shared.b16 (PTX ISA, "Warp-level matrix load
// instruction: ldmatrix"): lanes 8i .. 8i + 7 give the addresses of the eight 16-byte rows of
// matrix i (i < 1, 2, 4); register i of lane l = 4 g + t receives, of matrix i,
//   without .trans: row g, elements 2t (low half) and 2t + 1 (high half)
//   with .trans:    elements (row 2t, col g) (low half) and (row 2t + 1, col g) (high half)
// which is the A / B fragment layout of mma.m16n8k16 (see mma.cuh): A from a row-major tile is
// x4 with matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15);
// B from an n-major tile Y[n][k] is one matrix per register (b0: k 0-7, b1: k 8-15) without
// .trans; B from a row-major [k][n] tile is the same with .trans.
//
// cp.async.cg.shared.global [dst], [src], 16, src_bytes: copies src_bytes (0 or 16) bytes and
// fills the rest of the 16 with zeros; completes at the latest when the thread's
// cp.async.wait_group n returns with this copy's commit group among the older ones. The copy is
// visible to the other threads of the block only after that wait and a __syncthreads.
#pragma once
#include <cstdint>

#ifdef MK_CUDA_EMU
namespace emu {
void ldmatrix(int count, bool trans, uint32_t* regs, const void* row_address);
void cp_async16(void* dst, const void* src, int src_bytes);
void cp_async_commit();
void cp_async_wait(int newest_pending);
}  // namespace emu
#endif

namespace mk {
namespace cuda {

#ifndef MK_CUDA_EMU
__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif

// The row and column offsets (0 or 8) of this lane's ldmatrix_x4 row address inside a 16 x 16 tile:
// for an A operand (and a .trans B operand) lanes 8..15 and 24..31 take rows + 8, lanes 16..31
// columns + 8; for a B operand stored n-major, lanes 16..31 take rows + 8, lanes 8..15 and 24..31
// columns + 8 (the fragment order of mma.cuh).
struct LdmatrixLanes {
  int a_row, a_col, b_row, b_col;
};
__device__ __forceinline__ LdmatrixLanes ldmatrix_lanes(int lane) {
  return LdmatrixLanes{(lane & 7) + ((lane >> 3) & 1) * 8, (lane >> 4) * 8, (lane & 7) + (lane >> 4) * 8,
                       ((lane >> 3) & 1) * 8};
}

// Four 8x8 matrices; `row` is this lane's row address (lane 8i + r: row r of matrix i).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const uint16_t* row) {
#ifdef MK_CUDA_EMU
  emu::ldmatrix(4, false, r, row);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row)));
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const uint16_t* row) {
#ifdef MK_CUDA_EMU
  emu::ldmatrix(4, true, r, row);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row)));
#endif
}

// Two matrices (lanes 0-15 give addresses; the others' are ignored but must be valid pointers).
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const uint16_t* row) {
#ifdef MK_CUDA_EMU
  emu::ldmatrix(2, false, r, row);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_address(row)));
#endif
}

__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const uint16_t* row) {
#ifdef MK_CUDA_EMU
  emu::ldmatrix(2, true, r, row);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_address(row)));
#endif
}

// One matrix (lanes 0-7 give addresses).
__device__ __forceinline__ uint32_t ldmatrix_x1(const uint16_t* row) {
#ifdef MK_CUDA_EMU
  uint32_t r;
  emu::ldmatrix(1, false, &r, row);
  return r;
#else
  uint32_t r;
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(smem_address(row)));
  return r;
#endif
}

__device__ __forceinline__ uint32_t ldmatrix_x1_trans(const uint16_t* row) {
#ifdef MK_CUDA_EMU
  uint32_t r;
  emu::ldmatrix(1, true, &r, row);
  return r;
#else
  uint32_t r;
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(smem_address(row)));
  return r;
#endif
}

// 16 bytes global -> shared (both 16-byte aligned), the last 16 - src_bytes of them zero.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
#ifdef MK_CUDA_EMU
  emu::cp_async16(dst, src, src_bytes);
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes)
               : "memory");
#endif
}

// Closes the thread's current group of cp.async copies.
__device__ __forceinline__ void cp_async_commit() {
#ifdef MK_CUDA_EMU
  emu::cp_async_commit();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most N of the thread's committed groups (the newest) are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#ifdef MK_CUDA_EMU
  emu::cp_async_wait(N);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

}  // namespace cuda
}  // namespace mk
