// The device-allocation map of the two emulated CUDA runtimes: tests/cuda-emu/cuda_runtime.h (the
// standalone emulator programs, e.g. the GPU harnesses) and tests/gpu-emu/fake_cudart.cpp (the
// fake libcudart.so.13 under the Java tests). Device pointers are host pointers in both; each keeps
// its live allocations as base -> bytes and asks these questions of it (under its own lock). No CUDA
// types: fake_cudart.cpp is built with the toolkit's headers, cuda_runtime.h replaces them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>

namespace emu_alloc {

using Map = std::map<uintptr_t, size_t>;  // live allocation base -> bytes

// Whether [p, p + n) lies inside one live allocation.
inline bool inside(const Map& m, const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return false;
  --it;
  return a + n <= it->first + it->second;
}
// Whether any byte of [p, p + n) lies in a live allocation.
inline bool touches(const Map& m, const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a + (n ? n - 1 : 0));
  if (it == m.begin()) return false;
  --it;
  return it->first + it->second > a;
}
// Whether a copy's sides are where its kind says: kind is cudaMemcpyKind's value (0 host to host,
// 1 host to device, 2 device to host, 3 device to device, 4 default: any pair, unified addressing).
inline bool copy_sides_ok(const Map& m, void* dst, const void* src, size_t n, int kind) {
  switch (kind) {
    case 0: return !touches(m, src, n) && !touches(m, dst, n);
    case 1: return inside(m, dst, n) && !touches(m, src, n);
    case 2: return inside(m, src, n) && !touches(m, dst, n);
    case 3: return inside(m, src, n) && inside(m, dst, n);
    case 4: return true;
  }
  return false;
}

}  // namespace emu_alloc
