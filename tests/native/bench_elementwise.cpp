// Times the CPU elementwise unary ops through the C ABI (ns per element, one thread by default).
//   tests/native/run.sh bench BUILD [threads]   (BUILD: a CMake build folder of cmake/, e.g.
//                                                java/target/native)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "metakernels.h"

namespace {
struct Op { const char* name; int code; float lo, hi; };
const Op kOps[] = {{"exp", 1, -10, 10}, {"log", 2, 0.01f, 100}, {"tanh", 3, -5, 5},
                   {"sigmoid", 4, -10, 10}, {"gelu", 6, -5, 5}, {"elu1", 18, -5, 5}};

template <class T>
double time_op(int dtype, int code, const std::vector<T>& x, std::vector<T>& y, int reps) {
  const int64_t n = int64_t(x.size());
  const int64_t shape[1] = {n}, strides[1] = {1};
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    int st = mk_dense_unary_forward(0, dtype, code, 1, shape, x.data(), strides, y.data(), 0.0, nullptr);
    auto t1 = std::chrono::steady_clock::now();
    if (st != 0) { std::fprintf(stderr, "error %d: %s\n", st, mk_last_error()); std::exit(1); }
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n);
    if (ns < best) best = ns;
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int64_t n = argc > 2 ? std::atoll(argv[2]) : (1 << 20);
  mk_runtime_set_num_threads(threads);
  std::printf("n=%lld threads=%d (best of 20, ns/element)\n", (long long)n, threads);
  std::printf("%-8s %10s %10s %10s %10s\n", "op", "f32 avx2", "f32 avx512", "f64 avx2", "f64 avx512");
  for (const Op& op : kOps) {
    std::vector<float> xf(n), yf(n);
    std::vector<double> xd(n), yd(n);
    for (int64_t i = 0; i < n; ++i) {
      const double u = double((i * 2654435761u) % 1000003u) / 1000003.0;
      xf[i] = float(op.lo + (op.hi - op.lo) * u);
      xd[i] = op.lo + (op.hi - op.lo) * u;
    }
    double t[4];
    for (int isa = 2; isa <= 3; ++isa) {
      if (mk_runtime_set_cpu_isa(isa) != 0) { t[isa - 2] = t[isa] = -1; continue; }
      time_op(0, op.code, xf, yf, 2);
      t[isa - 2] = time_op(0, op.code, xf, yf, 20);
      time_op(1, op.code, xd, yd, 2);
      t[isa] = time_op(1, op.code, xd, yd, 20);
    }
    mk_runtime_set_cpu_isa(0);
    std::printf("%-8s %10.3f %10.3f %10.3f %10.3f\n", op.name, t[0], t[1], t[2], t[3]);
  }
  return 0;
}
