#include "blas.h"

#include <dlfcn.h>

#include <atomic>
#include <string>

#include "common.h"

namespace mk {
namespace native {
namespace {
std::atomic<sgemm_fn> g_sgemm{nullptr};
std::atomic<dgemm_fn> g_dgemm{nullptr};
std::string g_blas_info;  // set once, under attach_blas
}  // namespace

int attach_blas(const char* soname) {
  // RTLD_NOLOAD: only a library the JVM already loaded (through the OpenBLAS preset) is used.
  void* handle = dlopen(soname, RTLD_NOW | RTLD_NOLOAD | RTLD_LOCAL);
  if (!handle) handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    return fail(MK_ERR_UNSUPPORTED, "mk_runtime_attach_blas: cannot open %s (%s)", soname, dlerror());
  auto s = reinterpret_cast<sgemm_fn>(dlsym(handle, "cblas_sgemm"));
  auto d = reinterpret_cast<dgemm_fn>(dlsym(handle, "cblas_dgemm"));
  if (!s || !d)
    return fail(MK_ERR_UNSUPPORTED, "mk_runtime_attach_blas: %s has no cblas_sgemm/cblas_dgemm", soname);
  // One thread pool in the process: OpenBLAS runs single-threaded and native/ splits GEMMs
  // across the OpenMP threads. Two spinning pools (OpenBLAS pthreads + OpenMP) on the same
  // cores made small ops 10-30x slower (measured 2026-11-26: a [20480, 11] x [11, 11] GEMM
  // after an OpenMP copy took 8 ms instead of 0.25 ms on 2 cores).
  using set_threads_fn = void (*)(int);
  auto set_threads = reinterpret_cast<set_threads_fn>(dlsym(handle, "openblas_set_num_threads"));
  if (set_threads) set_threads(1);
  // what decides its speed, for benchmark reports: OpenBLAS's build configuration and the core
  // type it picked (OPENBLAS_CORETYPE overrides the CPUID choice)
  using str_fn = char* (*)();
  auto config = reinterpret_cast<str_fn>(dlsym(handle, "openblas_get_config"));
  auto core = reinterpret_cast<str_fn>(dlsym(handle, "openblas_get_corename"));
  g_blas_info = std::string(soname) + (config ? std::string("; config: ") + config() : std::string()) +
                (core ? std::string("; core: ") + core() : std::string());
  g_sgemm.store(s);
  g_dgemm.store(d);
  return MK_OK;
}

const char* blas_info() { return g_blas_info.c_str(); }

bool blas_attached() { return g_sgemm.load() != nullptr; }
sgemm_fn blas_sgemm() { return g_sgemm.load(); }
dgemm_fn blas_dgemm() { return g_dgemm.load(); }

}  // namespace native
}  // namespace mk
