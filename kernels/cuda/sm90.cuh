// Hopper (sm_90a) primitives for kernels/cuda/attention/tensor_core_sm90.cu: warpgroup MMA
// (wgmma.mma_async) with shared-memory matrix descriptors, mbarriers, TMA tile loads
// (cp.async.bulk.tensor) and setmaxnreg. Every one is inline PTX guarded by MK_SM90_DEVICE (the
// sm_90a device pass: __CUDA_ARCH_FEAT_SM90_ALL); under MK_CUDA_EMU the host emulator
// (tests/cuda-emu/sm90_emu.h) supplies each with the semantics of the PTX ISA; in every other
// device pass (sm_80, the compute_90 PTX) they compile to nothing and the kernels that use them are
// never launched (the dispatch checks the device and the build, see tensor_core_sm90.cu).
//
// Semantics relied on (PTX ISA 8.x, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate"):
//   wgmma.mma_async.sync.aligned.m64nNk16.f32.{bf16,f16}: D (64 x N, F32) += A (64 x 16) B (16 x N),
//     issued by the 128 threads of a warpgroup together. Accumulator layout: warp w of the group
//     holds rows 16w .. 16w + 15; register 4i + r of lane 4g + t holds row 16w + g + 8 (r / 2),
//     column 8i + 2t + r % 2 (the m16n8 layout of mma.sync repeated over N / 8 column blocks). A
//     from registers: four 32-bit registers per thread, the m16n8k16 A layout of rows 16w ...
//     A or B from shared memory through a 64-bit descriptor:
//       bits 0-13 start address >> 4, 16-29 leading-dimension byte offset >> 4 (LBO), 32-45
//       stride-dimension byte offset >> 4 (SBO), 49-51 base offset, 62-63 swizzle (1 = 128 B).
//     With the 128-byte swizzle, "K-major" (B stored as N rows of K contiguous elements, A as M
//     rows): rows of 128 bytes, 8-row groups SBO apart, 16 k per instruction inside one 128-byte
//     row (the start advances 32 bytes per k-step); "MN-major" (imm-trans-b = 1: B stored as K rows
//     of N contiguous elements): 64 n per 128-byte row, 8-k groups SBO apart, 64-n atoms LBO apart.
//     The swizzle: byte address bits [4, 7) ^= bits [7, 10) (16-byte chunks permuted within each
//     128-byte row by the row's index mod 8), on 1024-byte aligned atoms.
//   wgmma.fence before the first wgmma that reads registers written by other instructions;
//   wgmma.commit_group / wait_group N: the accumulators (and A registers) of a group may be read
//   (rewritten) only after a wait that covers it.
//   mbarrier: init(count), arrive, arrive.expect_tx(bytes), try_wait.parity(phase parity: true once
//   the phase of that parity has completed; a barrier starts in phase 0, so parity 1 passes at once).
//   cp.async.bulk.tensor.Nd.shared::cluster.global.mbarrier::complete_tx::bytes: a box of a tensor
//   map into shared memory (out-of-bounds elements zero), completing its bytes on the mbarrier.
#pragma once
#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MK_SM90_DEVICE 1
#else
#define MK_SM90_DEVICE 0
#endif

#ifdef MK_CUDA_EMU
#include "sm90_emu.h"  // tests/cuda-emu: CUtensorMap and the emulated instructions
#elif !defined(__CUDACC_RTC__)
#include <cuda.h>          // CUtensorMap and its enums (declarations only: no libcuda link)
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled_v12000
#endif

