// The SIMT v2 softmax attention (kernels/cuda/attention/simt2.cu: register accumulators, 16-byte
// shared loads, cp.async tiles) run on the host by the emulator in cuda_runtime.h, against the CPU
// twin (kernels/cpu/attention/, the oracle), F32 and F64: forward (every tile: 64 x 64, 64 x 32, 128 x 64)
// and backward (every gradient, then partial requests) on shapes with causal masks (Nq < Nk and
// Nq > Nk: rows that see no key), key lengths (a batch entry without keys), bias broadcasts with
// -inf entries, GQA, N not a multiple of the tiles and D, Dv in {8, 16, 64, 96, 128, 256}; each run
// twice for the same bits; NaN guard words around every output; the one-place dispatch
// (mk/attention_simt_choice.h: the selection forces v2 through attention_forward / _backward and
// gives v2's bits; v1 where v2 does not apply or fit); unsupported shapes and misaligned tensors
// answered KERNEL_UNSUPPORTED.
//   attention_simt2_emu_test [order] [limits]   order: 0 forward, 1 reverse, 2 shuffled threads
//                                               limits: 0 H100, 1 A100, 2 sm_86, 3 48 KB
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cstring>
#include <string>

#include "attention/backward.cu"
#include "attention/forward.cu"
#include "attention/simt2.cu"
#include "attention/tensor_core.cu"
#include "attention/tensor_core_dd.cu"
#include "attention/tensor_core_sm90.cu"  // (tensor_core.cu calls its Hopper forward)
#include "attention/tensor_core_sm90_backward.cu"  // (and its Hopper backward)
#include "attention/tensor_core_sm90_dd.cu"        // (and tensor_core_dd.cu its Hopper double backward)
#include "attention/tensor_core_sm90_f32.cu"           // (forward.cu may call the x3 forward)
#include "attention/tensor_core_sm90_f32_backward.cu"  // (and backward.cu the x3 backward)

#include "attention_simt2_emu.h"

