/*
 * metakernels_cuda.h: the one entry point of libmetakernels_cuda.
 * Returns the kernel table to hand to mk_runtime_attach_cuda(), or NULL when the library was
 * built without nvcc (then mk_cuda_build_info() says so).
 */
#ifndef METAKERNELS_CUDA_H
#define METAKERNELS_CUDA_H
#ifdef __cplusplus
extern "C" {
#endif
const void* mk_cuda_kernel_table(void);
const char* mk_cuda_build_info(void);
#ifdef __cplusplus
}
#endif
#endif
