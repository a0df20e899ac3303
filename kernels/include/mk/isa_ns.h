// Inline functions in headers shared by the AVX2 and the AVX-512 builds of a MK_MULTI_ISA
// file are compiled twice with different instruction sets. With ordinary (vague) linkage the
// linker keeps ONE copy of each for the whole library: either the AVX-512 copy, which the AVX2
// path then calls (an illegal instruction on a CPU without AVX-512), or the AVX2 copy, which
// silently slows the AVX-512 path. Wrapping those definitions in MK_ISA_BEGIN/MK_ISA_END puts
// them in an inline namespace named after the ISA, so each build keeps its own copies and
// callers need not change. Types stay outside (they appear in the signatures of kernels.h).
#pragma once

#if defined(MK_ISA_AVX512)
#define MK_ISA_BEGIN inline namespace isa_avx512 {
#define MK_ISA_NS avx512  // the namespace a MK_MULTI_ISA file puts its kernels in
#else
#define MK_ISA_BEGIN inline namespace isa_base {
#define MK_ISA_NS avx2
#endif
#define MK_ISA_END }