template <class T>
void run_case(const Case& c, uint64_t seed) {
  const double tol = sizeof(T) == 4 ? 2e-5 : 1e-12;
  Simt2Inputs<T> in(c, seed, false, false);
  const std::string& cs = in.name;
  std::mt19937_64& g = in.g;
  const int64_t B = c.b, Hkv = c.hkv, Nk = c.nk, D = c.d, Dv = c.dv;
  const int64_t rows = in.rows;
  const bool has_bias = in.has_bias;
  Buf<T>&q = in.q, &k = in.k, &v = in.v, &dout = in.dout, &bias = in.bias;
  AttentionParams& p = in.p;
  std::vector<unsigned char>& ws_cpu = in.ws_cpu;
  const bool applies = mk::attention_simt_v2_applies(p.dtype, D, Dv);
  mk::AttentionSimtSelection& sel = mk::attention_simt_selection();

  // ---- forward: the CPU twin, then v2 with each key tile (twice each: the same bits), then the dispatch
  Buf<T> out_c(rows * Dv), lse_c(rows);
  in.cpu_forward(out_c, lse_c);
  bool have_first = false;
  for (int tile : {mk::cuda::SIMT2_TILE_64x64, mk::cuda::SIMT2_TILE_64x32, mk::cuda::SIMT2_TILE_128x64}) {
    Buf<T> o1(rows * Dv), l1(rows), o2(rows * Dv), l2(rows);
    AttentionParams e = p;
    e.out = o1.data();
    e.lse = l1.data();
    const int st = mk::cuda::simt2_attention_forward(e, nullptr, tile);
    if (!applies) {
      if (st != mk::KERNEL_UNSUPPORTED) fail(cs, "v2 forward runs a shape it does not apply to");
      break;
    }
    if (st == mk::KERNEL_UNSUPPORTED) continue;  // this tile does not apply (F64, Dv) or fit the device
    if (st) {
      fail(cs, "v2 forward status");
      continue;
    }
    ++g_v2_runs;
    const std::string ck = cs + (tile == mk::cuda::SIMT2_TILE_64x64   ? " v2 64x64"
                                 : tile == mk::cuda::SIMT2_TILE_64x32 ? " v2 64x32"
                                                                      : " v2 128x64");
    compare("fwd.out", ck, o1, out_c, tol);
    compare("fwd.lse", ck, l1, lse_c, tol);
    e.out = o2.data();
    e.lse = l2.data();
    if (mk::cuda::simt2_attention_forward(e, nullptr, tile) || !o1.same(o2) || !l1.same(l2))
      fail(ck, "v2 forward rerun: not the same bits");
    // only lse asked for: the same lse
    Buf<T> l3(rows);
    e.out = nullptr;
    e.lse = l3.data();
    if (mk::cuda::simt2_attention_forward(e, nullptr, tile) || !l1.same(l3))
      fail(ck, "v2 forward without out: lse differs");
    have_first = true;
  }
  {  // the dispatch with v2 selected: v2's bits where it ran (its own choice of key tile), else v1 (= the CPU twin)
    Buf<T> o1(rows * Dv), l1(rows), o2(rows * Dv), l2(rows);
    AttentionParams e = p;
    e.out = o1.data();
    e.lse = l1.data();
    sel.forward = mk::MK_SIMT_V2;
    const int st = mk::cuda::attention_forward(e, nullptr);
    e.out = o2.data();
    e.lse = l2.data();
    const int st2 = mk::cuda::simt2_attention_forward(e, nullptr, 0);
    sel.forward = 0;
    if (st) fail(cs, "attention_forward status (v2 selected)");
    compare("dispatch.out", cs + " (v2 selected)", o1, out_c, tol);
    compare("dispatch.lse", cs + " (v2 selected)", l1, lse_c, tol);
    if (st2 == 0 && (!o1.same(o2) || !l1.same(l2))) fail(cs, "attention_forward with v2 selected: not v2's bits");
    if (st2 != 0) ++g_v1_fallbacks;
    if (st2 == 0 && !have_first) fail(cs, "the automatic key tile ran where neither forced one did");
  }

  // ---- backward from the CPU's out and lse: every gradient, twice; partial requests (the same bits); the dispatch
  dout.randn(g);
  p.out = out_c.data();
  p.lse = lse_c.data();
  p.dout = dout.cdata();
  struct Grads {
    Buf<T> dq, dk, dv, ds;
  };
  auto make = [&](Grads& gr) {
    gr.dq = Buf<T>(rows * D);
    gr.dk = Buf<T>(B * Hkv * Nk * D);
    gr.dv = Buf<T>(B * Hkv * Nk * Dv);
    gr.ds = Buf<T>(rows * Nk, has_bias);
    for (auto* b : {&gr.dq, &gr.dk, &gr.dv, &gr.ds}) b->fill(T(0));  // native/ zero-fills
  };
  Grads ref;
  make(ref);
  {
    AttentionParams a = p;
    a.workspace = ws_cpu.data();
    a.grad_q = ref.dq.data();
    a.grad_k = ref.dk.data();
    a.grad_v = ref.dv.data();
    a.grad_bias_full = ref.ds.data();
    mk::cpu::attention_backward(a, nullptr);
  }
  const int64_t ws_bytes = mk::cuda::attention_workspace(p, 1);
  // mask bits: 1 dQ, 2 dK, 4 dV, 8 dS; version 2: simt2 directly, 0: the dispatch (attention_backward)
  auto run = [&](unsigned mask, Grads& gr, int version) {
    make(gr);
    Buf<T> ws(ws_bytes / int64_t(sizeof(T)) + 1);
    AttentionParams e = p;
    e.workspace = ws.data();
    e.grad_q = mask & 1 ? gr.dq.data() : nullptr;
    e.grad_k = mask & 2 ? gr.dk.data() : nullptr;
    e.grad_v = mask & 4 ? gr.dv.data() : nullptr;
    e.grad_bias_full = mask & 8 ? gr.ds.data() : nullptr;
    const int st =
        version == 2 ? mk::cuda::simt2_attention_backward(e, nullptr) : mk::cuda::attention_backward(e, nullptr);
    if (!ws.guards_ok()) fail(cs, "workspace guard");
    return st;
  };
  Grads g1, g2, g3, g4, g5;
  const int s1 = run(15, g1, 2);
  if (!applies) {
    if (s1 != mk::KERNEL_UNSUPPORTED) fail(cs, "v2 backward runs a shape it does not apply to");
  } else if (s1 == mk::KERNEL_UNSUPPORTED) {
    ++g_v1_fallbacks;  // its tiles do not fit this device
  } else if (s1) {
    fail(cs, "v2 backward status");
  } else {
    ++g_v2_runs;
    const std::string cb = cs + " v2";
    compare("bwd.dq", cb, g1.dq, ref.dq, tol);
    compare("bwd.dk", cb, g1.dk, ref.dk, tol);
    compare("bwd.dv", cb, g1.dv, ref.dv, tol);
    compare("bwd.dS", cb, g1.ds, ref.ds, tol);
    const int s2 = run(15, g2, 2), s3 = run(1, g3, 2), s4 = run(2 | 8, g4, 2), s5 = run(4, g5, 2);
    if (s2 || s3 || s4 || s5) fail(cb, "v2 backward status (rerun or partial request)");
    if (!g2.dq.same(g1.dq) || !g2.dk.same(g1.dk) || !g2.dv.same(g1.dv) || (has_bias && !g2.ds.same(g1.ds)))
      fail(cb, "v2 backward rerun: not the same bits");
    if (!g3.dq.same(g1.dq) || !g4.dk.same(g1.dk) || !g5.dv.same(g1.dv) || (has_bias && !g4.ds.same(g1.ds)))
      fail(cb, "v2 backward partial request: not the same bits");
    for (const Grads* gr : {&g3, &g4, &g5})  // gradients not asked for: untouched
      for (const Buf<T>* b : {&gr->dq, &gr->dk, &gr->dv, &gr->ds})
        if (!b->guards_ok()) fail(cb, "guard overwritten (partial request)");
  }
  {
    Grads gd;
    mk::attention_simt_selection().backward = mk::MK_SIMT_V2;
    const int sd = run(15, gd, 0);
    mk::attention_simt_selection().backward = 0;
    if (sd) fail(cs, "attention_backward status (v2 selected)");
    const std::string cb = cs + " (v2 selected)";
    compare("dispatch.dq", cb, gd.dq, ref.dq, tol);
    compare("dispatch.dk", cb, gd.dk, ref.dk, tol);
    compare("dispatch.dv", cb, gd.dv, ref.dv, tol);
    compare("dispatch.dS", cb, gd.ds, ref.ds, tol);
    if (s1 == 0 && (!gd.dq.same(g1.dq) || !gd.dk.same(g1.dk) || !gd.dv.same(g1.dv) || (has_bias && !gd.ds.same(g1.ds))))
      fail(cb, "attention_backward with v2 selected: not v2's bits");
  }
  for (auto* b : {&q, &k, &v, &bias, &out_c, &lse_c, &dout})
    if (b->present && !b->guards_ok()) fail(cs, "input guard");
}