namespace mk {
namespace cuda {
namespace sm90 {

// The shared-window address of a pointer into dynamic shared memory.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
#ifdef MK_CUDA_EMU
  return emu::smem_address(p);
#elif MK_SM90_DEVICE
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
#else
  (void)p;
  return 0;
#endif
}

// Descriptor of a 128-byte-swizzled operand at shared address `addr` (lbo, sbo in bytes).
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return uint64_t((addr >> 4) & 0x3fffu) | (uint64_t((lbo >> 4) & 0x3fffu) << 16) |
         (uint64_t((sbo >> 4) & 0x3fffu) << 32) | (uint64_t(1) << 62);
}

// ---- warpgroup MMA ---------------------------------------------------------------------------------
__device__ __forceinline__ void wgmma_fence() {
#ifdef MK_CUDA_EMU
  emu::wgmma_fence();
#elif MK_SM90_DEVICE
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#ifdef MK_CUDA_EMU
  emu::wgmma_commit();
#elif MK_SM90_DEVICE
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#ifdef MK_CUDA_EMU
  emu::wgmma_wait(N);
#elif MK_SM90_DEVICE
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

// Keeps the compiler from moving accesses of the accumulator registers across a wgmma fence/wait
// (the asm of the wgmma reads and writes them through "+f"; this ties the rest).
template <int R>
__device__ __forceinline__ void reg_fence(float (&d)[R]) {
#if MK_SM90_DEVICE && !defined(MK_CUDA_EMU)
#pragma unroll
  for (int i = 0; i < R; ++i) asm volatile("" : "+f"(d[i])::"memory");
#else
  (void)d;
#endif
}
// The same for register A operands: keeps them live (their registers not reused) until the wait
// after which the hardware no longer reads them.
template <int K>
__device__ __forceinline__ void reg_fence(uint32_t (&a)[K][4]) {
#if MK_SM90_DEVICE && !defined(MK_CUDA_EMU)
#pragma unroll
  for (int i = 0; i < K; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) asm volatile("" : "+r"(a[i][r])::"memory");
#else
  (void)a;
#endif
}

#if MK_SM90_DEVICE && !defined(MK_CUDA_EMU)
#define MK_WG_D8(i)                                                                                               \
  "+f"(d[i + 0]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
      "+f"(d[i + 7])
#endif

// d (64 x N per warpgroup, N / 2 F32 registers per thread) = A B (+ d if accumulate), A and B from
// shared memory (K-major both: S = Q Kᵀ). kBf16: BF16 inputs, else F16.
template <bool kBf16, int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], uint64_t adesc, uint64_t bdesc, bool accumulate) {
  static_assert(N == 64 || N == 128, "the shapes the attention kernel uses");
#ifdef MK_CUDA_EMU
  emu::wgmma_issue(kBf16, N, d, nullptr, adesc, bdesc, false, accumulate);
#elif MK_SM90_DEVICE
  const int sc = accumulate ? 1 : 0;
  if constexpr (N == 64) {
    if constexpr (kBf16)
      asm volatile(
          "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
          "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
          "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%"
          "29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
          : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24)
          : "l"(adesc), "l"(bdesc), "r"(sc));
    else
      asm volatile(
          "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
          "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
          "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%"
          "29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
          : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24)
          : "l"(adesc), "l"(bdesc), "r"(sc));
  } else {
    if constexpr (kBf16)
      asm volatile(
          "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
          "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
          "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%"
          "29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%"
          "56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
          : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24), MK_WG_D8(32), MK_WG_D8(40), MK_WG_D8(48), MK_WG_D8(56)
          : "l"(adesc), "l"(bdesc), "r"(sc));
    else
      asm volatile(
          "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
          "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
          "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%"
          "29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%"
          "56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
          : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24), MK_WG_D8(32), MK_WG_D8(40), MK_WG_D8(48), MK_WG_D8(56)
          : "l"(adesc), "l"(bdesc), "r"(sc));
  }
#else
  (void)d, (void)adesc, (void)bdesc, (void)accumulate;
#endif
}

