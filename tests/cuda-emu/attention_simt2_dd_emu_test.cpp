// The SIMT v2 passes of the softmax-attention double backward (kernels/cuda/attention/simt2_dd.cu:
// the stats pass, C and E, the query pass, q', dO', bias', and the key pass, k', v', with register accumulators) run on
// the host by the emulator in cuda_runtime.h through the dispatch of backward_backward.cu (the MK_ATTN_SIMT_DD choice
// forced by the selection), against the CPU twin (kernels/cpu/attention/backward_backward.cpp, the oracle), F32 (TF32
// off) and F64: causal or not, Nq != Nk, N not a multiple of the tiles, D and Dv in {16, 64, 96, 128} (and 256, F32),
// GQA, bias with -inf entries, key lengths, rows that see no key, second inputs (gq, gk, gv, gbias) present or absent;
// every output, then partial requests (the same bits, the outputs not asked for untouched); the v2 stats (C, E) within
// tolerance of v1's; the v2 passes called directly give the dispatch's bits (it ran) and a rerun the same bits (the
// stats pass from a workspace holding only D); NaN guard words around every buffer.
//   attention_simt2_dd_emu_test [order] [limits]   order: 0 forward, 1 reverse, 2 shuffled threads
//                                                  limits: 0 H100, 1 A100, 2 sm_86, 3 48 KB
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cstring>
#include <string>

