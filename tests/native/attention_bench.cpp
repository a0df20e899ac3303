// Times the CPU attention kernels (mk::cpu::attention_forward / _backward) straight through the
// kernel layer, without Java or JMH: for same-minute A/B runs of two versions of
// kernels/cpu/attention.cpp (attention_ab.sh builds this file once per version).
//
//   attention_bench fwd|bwd B H N D causal reps
// environment: NQ (query rows; default N), ISA (2 = AVX2, 3 = AVX-512; default 3),
// WALL=1 (wall-clock time; default process CPU time, which ignores time spent descheduled)
// prints: "<mode> best <ms> ms <GFLOP/s> GFLOP/s checksum <sum of the output>"
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "metakernels.h"
#include "mk/kernels.h"

namespace {
double now() {
  timespec t;
  clock_gettime(std::getenv("WALL") ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s fwd|bwd B H N D causal reps\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  mk::cpu::set_isa_level(std::getenv("ISA") ? std::atoi(std::getenv("ISA")) : 3);
  const int64_t B = std::atoll(argv[2]), H = std::atoll(argv[3]), N = std::atoll(argv[4]), D = std::atoll(argv[5]);
  const int causal = std::atoi(argv[6]), reps = std::atoi(argv[7]);
  const int64_t NQ = std::getenv("NQ") ? std::atoll(std::getenv("NQ")) : N;
  mk::AttentionParams p{};
  p.dtype = MK_F32;
  p.batch = B;
  p.heads = H;
  p.kv_heads = H;
  p.nq = NQ;
  p.nk = N;
  p.d = D;
  p.dv = D;
  const size_t qn = size_t(B * H * NQ * D), kn = size_t(B * H * N * D);
  std::vector<float> q(qn), k(kn), v(kn), out(qn), lse(size_t(B * H * NQ)), dout(qn), dq(qn), dk(kn), dv(kn);
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  for (auto* x : {&q, &k, &v, &dout})
    for (auto& e : *x) e = nd(g);
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.scale = 1.0 / std::sqrt(double(D));
  p.causal = causal;
  std::vector<char> ws(size_t(mk::cpu::attention_workspace(p, omp_get_max_threads())) + 64);
  p.workspace = ws.data();
  mk::AttentionParams f = p;
  f.out = out.data();
  f.lse = lse.data();
  mk::cpu::attention_forward(f, nullptr);  // also the backward's out and lse
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    if (mode == "fwd") {
      mk::cpu::attention_forward(f, nullptr);
    } else {
      mk::AttentionParams b = p;
      b.out = out.data();
      b.lse = lse.data();
      b.dout = dout.data();
      b.grad_q = dq.data();
      b.grad_k = dk.data();
      b.grad_v = dv.data();
      mk::cpu::attention_backward(b, nullptr);
    }
    best = std::min(best, now() - t0);
  }
  const double flops = 4.0 * double(B * H) * double(NQ) * double(N) * double(D) * (causal ? 0.5 : 1.0) *
                       (mode == "fwd" ? 1.0 : 2.5);
  double cs = 0;
  for (float x : (mode == "fwd" ? out : dq)) cs += x;
  std::printf("%s best %.4f ms %.1f GFLOP/s checksum %.6f\n", mode.c_str(), best * 1e3, flops / best / 1e9, cs);
  return 0;
}
