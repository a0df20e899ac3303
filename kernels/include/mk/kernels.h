// Declarations of the CPU and CUDA kernel sets (identical signatures) and the table through
// which native/ reaches the CUDA library loaded at run time.
#pragma once
#include <cstdint>
#include "mk/attention.h"
#include "mk/codes.h"

namespace mk {
namespace cpu {
#include "mk/kernels.inc"
// 2 = AVX2, 3 = AVX-512: which compiled variant the multi-ISA kernels run (set by native/).
int isa_level();
void set_isa_level(int level);
}  // namespace cpu
namespace cuda {
#include "mk/kernels.inc"
}  // namespace cuda

// Runtime services of the CUDA library (not kernels): used by native/ for errors and syncs.
struct CudaRuntime {
  int (*device_count)(void);
  int (*synchronize)(void* stream);
  const char* (*error_string)(int code);
  int (*memcpy_d2h)(void* dst, const void* src, int64_t nbytes, void* stream);
};

// One entry per kernel, typed by the CPU twin: a CUDA kernel whose signature drifts from its
// twin fails to compile in kernels/cuda/table.cu.
struct KernelTable {
  int abi_version;
  CudaRuntime runtime;
#define MK_TABLE_ENTRY(name) decltype(&cpu::name) name;
  MK_TABLE_ENTRY(fill)
  MK_TABLE_ENTRY(copy_strided)
  MK_TABLE_ENTRY(cast)
  MK_TABLE_ENTRY(random_fill)
  MK_TABLE_ENTRY(unary)
  MK_TABLE_ENTRY(binary)
  MK_TABLE_ENTRY(where)
  MK_TABLE_ENTRY(reduce)
  MK_TABLE_ENTRY(softmax)
  MK_TABLE_ENTRY(index_select)
  MK_TABLE_ENTRY(index_add)
  MK_TABLE_ENTRY(gather)
  MK_TABLE_ENTRY(scatter_add)
  MK_TABLE_ENTRY(index_check)
  MK_TABLE_ENTRY(matmul_naive)
  MK_TABLE_ENTRY(linear_attention)
  MK_TABLE_ENTRY(linear_attention_workspace)
  MK_TABLE_ENTRY(linear_attention_momentum)
  MK_TABLE_ENTRY(attention_forward)
  MK_TABLE_ENTRY(attention_backward)
  MK_TABLE_ENTRY(attention_backward_backward)
  MK_TABLE_ENTRY(attention_jvp)
  MK_TABLE_ENTRY(attention_workspace)
#undef MK_TABLE_ENTRY
};

constexpr int kKernelAbiVersion = 1;

}  // namespace mk
