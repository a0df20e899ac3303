// Declarations of the CPU and CUDA kernel sets (identical signatures) and the table through
// which native/ reaches either set; all three come from the one list in mk/kernels.inc.
#pragma once
#include <cstdint>
#include "mk/attention.h"
#include "mk/codes.h"
#include "mk/meta.h"

namespace mk {

// Where the groups of a linear-attention product live (linear_attention_strided): batch x heads
// groups; per operand three strides in elements (batch, head, row), the columns unit-stride. Group
// g = b * heads + h of q starts at q + b * q[0] + h * q[1]; its row j at + j * q[2].
struct LinearAttentionLayout {
  int64_t batch, heads;
  int64_t q[3], k[3], v[3], out[3];
  // groups x [n, d] blocks one after another (the contiguous C ABI)
  static LinearAttentionLayout contiguous(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv) {
    return {groups, 1, {nq * dk, 0, dk}, {nk * dk, 0, dk}, {nk * dv, 0, dv}, {nq * dv, 0, dv}};
  }
  // Whether an operand of n rows of d columns with strides s is laid out as contiguous groups
  // (strides of size-1 dims do not matter).
  bool packed(const int64_t* s, int64_t n, int64_t d) const {
    return (n <= 1 || s[2] == d) && (heads <= 1 || s[1] == n * d) && (batch <= 1 || s[0] == heads * n * d);
  }
};

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
  // Streams and events (native/src/memory.cpp: the stream-aware cache and the mk_cuda_* entry
  // points). Every entry returns 0 or a CUDA error code; the two queries return
  // kCudaNotReady while work is pending.
  int (*device_synchronize)(void);                         // cudaDeviceSynchronize (all streams)
  int (*stream_create)(void** stream);                     // cudaStreamCreateWithFlags(non-blocking)
  int (*stream_destroy)(void* stream);                     // cudaStreamDestroy
  int (*stream_query)(void* stream);                       // cudaStreamQuery
  int (*event_create)(void** event);                       // cudaEventCreateWithFlags(timing disabled)
  int (*event_destroy)(void* event);                       // cudaEventDestroy
  int (*event_record)(void* event, void* stream);          // cudaEventRecord
  int (*event_query)(void* event);                         // cudaEventQuery
  int (*event_synchronize)(void* event);                   // cudaEventSynchronize
  int (*stream_wait_event)(void* stream, void* event);     // cudaStreamWaitEvent
};

// What CudaRuntime's stream_query and event_query return while work is pending (cudaErrorNotReady
// is mapped to it, so no CUDA header is needed to read it).
constexpr int kCudaNotReady = -1;

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
