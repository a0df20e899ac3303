// The one hand-written translation unit of the emulated libmetakernels_cuda.so (the others are
// generated per kernels/cuda file by cmake/tests.cmake): the shared-memory buffer every kernel
// family maps to (emu_cuda.h), the real kernel table (kernels/cuda/table.cu, whose entries are the
// emulated kernels of the other units) and a build string that says "host emulator", so that
// CudaRuntime.describe() and the `info` command can never pass an emulated run off as a GPU run.
#include "emu_cuda.h"

#include <string>

namespace mk {
namespace cuda {
// emu::config().smem_capacity (256 KB) and the 4 KB the launch checks for writes past the end
alignas(1024) unsigned char mk_emu_smem[256 * 1024 + 4096];
}  // namespace cuda
}  // namespace mk
// The attention files declare theirs inside mk::cuda's anonymous namespace (simt.cuh,
// tensor_core_parts.cuh), which an emulator test defines in its one translation unit; here each
// attention unit refers to mk::cuda::(anonymous)::mk_emu_smem as an undefined symbol of that
// (Itanium-mangled) name, so it is defined once, as the same bytes, under that name. Hidden: the
// units address it PC-relative, which a preemptible symbol would not allow.
extern unsigned char mk_emu_smem_in_anonymous_namespace[] __asm__("_ZN2mk4cuda12_GLOBAL__N_111mk_emu_smemE")
    __attribute__((alias("_ZN2mk4cuda11mk_emu_smemE"), visibility("hidden")));

// table.cu defines mk_cuda_build_info (CUDA runtime version, architectures): kept under another
// name and wrapped below. (The macro renames its declaration in metakernels_cuda.h as well.)
#define mk_cuda_build_info mk_cuda_build_info_device
#include "table.cu"
#undef mk_cuda_build_info

extern "C" const char* mk_cuda_build_info(void) {
  static const std::string info =
      std::string("host emulator (tests/gpu-emu: kernels/cuda as host C++, sm_90 with H100 limits, no GPU) of: ") +
      mk_cuda_build_info_device();
  return info.c_str();
}