// Unsupported: odd head dims, F64 wider than 128, misaligned tensors, a device without room.
void run_unsupported() {
  Buf<float> q(2 * 64 + 4), k(2 * 64 + 4), v(2 * 64 + 4), out(2 * 64 + 4), lse(4);
  AttentionParams p{};
  p.dtype = MK_F32;
  p.batch = p.heads = p.kv_heads = 1;
  p.nq = p.nk = 2;
  p.d = p.dv = 64;
  p.q = q.cdata();
  p.k = k.cdata();
  p.v = v.cdata();
  p.out = out.data();
  p.lse = lse.data();
  p.scale = 0.125;
  auto expect = [&](const AttentionParams& a, const char* what) {
    if (mk::cuda::simt2_attention_forward(a, nullptr) != mk::KERNEL_UNSUPPORTED) {
      printf("FAIL unsupported: %s runs\n", what);
      ++g_failures;
    }
    ++g_checks;
  };
  AttentionParams a = p;
  a.d = 62;
  expect(a, "D = 62");
  a = p;
  a.dv = 5;
  expect(a, "Dv = 5");
  a = p;
  a.q = q.cdata() + 1;
  expect(a, "q misaligned");
  a = p;
  a.out = out.data() + 2;
  expect(a, "out misaligned");
  a = p;
  a.dtype = MK_F64;
  a.d = a.dv = 256;
  expect(a, "F64 D = 256");
  a = p;
  a.d = 300;
  expect(a, "D = 300");
  const int optin = emu::config().optin;
  emu::config().optin = 8 * 1024;
  expect(p, "tiles larger than the device's shared memory");
  emu::config().optin = optin;
  const int arch = emu::config().arch_major;
  emu::config().arch_major = 7;
  expect(p, "sm_70 (no cp.async)");
  emu::config().arch_major = arch;
  if (out.guards_ok() == false || lse.guards_ok() == false) {
    printf("FAIL unsupported: an output was written\n");
    ++g_failures;
  }
  for (int64_t i = 0; i < out.n; ++i)
    if (!std::isnan(out[i])) {
      printf("FAIL unsupported: out written\n");
      ++g_failures;
      break;
    }
}

