// benchmarks/gpu/attention_harness.cu on the host emulator (cuda_runtime.h): the harness as it is,
// its kernels and the library's run as host C++, its own checks deciding the exit status, so that a
// harness bug (a crash, a wrong reference, a check that cannot pass or cannot fail) shows here
// rather than in a GPU session's minutes. The Hopper rows run: the emulator is a 9.0 device and
// builds the sm90 kernels (MK_CUDA_EMU, as attention_emu_test's sm90 runs). Times are host time.
//   attention_harness_emu tiny       every row on [1,2,136,128] and [2,2,130,64] (ctest emu.harness.attention)
//   attention_harness_emu small      the harness's small mode (emu.harness.attention.small, label long)
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include "../../benchmarks/gpu/attention_harness.cu"

namespace mk {
namespace cuda {
namespace {
// emu::config().smem_capacity (256 KB) and the 4 KB the launch checks for writes past the end;
// 1024-byte aligned for the Hopper kernels' 128-byte swizzle
alignas(1024) unsigned char mk_attention_smem[256 * 1024 + 4096];
}  // namespace
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_attention_smem; }
