// libmetakernels_cuda built without nvcc: no kernel table, and a reason for `info`.
#include "metakernels_cuda.h"

extern "C" {
__attribute__((visibility("default"))) const void* mk_cuda_kernel_table(void) { return nullptr; }
__attribute__((visibility("default"))) const char* mk_cuda_build_info(void) {
  return "built without nvcc: CUDA kernels unavailable";
}
}
