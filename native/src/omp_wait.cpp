// libmetakernels_ompwait: loaded by JavaCPP just before libmetakernels (MkNative's @Platform
// preload), so that its constructor runs before the OpenMP runtime that libmetakernels pulls in
// reads its environment. It asks that runtime for passive waiting (a thread with nothing to do
// sleeps on a futex instead of spinning): libgomp's default spin after every parallel region
// (GOMP_SPINCOUNT 300000, milliseconds) kept the second core busy between small ops, and on a loaded
// 2-core machine each fork then waited for a descheduled thread. Measured 2026-12-04 (recipe gtn,
// 10 meta-iterations, load ~35): 2 threads 117-157 s and 28-33 s of CPU, with passive waiting 8.6 s
// and 3.4 s, as 1 thread (8.6-12.7 s). A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
// libmetakernels removes the variable again once its runtime has read it (native/src/runtime.cpp),
// so an OpenMP runtime loaded later (libtorch's own libgomp, in the benchmarks) sees the user's
// environment unchanged. No OpenMP here: this library must not load libgomp.
#include <stdlib.h>

namespace {
__attribute__((constructor)) void mk_ask_passive_wait() {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
  setenv("OMP_WAIT_POLICY", "passive", 0);
  setenv("MK_OMP_WAIT_SET", "1", 1);  // tells libmetakernels to take it back
}
}  // namespace
