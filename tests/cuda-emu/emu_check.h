// What the emulator tests share: failure counting (expect) and guarded buffers. A Buf<T> holds n
// elements between guards (NaN for floating types, -777 for integers) that no kernel may touch;
// shift = 1 puts element 0 one element past a 16-byte boundary (the scalar-load paths). Include it
// after the .cu under test (which brings in the emulator's cuda_runtime.h).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

static int g_failures = 0;
static int g_checks = 0;

static void expect(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    if (g_failures <= 30) fprintf(stderr, "FAIL %s\n", what.c_str());
  }
}

template <class T>
struct Buf {
  static constexpr int64_t kGuard = 16;
  std::vector<T> raw;
  int64_t n = 0, shift = 0;
  explicit Buf(int64_t n_ = 0, int64_t shift_ = 0) : n(n_), shift(shift_) {
    raw.assign(size_t(n + 2 * kGuard + shift), guard());
  }
  static T guard() {
    if constexpr (std::is_floating_point_v<T>)
      return std::numeric_limits<T>::quiet_NaN();
    else
      return T(-777);
  }
  // raw.data() is 16-byte aligned by the allocator (kGuard elements keep it so); shift moves it off
  T* data() { return raw.data() + kGuard + shift; }
  const T* data() const { return raw.data() + kGuard + shift; }
  T& operator[](int64_t i) { return data()[i]; }
  T operator[](int64_t i) const { return data()[i]; }
  bool guards_intact() const {
    for (int64_t i = 0; i < int64_t(raw.size()); ++i) {
      if (i >= kGuard + shift && i < kGuard + shift + n) continue;
      const T v = raw[size_t(i)], g = guard();
      if (std::memcmp(&v, &g, sizeof(T)) != 0) return false;
    }
    return true;
  }
  // the data itself set to the guard value (outputs a kernel must overwrite)
  void poison() {
    for (int64_t i = 0; i < n; ++i) data()[i] = guard();
  }
};

template <class T>
static bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <class T>
static const char* tname() {
  return sizeof(T) == 4 ? "F32" : "F64";
}
