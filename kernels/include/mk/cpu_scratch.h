// The CPU graph kernels' scratch (kernels/cpu/graph.cpp, kernels/cpu/gat.cpp): the kernels
// allocate nothing; native/ asks a kernel's *_workspace entry how many bytes it needs, takes them
// from the host caching allocator (counted in mk_host_live_bytes / mk_host_peak_bytes) and passes
// them in. A kernel lays its buffers out in that block with a Carve: the same code, run with no
// block, is the sizing (so the size and the layout cannot disagree). Buffers start on 64-byte
// boundaries (a thread's slice shares no cache line with another's).
//
// Per-thread buffers are cut into slots: slot omp_get_thread_num() of the omp_get_max_threads()
// counted when the call sizes its scratch (1 where the call runs on one thread), so the workspace
// is valid for the thread count of the calling thread at sizing time; a kernel given less than its
// layout needs (a smaller block, none, or more threads since) takes a path without scratch or
// answers KERNEL_UNSUPPORTED before writing anything (see each kernel).
//
// Included by MK_MULTI_ISA files: the definitions live in the ISA's inline namespace (mk/isa_ns.h).
#pragma once

#include <cstdint>

#include "mk/isa_ns.h"

namespace mk {
namespace cpu {
MK_ISA_BEGIN

class Carve {
 public:
  // Sizing: no block; take() returns null and counts.
  Carve() = default;
  Carve(void* base, int64_t bytes) : base_(static_cast<char*>(base)), cap_(base ? bytes : 0) {}

  // n elements of U at the next 64-byte boundary (null when sizing or past the end). take(0) is
  // NOT null in a block: a buffer that may be absent must be kept null by the caller, not by n = 0.
  template <class U>
  U* take(int64_t n) {
    const int64_t off = (used_ + 63) / 64 * 64;
    used_ = off + n * int64_t(sizeof(U));
    return base_ && used_ <= cap_ ? reinterpret_cast<U*>(base_ + off) : nullptr;
  }
  // slots × n elements of U, slot i at the result + i · stride(n) (stride: n rounded up to 64 bytes)
  template <class U>
  U* take_slots(int64_t slots, int64_t n) {
    return take<U>(slots * stride<U>(n));
  }
  template <class U>
  static int64_t stride(int64_t n) {
    constexpr int64_t per_line = 64 / int64_t(sizeof(U));
    return (n + per_line - 1) / per_line * per_line;
  }
  int64_t used() const { return (used_ + 63) / 64 * 64; }
  // a block that holds everything taken
  bool fits() const { return base_ && used_ <= cap_; }

 private:
  char* base_ = nullptr;
  int64_t cap_ = 0;
  int64_t used_ = 0;
};

MK_ISA_END
}  // namespace cpu
}  // namespace mk
