// The kernel table handed to native/ (mk_runtime_attach_cuda). Each entry is typed by its CPU
// twin, so a signature that drifts fails to compile here.
#include <cuda_runtime.h>

#include <cstdio>

#include "common.cuh"
#include "metakernels_cuda.h"
#include "mk/kernels.h"

namespace mk {
namespace cuda {
namespace {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return 0; }
  return n;
}
int synchronize(void* stream) { return int(cudaStreamSynchronize(as_stream(stream))); }
const char* error_string(int code) { return cudaGetErrorString(cudaError_t(code)); }
int memcpy_d2h(void* dst, const void* src, int64_t nbytes, void* stream) {
  cudaError_t e = cudaMemcpyAsync(dst, src, size_t(nbytes), cudaMemcpyDeviceToHost, as_stream(stream));
  if (e != cudaSuccess) return int(e);
  return int(cudaStreamSynchronize(as_stream(stream)));
}

int device_malloc(void** ptr, int64_t nbytes) {
  cudaError_t e = cudaMalloc(ptr, size_t(nbytes));
  if (e != cudaSuccess) cudaGetLastError();  // clear the sticky-free error state
  return int(e);
}
int device_free(void* ptr) { return int(cudaFree(ptr)); }

// cudaErrorNotReady is not an error for a query: map it to kCudaNotReady (and clear nothing: a
// not-ready query does not set the sticky last error).
int ready_or(cudaError_t e) { return e == cudaErrorNotReady ? kCudaNotReady : int(e); }
int device_synchronize() { return int(cudaDeviceSynchronize()); }
int stream_create(void** stream) {
  cudaStream_t s = nullptr;
  cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  *stream = s;
  return int(e);
}
int stream_destroy(void* stream) { return int(cudaStreamDestroy(as_stream(stream))); }
int stream_query(void* stream) { return ready_or(cudaStreamQuery(as_stream(stream))); }
int event_create(void** event) {
  cudaEvent_t ev = nullptr;
  cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
  *event = ev;
  return int(e);
}
int event_destroy(void* event) { return int(cudaEventDestroy(static_cast<cudaEvent_t>(event))); }
int event_record(void* event, void* stream) {
  return int(cudaEventRecord(static_cast<cudaEvent_t>(event), as_stream(stream)));
}
int event_query(void* event) { return ready_or(cudaEventQuery(static_cast<cudaEvent_t>(event))); }
int event_synchronize(void* event) { return int(cudaEventSynchronize(static_cast<cudaEvent_t>(event))); }
int stream_wait_event(void* stream, void* event) {
  return int(cudaStreamWaitEvent(as_stream(stream), static_cast<cudaEvent_t>(event), 0));
}

KernelTable make_table() {
  KernelTable t{};
  t.abi_version = MK_ABI_VERSION;
  t.table_bytes = int(sizeof(KernelTable));
  t.runtime = CudaRuntime{&device_count,  &synchronize,  &error_string,   &memcpy_d2h,    &device_malloc,
                          &device_free,   &device_synchronize, &stream_create, &stream_destroy, &stream_query,
                          &event_create,  &event_destroy, &event_record,   &event_query,   &event_synchronize,
                          &stream_wait_event};
#define MK_KERNEL(ret, name, params) t.name = &cuda::name;
#include "mk/kernels.inc"
#undef MK_KERNEL
  return t;
}

const KernelTable g_table = make_table();

}  // namespace
}  // namespace cuda
}  // namespace mk

extern "C" {
const void* mk_cuda_kernel_table(void) { return &mk::cuda::g_table; }
const char* mk_cuda_build_info(void) {
  static char info[192];
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  // MK_CUDA_FATBIN: how cmake/CMakeLists.txt packed the machine code (compression, line info)
  snprintf(info, sizeof info, "CUDA runtime %d.%d, kernels for sm_80 sm_90a (+PTX compute_90)%s%s", rt / 1000,
           (rt % 1000) / 10,
#ifdef MK_CUDA_FATBIN
           ", ", MK_CUDA_FATBIN
#else
           "", ""
#endif
  );
  return info;
}
}
