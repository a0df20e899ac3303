// benchmarks/gpu/linear_attention_harness.cu on the host emulator (cuda_runtime.h): the harness as
// it is, its kernels and the library's run as host C++, its own checks deciding the exit status, so
// that a harness bug shows here rather than in a GPU session's minutes. Times are host time.
//   linear_attention_harness_emu --tiny     every row on [1,2,320,128] and [2,2,200,64]
//                                           (ctest emu.harness.linear_attention; --small would take hours)
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include "../../benchmarks/gpu/linear_attention_harness.cu"

namespace mk {
namespace cuda {
// emu::config().smem_capacity (256 KB) and the 4 KB the launch checks for writes past the end
alignas(16) unsigned char mk_linear_smem[256 * 1024 + 4096];
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_linear_smem; }