// d (64 x N) += A B, A (64 x 16) from registers (m16n8k16 A layout per warp), B from shared memory
// MN-major (imm-trans-b = 1: O += P V with V stored [key][n]).
template <bool kBf16, int N>
__device__ __forceinline__ void wgmma_rs_tn(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t bdesc) {
  static_assert(N == 64 || N == 128, "the shapes the attention kernel uses");
#ifdef MK_CUDA_EMU
  emu::wgmma_issue(kBf16, N, d, a, 0, bdesc, true, true);
#elif MK_SM90_DEVICE
  if constexpr (N == 64) {
    if constexpr (kBf16)
      asm volatile(
          "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
          "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
          "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%"
          "29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
          : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24)
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
    else
      asm volatile(
          "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
          "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
          "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%"
          "29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
          : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24)
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
  } else {
    if constexpr (kBf16)
      asm volatile(
          "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
          "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
          "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%"
          "29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%"
          "56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
          : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24), MK_WG_D8(32), MK_WG_D8(40), MK_WG_D8(48), MK_WG_D8(56)
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
    else
      asm volatile(
          "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
          "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
          "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%"
          "29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%"
          "56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
          : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24), MK_WG_D8(32), MK_WG_D8(40), MK_WG_D8(48), MK_WG_D8(56)
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
  }
#else
  (void)d, (void)a, (void)bdesc;
#endif
}

// ---- TF32 (F32 data on tensor cores: tensor_core_sm90_f32.cu) ---------------------------------------
// wgmma.mma_async.sync.aligned.m64nNk8.f32.tf32.tf32: K = 8 per instruction, both shared operands
// K-major only (no transposed form for TF32), the same 128-byte swizzle and descriptors (a 128-byte
// row holds 32 F32 values; a k-step of 8 is 32 bytes, as 16 k of 16-bit). Register A: the m16n8k8
// TF32 A layout per warp (rows 16w + g, + 8; k t, t + 4: a0 (g, t), a1 (g + 8, t), a2 (g, t + 4),
// a3 (g + 8, t + 4)). The kernels feed exact TF32 values (cvt.rna: low 13 bits zero).
template <int N>
__device__ __forceinline__ void wgmma_ss_tf32(float (&d)[N / 2], uint64_t adesc, uint64_t bdesc, bool accumulate) {
  static_assert(N == 32 || N == 64 || N == 128, "the shapes the attention kernels use");
#ifdef MK_CUDA_EMU
  emu::wgmma_issue(emu::kWgTf32, N, d, nullptr, adesc, bdesc, false, accumulate);
#elif MK_SM90_DEVICE
  const int sc = accumulate ? 1 : 0;
  if constexpr (N == 32)
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k8.f32.tf32.tf32 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1;\n}\n"
        : MK_WG_D8(0), MK_WG_D8(8)
        : "l"(adesc), "l"(bdesc), "r"(sc));
  else if constexpr (N == 64)
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k8.f32.tf32.tf32 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1;\n}\n"
        : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24)
        : "l"(adesc), "l"(bdesc), "r"(sc));
  else
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1;\n}\n"
        : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24), MK_WG_D8(32), MK_WG_D8(40), MK_WG_D8(48), MK_WG_D8(56)
        : "l"(adesc), "l"(bdesc), "r"(sc));
#else
  (void)d, (void)adesc, (void)bdesc, (void)accumulate;
#endif
}

// d (64 x N) += A B, A (64 x 8 TF32) from registers, B from shared memory K-major (B stored as N rows
// of K contiguous values: O += P V with V transposed in shared memory).
template <int N>
__device__ __forceinline__ void wgmma_rs_tf32(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t bdesc) {
  static_assert(N == 64 || N == 128, "the shapes the attention kernel uses");
#ifdef MK_CUDA_EMU
  emu::wgmma_issue(emu::kWgTf32, N, d, a, 0, bdesc, false, true);
#elif MK_SM90_DEVICE
  if constexpr (N == 64)
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k8.f32.tf32.tf32 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1;\n}\n"
        : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
  else
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1;\n}\n"
        : MK_WG_D8(0), MK_WG_D8(8), MK_WG_D8(16), MK_WG_D8(24), MK_WG_D8(32), MK_WG_D8(40), MK_WG_D8(48), MK_WG_D8(56)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
#else
  (void)d, (void)a, (void)bdesc;
#endif
}

// ---- mbarrier ---------------------------------------------------------------------------------------
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
#ifdef MK_CUDA_EMU
  emu::mbar_init(bar, count);
#elif MK_SM90_DEVICE
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#else
  (void)bar, (void)count;