#include "attention/backward.cu"
#include "attention/backward_backward.cu"
#include "attention/forward.cu"
#include "attention/simt2.cu"
#include "attention/simt2_dd.cu"
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
  const double tol = sizeof(T) == 4 ? 5e-5 : 1e-11;
  Simt2Inputs<T> in(c, seed, true, true);
  const std::string& cs = in.name;
  std::mt19937_64& g = in.g;
  const int64_t B = c.b, Hkv = c.hkv, Nk = c.nk, D = c.d, Dv = c.dv;
  const int64_t rows = in.rows;
  const bool has_bias = in.has_bias;
  Buf<T>&q = in.q, &k = in.k, &v = in.v, &dout = in.dout, &bias = in.bias;
  AttentionParams& p = in.p;
  Buf<T> gq(rows * D, bool(c.second & 1)), gk(B * Hkv * Nk * D, bool(c.second & 2)),
      gv(B * Hkv * Nk * Dv, bool(c.second & 4)), gb(rows * Nk, bool(c.second & 8) && has_bias);
  for (auto* b : {&gq, &gk, &gv, &gb})
    if (b->present) b->randn(g);
  std::vector<unsigned char>& ws_cpu = in.ws_cpu;
  Buf<T> out(rows * Dv), lse(rows);
  in.cpu_forward(out, lse);
  p.out = out.data();
  p.lse = lse.data();
  p.dout = dout.cdata();
  p.cot_grad_q = gq.cdata();
  p.cot_grad_k = gk.cdata();
  p.cot_grad_v = gv.cdata();
  p.cot_grad_bias_full = gb.cdata();
  struct Outs {
    Buf<T> q, k, v, dout, bias;
  };
  // mask bits: 1 q', 2 k', 4 v', 8 dO', 16 bias'; the outputs asked for are zero-filled (as native/
  // does), the others stay NaN
  auto make = [&](Outs& o, unsigned mask) {
    o.q = Buf<T>(rows * D);
    o.k = Buf<T>(B * Hkv * Nk * D);
    o.v = Buf<T>(B * Hkv * Nk * Dv);
    o.dout = Buf<T>(rows * Dv);
    o.bias = Buf<T>(rows * Nk, has_bias);
    Buf<T>* all[5] = {&o.q, &o.k, &o.v, &o.dout, &o.bias};
    for (int i = 0; i < 5; ++i)
      if (mask & (1u << i))
        all[i]->fill(T(0));
      else
        all[i]->present = false;
  };
  auto set = [](AttentionParams& e, Outs& o) {
    e.cot_q = o.q.data();
    e.cot_k = o.k.data();
    e.cot_v = o.v.data();
    e.cot_dout = o.dout.data();
    e.cot_bias_full = o.bias.data();
  };
  Outs ref;
  make(ref, 31);
  {
    AttentionParams a = p;
    a.workspace = ws_cpu.data();
    set(a, ref);
    mk::cpu::attention_backward_backward(a, nullptr);
  }
  const int64_t ws_bytes = mk::cuda::attention_workspace(p, 1);
  Buf<T> ws_keep(ws_bytes / int64_t(sizeof(T)) + 1);
  // the dispatch (attention_backward_backward) with v2 (or v1) selected for the double backward
  auto run = [&](unsigned mask, Outs& o, Buf<T>* keep, int version = mk::MK_SIMT_V2) {
    make(o, mask);
    Buf<T> ws(ws_bytes / int64_t(sizeof(T)) + 1);
    AttentionParams e = p;
    e.workspace = ws.data();
    set(e, o);
    mk::attention_simt_selection().dd = version;
    const int st = mk::cuda::attention_backward_backward(e, nullptr);
    mk::attention_simt_selection().dd = 0;
    if (!ws.guards_ok()) fail(cs, "workspace guard");
    if (keep) std::memcpy(keep->data(), ws.data(), size_t(ws.n) * sizeof(T));
    return st;
  };
  Outs o1;
  if (run(31, o1, &ws_keep)) fail(cs, "attention_backward_backward status (v2 selected)");
  compare("bb.q'", cs, o1.q, ref.q, tol);
  compare("bb.k'", cs, o1.k, ref.k, tol);
  compare("bb.v'", cs, o1.v, ref.v, tol);
  compare("bb.dO'", cs, o1.dout, ref.dout, tol);
  compare("bb.bias'", cs, o1.bias, ref.bias, tol);
  const bool applies = mk::attention_simt_v2_applies(p.dtype, D, Dv);
  // the stats (workspace: D at [0, rows), C at [rows, 2 rows), E at [2 rows, 3 rows)): the v2
  // dispatch's C and E within tol of the v1 dispatch's; the v2 stats pass called directly on a
  // workspace holding only D (C, E NaN) gives the dispatch's bits (so v2 ran there), twice, and
  // writes nothing where it answers KERNEL_UNSUPPORTED
  {
    Outs o0;
    Buf<T> ws_v1(ws_keep.n);
    if (run(31, o0, &ws_v1, mk::MK_SIMT_V1)) fail(cs, "attention_backward_backward status (v1 selected)");
    auto part = [&](const Buf<T>& w, int k) {
      Buf<T> r(rows);
      std::memcpy(r.data(), w.cdata() + k * rows, size_t(rows) * sizeof(T));
      return r;
    };
    compare("stats.C v2 vs v1", cs, part(ws_keep, 1), part(ws_v1, 1), tol);
    compare("stats.E v2 vs v1", cs, part(ws_keep, 2), part(ws_v1, 2), tol);
    for (int rep = 0; rep < 2; ++rep) {
      Buf<T> wd(ws_keep.n);
      std::memcpy(wd.data(), ws_keep.cdata(), size_t(rows) * sizeof(T));  // D only
      AttentionParams e = p;
      e.workspace = wd.data();
      e.second = mk::attention_cotangents(e);
      const int st = mk::cuda::simt2_attention_dd_stats(e, nullptr);
      if (!wd.guards_ok()) fail(cs, "workspace guard (direct v2 stats)");
      const Buf<T> cd = part(wd, 1), ed = part(wd, 2);
      if (!applies || st == mk::KERNEL_UNSUPPORTED) {
        if (!applies && st != mk::KERNEL_UNSUPPORTED) fail(cs, "v2 dd stats runs a shape it does not apply to");
        if (applies && rep == 0) ++g_v1_fallbacks;  // its tiles do not fit this device: v1 ran in the dispatch
        for (int64_t i = 0; i < rows; ++i)
          if (!std::isnan(cd[i]) || !std::isnan(ed[i])) {
            fail(cs, "v2 dd stats wrote C or E where it answered KERNEL_UNSUPPORTED");
            break;
          }
        break;
      }
      if (st) fail(cs, "v2 dd stats status");
      if (rep == 0) ++g_v2_runs;
      if (!cd.same(part(ws_keep, 1)) || !ed.same(part(ws_keep, 2)))
        fail(cs, "v2 dd stats: not the dispatch's bits (or a rerun differs)");
    }
  }
  // the v2 passes called directly on the dispatch's workspace (D, C, E): the dispatch's bits where
  // they apply (so v2 ran), twice
  for (int pass = 0; pass < 2; ++pass)
    for (int rep = 0; rep < 2; ++rep) {
      Outs od;
      make(od, pass == 0 ? 1 | 8 | 16 : 2 | 4);
      AttentionParams e = p;
      e.workspace = ws_keep.data();
      set(e, od);
      e.second = mk::attention_cotangents(e);
      const int st =
          pass == 0 ? mk::cuda::simt2_attention_dd_query(e, nullptr) : mk::cuda::simt2_attention_dd_key(e, nullptr);
      if (!applies) {
        if (st != mk::KERNEL_UNSUPPORTED) fail(cs, "v2 dd pass runs a shape it does not apply to");
        break;
      }
      if (st == mk::KERNEL_UNSUPPORTED) {  // its tiles do not fit this device: v1 ran in the dispatch
        ++g_v1_fallbacks;
        break;
      }
      if (st) fail(cs, "v2 dd pass status");
      if (rep == 0) ++g_v2_runs;
      if (pass == 0 && (!od.q.same(o1.q) || !od.dout.same(o1.dout) || (has_bias && !od.bias.same(o1.bias))))
        fail(cs, "v2 dd query pass: not the dispatch's bits (or a rerun differs)");
      if (pass == 1 && (!od.k.same(o1.k) || !od.v.same(o1.v)))
        fail(cs, "v2 dd key pass: not the dispatch's bits (or a rerun differs)");
      for (const Buf<T>* b : {&od.q, &od.k, &od.v, &od.dout, &od.bias})
        if (!b->guards_ok()) fail(cs, "guard overwritten (direct v2 pass)");
    }
  // partial requests through the dispatch: the same bits, the outputs not asked for untouched
  for (unsigned mask : {1u, 8u, 16u, 1u | 2u, 8u | 4u, 16u | 8u}) {
    Outs op;
    if (run(mask, op, nullptr)) fail(cs, "attention_backward_backward status (partial request)");
    const Buf<T>* got[5] = {&op.q, &op.k, &op.v, &op.dout, &op.bias};
    const Buf<T>* full[5] = {&o1.q, &o1.k, &o1.v, &o1.dout, &o1.bias};
    for (int i = 0; i < 5; ++i) {
      const Buf<T>& b = *got[i];
      if (mask & (1u << i)) {
        if (b.present && !b.same(*full[i])) {
          char what[96];
          snprintf(what, sizeof what, "partial request %u: output %d not the same bits", mask, i);
          fail(cs, what);
        }
      }
      if (!b.guards_ok()) fail(cs, "guard overwritten (partial request)");
      if (!(mask & (1u << i)))
        for (int64_t at = 0; at < b.n; ++at)
          if (!std::isnan(b[at])) {
            fail(cs, "an output not asked for was written");
            break;
          }
    }
  }
  for (auto* b : {&q, &k, &v, &bias, &out, &lse, &dout, &gq, &gk, &gv, &gb})
    if (b->present && !b->guards_ok()) fail(cs, "input guard");
}