int main(int argc, char** argv) {
  int order = 0, limits = 0;
  emu_setup(argc, argv, order, limits);
  std::vector<Case> cases = {
      {1, 1, 1, 5, 5, 16, 16, false, "none", {}},
      {2, 4, 2, 70, 33, 16, 8, false, "none", {}},           // GQA 2:1, Dv = 8, Nq > Nk
      {2, 2, 2, 33, 70, 64, 64, true, "none", {}},           // causal, Nk > Nq (bottom-right)
      {1, 2, 1, 100, 100, 128, 128, true, "11", {}},         // D = 128, causal, bias
      {2, 3, 3, 40, 97, 32, 24, false, "BH", {97 - 3, 40}},  // key lengths
      {2, 2, 1, 65, 65, 256, 64, true, "1H", {62, 55}},      // D = 256 (F32), Dv = 64
      {3, 2, 2, 1, 129, 16, 16, false, "B1", {129, 0, 7}},   // one row; a batch entry without keys
      {1, 1, 1, 130, 70, 96, 96, true, "none", {}},          // D = 96; Nq > Nk causal: rows that see no key
      {2, 1, 1, 6, 3, 4, 4, true, "none", {3, 0}},           // fully masked rows, a batch without keys
      {1, 4, 1, 19, 23, 8, 12, true, "BH", {17}},            // GQA 4:1
      {1, 2, 2, 21, 37, 256, 256, false, "BH", {30}},        // D = Dv = 256 (F32)
      {2, 2, 1, 70, 150, 16, 16, false, "BH-inf", {}},       // -inf bias: rows with no key, wholly masked tiles
      {2, 2, 2, 40, 97, 32, 24, true, "1H-inf", {90, 60}},
      {1, 1, 1, 200, 260, 128, 64, true, "none", {}},   // several key tiles of both sizes, partial last
      {2, 2, 1, 90, 150, 64, 64, false, "none", {}},    // unmasked full tiles, partial last, GQA
      {1, 1, 1, 64, 128, 128, 128, false, "none", {}},  // every tile full and unmasked
      {1, 2, 1, 48, 5, 5, 3, false, "none", {}},        // odd dims: v2 does not apply (v1 runs)
      {2, 2, 1, 33, 150, 64, 64, true, "1H", {140, 60}, 0, true},  // top-left causal: keys no row sees, lengths
      {1, 1, 1, 200, 130, 128, 64, true, "none", {}, 0, true},     // top-left causal, Nq > Nk
  };
  uint64_t seed = 4321;
  for (const Case& c : cases) {
    run_case<double>(c, seed);
    run_case<float>(c, seed);
    ++seed;
  }
  run_unsupported();
  printf(
      "order %d limits %d: %d checks, %d v2 runs, %d v1 fallbacks in the dispatch, %d failures, worst rel err F32 "
      "%.3g F64 %.3g\n",
      order, limits, g_checks, g_v2_runs, g_v1_fallbacks, g_failures, g_worst[0], g_worst[1]);
  return g_failures ? 1 : 0;
}
