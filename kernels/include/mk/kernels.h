// Declarations of the CPU and CUDA kernel sets (identical signatures) and the table through
// which native/ reaches either set; all three come from the one list in mk/kernels.inc.
#pragma once
#include <cstdint>
#include "mk/attention.h"
#include "mk/codes.h"
#include "mk/meta.h"

namespace mk {
namespace cpu {
#define MK_KERNEL(ret, name, params) ret name params;
#include "mk/kernels.inc"
#undef MK_KERNEL
// 2 = AVX2, 3 = AVX-512: which compiled variant the multi-ISA kernels run (set by native/).
int isa_level();
void set_isa_level(int level);
}  // namespace cpu
namespace cuda {
#define MK_KERNEL(ret, name, params) ret name params;
#include "mk/kernels.inc"
#undef MK_KERNEL
}  // namespace cuda

// Runtime services of the CUDA library (not kernels): used by native/ for errors and syncs.
struct CudaRuntime {
  int (*device_count)(void);
  int (*synchronize)(void* stream);
  const char* (*error_string)(int code);
  int (*memcpy_d2h)(void* dst, const void* src, int64_t nbytes, void* stream);
  int (*device_malloc)(void** ptr, int64_t nbytes);  // cudaMalloc (native/src/memory.cpp caches)
  int (*device_free)(void* ptr);                     // cudaFree
};

// One entry per kernel of mk/kernels.inc, typed by the CPU twin: a CUDA kernel whose signature
// drifts from its twin fails to compile in kernels/cuda/table.cu.
struct KernelTable {
  int abi_version;   // MK_ABI_VERSION
  int table_bytes;   // sizeof(KernelTable)
  CudaRuntime runtime;
#define MK_KERNEL(ret, name, params) decltype(&cpu::name) name;
#include "mk/kernels.inc"
#undef MK_KERNEL
};

// Filling a table: `#define MK_KERNEL(ret, name, params) t.name = &ns::name;` then include
// mk/kernels.inc (kernels/cuda/table.cu, native/src/runtime.cpp). table_bytes = sizeof(KernelTable)
// guards against a CUDA library built from another version of the list.

}  // namespace mk
