// Times the CPU attention kernels (mk::cpu::attention_forward / _backward / _backward_backward /
// _jvp) straight through the kernel layer, without Java or JMH: for same-minute A/B runs of two
// versions of kernels/cpu/attention/ (attention_ab.sh builds this file once per version).
//
//   attention_bench fwd|bwd|bb|jvp B H N D causal reps
//   attention_bench lin B H N D mask reps      (linear attention, mk::cpu::linear_attention: mask 0
//                                              all keys, 1 causal, 2 anti-causal; q, k, v [B*H, N, D])
// bb: the double backward as AttentionBench.doubleBackward calls it (cotangents of dq, dk, dv, no
// bias; writes the cotangents of q, k, v and dout); jvp: tangents of q, k, v, no bias.
// GFLOP/s count the tile products of the kernels as of 2026-12-04 (dfe368b), 2·Nq·Nk·D each:
// fwd 2 (S, P V), bwd 5 (S, dP, dV, dK, dQ), bb 22 (5 + 9 + 8 over its three passes), jvp 5
// (S, two for tS, tS∘P V, P tv); halved when causal. A kernel that does less work than that
// count shows it as a higher rate: compare times. lin: 4·N·D² per group (kᵀ v and q S) without a
// mask; with one, per chunk of 64 rows the four products q S, q kᵀ, A v, kᵀ v: N·(4·D² + 4·64·D).
// environment: NQ (query rows; default N), ISA (2 = AVX2, 3 = AVX-512; default 3),
// WALL=1 (wall-clock time; default process CPU time, which ignores time spent descheduled),
// DUMP=FILE (write the pass's outputs there as raw floats, to compare two versions bit for bit)
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

// mode lin: the linear-attention product, F32, groups = B*H, nq = nk = N, dk = dv = D.
int linear(int64_t groups, int64_t n, int64_t d, int mask, int reps) {
  const size_t sz = size_t(groups * n * d);
  std::vector<float> q(sz), k(sz), v(sz), out(sz);
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  for (auto* x : {&q, &k, &v})
    for (auto& e : *x) e = nd(g);
  std::vector<float> ws(size_t(mk::cpu::linear_attention_workspace(d, d, omp_get_max_threads())));
  auto run = [&] {
    mk::cpu::linear_attention(MK_F32, groups, n, n, d, d, q.data(), k.data(), v.data(), out.data(), mask, ws.data(),
                              nullptr);
  };
  run();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    run();
    best = std::min(best, now() - t0);
  }
  const double flops = double(groups) * double(n) * (mask ? 4.0 * d * d + 4.0 * 64 * d : 4.0 * d * d);
  double cs = 0;
  for (float x : out) cs += x;
  if (const char* dump = std::getenv("DUMP")) {
    FILE* f = std::fopen(dump, "wb");
    if (!f) {
      std::perror(dump);
      return 1;
    }
    std::fwrite(out.data(), sizeof(float), out.size(), f);
    std::fclose(f);
  }
  std::printf("lin best %.4f ms %.1f GFLOP/s checksum %.6f\n", best * 1e3, flops / best / 1e9, cs);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s fwd|bwd|bb|jvp|lin B H N D causal|mask reps\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  if (mode != "fwd" && mode != "bwd" && mode != "bb" && mode != "jvp" && mode != "lin") {
    std::fprintf(stderr, "unknown mode %s (fwd, bwd, bb, jvp, lin)\n", argv[1]);
    return 2;
  }
  mk::cpu::set_isa_level(std::getenv("ISA") ? std::atoi(std::getenv("ISA")) : 3);
  const int64_t B = std::atoll(argv[2]), H = std::atoll(argv[3]), N = std::atoll(argv[4]), D = std::atoll(argv[5]);
  const int causal = std::atoi(argv[6]), reps = std::atoi(argv[7]);
  if (mode == "lin") return linear(B * H, N, D, causal, reps);
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
  std::vector<float> rq(qn), rk(kn), rv(kn), ddout(qn), tlse(size_t(B * H * NQ));
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  for (auto* x : {&q, &k, &v, &dout, &rq, &rk, &rv})
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
    } else if (mode == "bb") {
      mk::AttentionParams b = p;
      b.out = out.data();
      b.lse = lse.data();
      b.dout = dout.data();
      b.cot_grad_q = rq.data();
      b.cot_grad_k = rk.data();
      b.cot_grad_v = rv.data();
      b.cot_q = dq.data();
      b.cot_k = dk.data();
      b.cot_v = dv.data();
      b.cot_dout = ddout.data();
      mk::cpu::attention_backward_backward(b, nullptr);
    } else if (mode == "jvp") {
      mk::AttentionParams b = p;
      b.out = out.data();
      b.lse = lse.data();
      b.tan_q = rq.data();
      b.tan_k = rk.data();
      b.tan_v = rv.data();
      b.tan_out = dq.data();
      b.tan_lse = tlse.data();
      mk::cpu::attention_jvp(b, nullptr);
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
                       (mode == "fwd" ? 1.0 : mode == "bb" ? 11.0 : 2.5);
  double cs = 0;
  for (float x : (mode == "fwd" ? out : dq)) cs += x;  // the output, dq, q's cotangent, tan_out
  if (mode == "bb")
    for (auto* x : {&dk, &dv, &ddout})
      for (float e : *x) cs += e;
  if (const char* dump = std::getenv("DUMP")) {
    std::vector<const std::vector<float>*> outs;
    if (mode == "fwd") outs = {&out, &lse};
    else if (mode == "bwd") outs = {&dq, &dk, &dv};
    else if (mode == "bb") outs = {&dq, &dk, &dv, &ddout};
    else outs = {&dq, &tlse};
    FILE* f = std::fopen(dump, "wb");
    if (!f) {
      std::perror(dump);
      return 1;
    }
    for (auto* x : outs) std::fwrite(x->data(), sizeof(float), x->size(), f);
    std::fclose(f);
  }
  std::printf("%s best %.4f ms %.1f GFLOP/s checksum %.6f\n", mode.c_str(), best * 1e3, flops / best / 1e9, cs);
  return 0;
}