int main(int argc, char** argv) {
  int order = 0, limits = 0;
  emu_setup(argc, argv, order, limits);
  std::vector<Case> cases = {
      {1, 1, 1, 5, 5, 16, 16, false, "none", {}, 7},
      {2, 2, 2, 33, 70, 64, 64, true, "none", {}, 7},           // causal, Nk > Nq (bottom-right)
      {1, 2, 1, 70, 40, 16, 64, true, "11", {}, 15},            // causal Nq > Nk: rows that see no key; GQA
      {1, 2, 1, 100, 100, 128, 128, true, "11", {}, 15},        // D = 128, causal, bias
      {2, 3, 3, 40, 97, 96, 16, false, "BH", {97 - 3, 40}, 9},  // key lengths; gq and gbias only
      {3, 2, 2, 1, 129, 16, 16, false, "B1", {129, 0, 7}, 6},   // one row; a batch entry without keys
      {2, 4, 2, 70, 33, 64, 16, false, "BH-inf", {}, 12},       // GQA 2:1, -inf bias: rows with no key
      {1, 1, 1, 130, 70, 96, 96, true, "none", {}, 4},          // gv only
      {1, 4, 1, 19, 23, 16, 16, true, "1H-inf", {17}, 0},       // GQA 4:1, no second inputs
      {2, 2, 1, 90, 150, 64, 64, false, "none", {}, 3},         // unmasked full tiles, partial last
      {1, 1, 1, 64, 96, 128, 64, false, "none", {}, 7},         // every tile full and unmasked
      {1, 1, 1, 40, 50, 256, 128, true, "BH", {}, 15},          // D = 256 (F32 only)
      {1, 2, 1, 48, 5, 5, 3, false, "none", {}, 7},             // odd dims: v2 does not apply (v1 runs)
      {1, 2, 2, 37, 45, 16, 32, true, "none", {}, 1},           // gq only
      {2, 1, 1, 30, 41, 32, 16, false, "B1", {35, 20}, 2},      // gk only
      {1, 2, 1, 41, 29, 64, 64, false, "1H-inf", {}, 8},        // gbias only
      {1, 1, 1, 33, 65, 16, 16, true, "BH", {}, 13},            // gq, gv, gbias (no gk)
      {2, 2, 1, 33, 150, 64, 64, true, "1H", {140, 60}, 15, true},  // top-left causal: keys no row sees, lengths
      {1, 2, 2, 90, 40, 16, 16, true, "none", {}, 7, true},          // top-left causal, Nq > Nk
  };
  uint64_t seed = 8765;
  for (const Case& c : cases) {
    run_case<double>(c, seed);
    run_case<float>(c, seed);
    ++seed;
  }
  printf("order %d limits %d: %d checks, %d v2 runs, %d v1 fallbacks, %d failures, worst rel err F32 %.3g F64 %.3g\n",
         order, limits, g_checks, g_v2_runs, g_v1_fallbacks, g_failures, g_worst[0], g_worst[1]);
  return g_failures ? 1 : 0;
}
