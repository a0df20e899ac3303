// ns per mk_device_alloc + mk_device_free pair of the native device cache on a fake CUDA table
// (host memory, CUDA calls that cost nothing): the cache's own bookkeeping, for comparing two
// versions of native/src/memory.cpp (e.g. before and after the stream-aware cache). Real CUDA
// calls (cudaEventRecord per free once a second stream exists, ~1-2 us) are not in the numbers.
//   g++ -O2 -std=c++17 [-DMK_STREAMS] -I<rev>/kernels/include -I<rev>/native/include alloc_bench.cpp \
//       <build>/libmk_native_twin.a <build>/libmk_cpu_twin.a -fopenmp -ldl -o alloc_bench
//   ./alloc_bench [pairs]
// MK_STREAMS: the table has the stream and event entries, and a second round runs on a stream.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "metakernels.h"
#include "mk/kernels.h"

namespace {
int zero() { return 0; }
int zero_p(void*) { return 0; }
const char* err(int) { return "fake"; }
int d2h(void* d, const void* s, int64_t n, void*) {
  std::memcpy(d, s, size_t(n));
  return 0;
}
int dmalloc(void** p, int64_t n) {
  *p = std::malloc(size_t(n));
  return *p ? 0 : 2;
}
int dfree(void* p) {
  std::free(p);
  return 0;
}
#ifdef MK_STREAMS
int stream_create(void** s) {
  *s = std::malloc(1);
  return 0;
}
int event_create(void** e) {
  *e = std::malloc(1);
  return 0;
}
int pp(void*, void*) { return 0; }
#endif

mk::KernelTable table() {
  mk::KernelTable t{};
  t.abi_version = MK_ABI_VERSION;
  t.table_bytes = int(sizeof(mk::KernelTable));
  t.runtime.device_count = &zero;
  t.runtime.synchronize = &zero_p;
  t.runtime.error_string = &err;
  t.runtime.memcpy_d2h = &d2h;
  t.runtime.device_malloc = &dmalloc;
  t.runtime.device_free = &dfree;
#ifdef MK_STREAMS
  t.runtime.device_synchronize = &zero;
  t.runtime.stream_create = &stream_create;
  t.runtime.stream_destroy = &dfree;
  t.runtime.stream_query = &zero_p;
  t.runtime.event_create = &event_create;
  t.runtime.event_destroy = &dfree;
  t.runtime.event_record = &pp;
  t.runtime.event_query = &zero_p;
  t.runtime.event_synchronize = &zero_p;
  t.runtime.stream_wait_event = &pp;
#endif
#define MK_KERNEL(ret, name, params) t.name = &mk::cpu::name;
#include "mk/kernels.inc"
#undef MK_KERNEL
  return t;
}

// ns per pair; 4 live blocks of 4 size classes cycle so the lists are not trivially one deep
double round(long pairs, void* stream) {
  void* held[4] = {};
  const int64_t sizes[4] = {1000, 5000, 70000, 300000};
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < pairs; ++i) {
    const int k = int(i & 3);
    if (held[k]) mk_device_free(held[k]);
#ifdef MK_STREAMS
    held[k] = mk_device_alloc_on(sizes[k], stream);
#else
    (void)stream;
    held[k] = mk_device_alloc(sizes[k]);
#endif
    if (!held[k]) {
      std::printf("alloc failed: %s\n", mk_last_error());
      std::exit(1);
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  for (void* p : held) mk_device_free(p);
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(pairs);
}
}  // namespace

int main(int argc, char** argv) {
  const long pairs = argc > 1 ? std::atol(argv[1]) : 2000000;
  static const mk::KernelTable t = table();
  if (mk_runtime_attach_cuda(&t) != MK_OK) {
    std::printf("attach: %s\n", mk_last_error());
    return 1;
  }
  round(pairs / 10, nullptr);  // warm the cache
  std::printf("default stream, no other stream: %.1f ns per alloc+free (%ld pairs)\n", round(pairs, nullptr), pairs);
#ifdef MK_STREAMS
  void* s = nullptr;
  mk_cuda_stream_create(&s);
  round(pairs / 10, s);
  std::printf("a created stream (events recorded and queried): %.1f ns per alloc+free\n", round(pairs, s));
  std::printf("default stream once a stream exists: %.1f ns per alloc+free\n", round(pairs, nullptr));
  mk_cuda_stream_destroy(s);
#endif
  return 0;
}