#endif
}
// makes the initialised barriers visible to the async proxy (TMA) and the other threads (with a
// __syncthreads after it)
__device__ __forceinline__ void mbar_init_fence() {
#if MK_SM90_DEVICE && !defined(MK_CUDA_EMU)
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#ifdef MK_CUDA_EMU
  emu::mbar_arrive(bar, 0);
#elif MK_SM90_DEVICE
  asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
#else
  (void)bar;
#endif
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#ifdef MK_CUDA_EMU
  emu::mbar_arrive(bar, bytes);
#elif MK_SM90_DEVICE
  asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1;\n}\n" ::"r"(bar), "r"(bytes)
               : "memory");
#else
  (void)bar, (void)bytes;
#endif
}
// A wait longer than this (ns of %globaltimer) traps (an illegal-instruction error on the host
// side) instead of spinning forever: a byte count, parity or descriptor mistake then fails the launch
// within seconds, where it would otherwise hang the process (no wait trapped in the first H100
// run, 2026-12-05). 0: wait without a limit. Every legitimate wait lasts microseconds.
#ifndef MK_SM90_WAIT_LIMIT_NS
#define MK_SM90_WAIT_LIMIT_NS 4000000000ull
#endif
// Blocks until the phase of parity `parity` of the barrier has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#ifdef MK_CUDA_EMU
  emu::mbar_wait(bar, parity);
#elif MK_SM90_DEVICE
  // one asm block (a C++ loop around a one-try asm made ptxas spill the consumers' accumulators):
  // the first try, then the clock, then the tries with the limit
#if MK_SM90_WAIT_LIMIT_NS
  asm volatile(
      "{\n.reg .pred done, late;\n.reg .u64 t0, t1;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@done bra.uni DONE_%=;\n"
      "mov.u64 t0, %%globaltimer;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@done bra.uni DONE_%=;\n"
      "mov.u64 t1, %%globaltimer;\n"
      "sub.u64 t1, t1, t0;\n"
      "setp.gt.u64 late, t1, %2;\n"
      "@late trap;\n"
      "bra.uni WAIT_%=;\n"
      "DONE_%=:\n}\n" ::"r"(bar),
      "r"(parity), "n"(MK_SM90_WAIT_LIMIT_NS)
      : "memory");
#else
  asm volatile(
      "{\n.reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
#endif
#else
  (void)bar, (void)parity;
#endif
}

// ---- TMA ---------------------------------------------------------------------------------------------
// A 3D box of `map` at element coordinates (c0, c1, c2) into shared memory at dst, completing on bar.
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                            uint32_t bar) {
#ifdef MK_CUDA_EMU
  emu::tma_load(dst, map, c0, c1, c2, bar);
#elif MK_SM90_DEVICE
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
#else
  (void)dst, (void)map, (void)c0, (void)c1, (void)c2, (void)bar;
#endif
}

// Orders this thread's generic-proxy shared-memory writes before later async-proxy accesses (TMA,
// wgmma operands read from shared memory).
__device__ __forceinline__ void fence_proxy_async() {
#if MK_SM90_DEVICE && !defined(MK_CUDA_EMU)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// ---- register budgets per warp role -----------------------------------------------------------------
template <int R>
__device__ __forceinline__ void setmaxnreg_dec() {
#if MK_SM90_DEVICE && !defined(MK_CUDA_EMU)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R));
#endif
}
template <int R>
__device__ __forceinline__ void setmaxnreg_inc() {
#if MK_SM90_DEVICE && !defined(MK_CUDA_EMU)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R));
#endif
}

// Named barrier over `threads` threads (a multiple of 32) with id `id` (1..15; 0 is __syncthreads).
__device__ __forceinline__ void named_barrier(int id, int threads) {
#ifdef MK_CUDA_EMU
  emu::named_barrier(id, threads);
#elif defined(__CUDA_ARCH__)
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
#else
  (void)id, (void)threads;
#endif
}

}  // namespace sm90
}  // namespace cuda
}  // namespace mk
