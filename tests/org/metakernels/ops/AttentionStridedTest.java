package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradCheck;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Softmax attention on strided operands (ABI 16, and 17 for the second-order passes): on the CPU in
 * F32 and F64 every pass (forward, backward, double backward, JVP) reads its operands and writes
 * its results through their (batch, head, row) strides, so head views of [B, N, H, D] projections,
 * row windows and keys shared across heads cost no copies; the bits are those of contiguous copies.
 */
class AttentionStridedTest {
  static final Device CPU = Device.CPU;

  /** [B, H, N, D] values held in memory as [B, N, H, D] (a head view of a projection). */
  static Tensor headView(Tensor bhnd) {
    return bhnd.permute(0, 2, 1, 3).copyContiguous().permute(0, 2, 1, 3);
  }

  static void assertSameBits(Tensor expected, Tensor actual, String what) {
    assertArrayEquals(expected.shape(), actual.shape(), what);
    if (expected.dtype() == DType.F32) assertArrayEquals(expected.toFloatArray(), actual.toFloatArray(), what);
    else assertArrayEquals(expected.toDoubleArray(), actual.toDoubleArray(), what);
  }

  /**
   * Forward (out, lse) and backward (dq, dk, dv, dbias) through head views equal those of
   * contiguous copies bit for bit, with the output laid out as q's heads (merging them back is a
   * view); F32 and F64, causal or not, grouped-query, a broadcast bias, key lengths.
   */
  @ParameterizedTest
  @CsvSource({"F32, false, 4, 4, false, false", "F32, true, 4, 2, true, false", "F64, false, 6, 3, false, true",
      "F64, true, 2, 1, true, true", "F32, true, 8, 8, true, true"})
  void headViewsGiveTheBitsOfContiguousCopies(DType t, boolean causal, int h, int hkv, boolean bias, boolean lengths) {
    try (Scope s = Scope.open()) {
      int b = 2, nq = 70, nk = 90, d = 24, dv = 16;
      Tensor q0 = Tensor.randn(new long[] {b, h, nq, d}, t, CPU, 1), k0 = Tensor.randn(new long[] {b, hkv, nk, d}, t, CPU, 2);
      Tensor v0 = Tensor.randn(new long[] {b, hkv, nk, dv}, t, CPU, 3);
      Tensor w = Tensor.randn(new long[] {b, h, nq, dv}, t, CPU, 4);
      Tensor bias0 = bias ? Tensor.randn(new long[] {1, h, nq, nk}, t, CPU, 5).requiresGrad(true) : null;
      Attention.Options o = Attention.Options.defaults().withCausal(causal).withBias(bias0)
          .withKeyLengths(lengths ? Tensor.ofIndices(new long[] {nk, 41}, b) : null);
      Tensor qv = headView(q0).requiresGrad(true), kv = headView(k0).requiresGrad(true), vv = headView(v0).requiresGrad(true);
      Tensor qc = q0.requiresGrad(true), kc = k0.requiresGrad(true), vc = v0.requiresGrad(true);
      assertFalse(qv.isContiguous());

      Attention.Output rv = Attention.forward(qv, kv, vv, o), rc = Attention.forward(qc, kc, vc, o);
      assertSameBits(rc.out(), rv.out(), "out");
      assertSameBits(rc.lse(), rv.lse(), "lse");
      assertTrue(rv.out().permute(0, 2, 1, 3).isContiguous(), "the output is laid out as q's heads");

      List<Tensor> wrtV = new ArrayList<>(List.of(qv, kv, vv)), wrtC = new ArrayList<>(List.of(qc, kc, vc));
      if (bias) {
        wrtV.add(bias0);
        wrtC.add(bias0);
      }
      // dout through a head view too: the gradient of sum(out * w) with w a head view
      Tensor wv = headView(w);
      List<Tensor> gv = Autograd.grad(rv.out().mul(wv).sum(), wrtV, false);
      List<Tensor> gc = Autograd.grad(rc.out().mul(w).sum(), wrtC, false);
      String[] names = {"dq", "dk", "dv", "dbias"};
      for (int i = 0; i < gv.size(); i++) assertSameBits(gc.get(i), gv.get(i), names[i]);
    }
  }

  /**
   * Row windows (a narrowed query and key sequence), k and v shared across heads (stride 0) and
   * a v with transposed columns (not unit-stride: copied) give the bits of contiguous copies,
   * forward and backward.
   */
  @Test
  void windowsSharedKeysAndTransposedColumns() {
    try (Scope s = Scope.open()) {
      int b = 2, h = 3, nq = 33, nk = 50, d = 16, dv = 8;
      Tensor qBig = Tensor.randn(new long[] {b, h, nq + 9, d}, DType.F64, CPU, 11);
      Tensor k1 = Tensor.randn(new long[] {b, 1, nk, d}, DType.F64, CPU, 12);
      Tensor vT = Tensor.randn(new long[] {b, h, dv, nk}, DType.F64, CPU, 13);
      Tensor qw = qBig.narrow(2, 4, nq).requiresGrad(true);
      Tensor k1l = k1.requiresGrad(true);
      Tensor vTl = vT.requiresGrad(true);
      Tensor ke = k1l.expand(b, h, nk, d), vt = vTl.transpose(2, 3);
      Tensor out = Attention.softmax(qw, ke, vt, Attention.Options.causal());
      Tensor qc = qw.detach().copyContiguous().requiresGrad(true), kc = k1.copyContiguous().requiresGrad(true);
      Tensor vc = vT.transpose(2, 3).copyContiguous().requiresGrad(true);
      Tensor ref = Attention.softmax(qc, kc.expand(b, h, nk, d).contiguous(), vc, Attention.Options.causal());
      assertSameBits(ref, out, "out");
      List<Tensor> g = Autograd.grad(out.square().sum(), List.of(qw, k1l, vTl), false);
      List<Tensor> gr = Autograd.grad(ref.square().sum(), List.of(qc, kc, vc), false);
      assertSameBits(gr.get(0), g.get(0), "dq");
      assertSameBits(gr.get(1), g.get(1), "dk (summed over the heads)");
      assertSameBits(gr.get(2).transpose(2, 3).copyContiguous(), g.get(2).copyContiguous(), "dv");
    }
  }

  /**
   * A q with one column (D = 1) permuted so that its size-1 last dim sorts outermost: the output
   * (Dv = 4) must still get unit-stride columns (the fuzz case 1115 of seed 20261205, where it did
   * not and native refused the out strides), and the bits stay those of contiguous copies.
   */
  @Test
  void oneColumnQueriesPermutedGiveAnOutputWithUnitStrideColumns() {
    try (Scope s = Scope.open()) {
      Tensor q = Tensor.randn(new long[] {1, 4, 3, 3}, DType.F32, CPU, 41).permute(2, 1, 3, 0).requiresGrad(true);
      Tensor k = Tensor.randn(new long[] {3, 1, 5, 1}, DType.F32, CPU, 42).requiresGrad(true);
      Tensor v = Tensor.randn(new long[] {5, 3, 1, 4}, DType.F32, CPU, 43).permute(1, 2, 0, 3).requiresGrad(true);
      assertArrayEquals(new long[] {3, 4, 3, 1}, q.shape());
      Tensor out = Attention.softmax(q, k, v);
      assertEquals(1, out.strides()[3], "unit-stride output columns");
      Tensor qc = q.detach().copyContiguous().requiresGrad(true), vc = v.detach().copyContiguous().requiresGrad(true);
      Tensor ref = Attention.softmax(qc, k, vc);
      assertSameBits(ref, out, "out");
      List<Tensor> g = Autograd.grad(out.square().sum(), List.of(q, k, v), false);
      List<Tensor> gr = Autograd.grad(ref.square().sum(), List.of(qc, k, vc), false);
      for (int i = 0; i < 3; i++) assertSameBits(gr.get(i), g.get(i), "gradient " + i);
    }
  }

  /** Second order through head views (the double backward takes contiguous copies). */
  /**
   * The double backward (a Hessian-vector product through the fused backward) and the JVP through
   * head views give the bits of contiguous copies: q, k, v, dout, the cotangents of the gradients
   * and the tangents all head views; the output tangent is laid out as out (q's heads).
   */
  @ParameterizedTest
  @CsvSource({"F32, false, 4, 4, false, false", "F64, true, 4, 2, true, true", "F32, true, 2, 1, true, true"})
  void secondOrderThroughHeadViewsGivesTheBitsOfContiguousCopies(DType t, boolean causal, int h, int hkv, boolean bias,
      boolean lengths) {
    try (Scope s = Scope.open()) {
      int b = 2, nq = 70, nk = 90, d = 24, dv = 16;
      Tensor q0 = Tensor.randn(new long[] {b, h, nq, d}, t, CPU, 11), k0 = Tensor.randn(new long[] {b, hkv, nk, d}, t, CPU, 12);
      Tensor v0 = Tensor.randn(new long[] {b, hkv, nk, dv}, t, CPU, 13);
      Tensor w = Tensor.randn(new long[] {b, h, nq, dv}, t, CPU, 14);
      Tensor[] u = {Tensor.randn(q0.shape(), t, CPU, 15), Tensor.randn(k0.shape(), t, CPU, 16),
          Tensor.randn(v0.shape(), t, CPU, 17)};
      Tensor bias0 = bias ? Tensor.randn(new long[] {1, h, nq, nk}, t, CPU, 18).requiresGrad(true) : null;
      Attention.Options o = Attention.Options.defaults().withCausal(causal).withBias(bias0)
          .withKeyLengths(lengths ? Tensor.ofIndices(new long[] {nk, 41}, b) : null);
      Tensor qv = headView(q0).requiresGrad(true), kv = headView(k0).requiresGrad(true), vv = headView(v0).requiresGrad(true);
      Tensor qc = q0.requiresGrad(true), kc = k0.requiresGrad(true), vc = v0.requiresGrad(true);
      List<Tensor> wrtV = new ArrayList<>(List.of(qv, kv, vv)), wrtC = new ArrayList<>(List.of(qc, kc, vc));
      if (bias) {
        wrtV.add(bias0);
        wrtC.add(bias0);
      }
      // first order with createGraph, then Σ ⟨g_x, u_x⟩ differentiated: the cotangents of dq, dk, dv
      // reach the double backward as the u's (head views in the strided run)
      List<Tensor> gv = Autograd.grad(Attention.softmax(qv, kv, vv, o).mul(headView(w)).sum(), wrtV, true);
      List<Tensor> gc = Autograd.grad(Attention.softmax(qc, kc, vc, o).mul(w).sum(), wrtC, true);
      Tensor hv = null, hc = null;
      for (int i = 0; i < 3; i++) {
        Tensor a = gv.get(i).mul(headView(u[i])).sum(), c = gc.get(i).mul(u[i]).sum();
        hv = hv == null ? a : hv.add(a);
        hc = hc == null ? c : hc.add(c);
      }
      List<Tensor> sv = Autograd.grad(hv, wrtV, false), sc = Autograd.grad(hc, wrtC, false);
      String[] names = {"q'", "k'", "v'", "bias'"};
      for (int i = 0; i < sv.size(); i++) assertSameBits(sc.get(i), sv.get(i), names[i]);

      // JVP: tangents as head views
      Attention.Output jv = Attention.jvp(qv.detach(), kv.detach(), vv.detach(), o.withBias(bias ? bias0.detach() : null),
          headView(u[0]), headView(u[1]), headView(u[2]), null);
      Attention.Output jc = Attention.jvp(q0, k0, v0, o.withBias(bias ? bias0.detach() : null), u[0], u[1], u[2], null);
      assertSameBits(jc.out(), jv.out(), "tangent of out");
      assertSameBits(jc.lse(), jv.lse(), "tangent of lse");
      assertTrue(jv.out().permute(0, 2, 1, 3).isContiguous(), "the output tangent is laid out as out (q's heads)");
    }
  }

  @Test
  void gradCheckOrderTwoThroughHeadViews() {
    try (Scope s = Scope.open()) {
      Tensor qp = Tensor.randn(new long[] {1, 5, 2, 3}, DType.F64, CPU, 21);
      Tensor kp = Tensor.randn(new long[] {1, 6, 1, 3}, DType.F64, CPU, 22);
      Tensor vp = Tensor.randn(new long[] {1, 6, 1, 2}, DType.F64, CPU, 23);
      Tensor bias = Tensor.randn(new long[] {1, 2, 5, 6}, DType.F64, CPU, 24);
      GradCheck.check(xs -> Attention.softmax(xs.get(0).permute(0, 2, 1, 3), xs.get(1).permute(0, 2, 1, 3),
          xs.get(2).permute(0, 2, 1, 3), Attention.Options.causal().withBias(xs.get(3))), List.of(qp, kp, vp, bias), 2);
    }
  }

  /**
   * The double backward of one graph run twice, each time in a scope of its own: the contiguous
   * copies the second-order pass makes of head views belong to each call, so the second run gets
   * the bits of the first (a copy kept from the first call's closed scope would be refused).
   */
  @Test
  void doubleBackwardRunsTwiceOnTheSameGraph() {
    try (Scope s = Scope.open()) {
      Tensor qv = headView(Tensor.randn(new long[] {2, 2, 20, 8}, DType.F64, CPU, 51)).requiresGrad(true);
      Tensor kv = headView(Tensor.randn(new long[] {2, 2, 30, 8}, DType.F64, CPU, 52)).requiresGrad(true);
      Tensor vv = headView(Tensor.randn(new long[] {2, 2, 30, 4}, DType.F64, CPU, 53)).requiresGrad(true);
      Tensor out = Attention.softmax(qv, kv, vv, Attention.Options.causal());
      Tensor dq = Autograd.grad(out.square().sum(), List.of(qv), true).get(0);
      double[][] hk = new double[2][];
      for (int i = 0; i < 2; i++)
        try (Scope inner = Scope.open()) {
          hk[i] = Autograd.grad(dq.square().sum(), List.of(kv), true).get(0).toDoubleArray();
        }
      assertArrayEquals(hk[0], hk[1]);
    }
  }

  /** A forward block on [2, 2, 8, 4] F32 operands with a caller-sized workspace. */
  static final class Call implements AutoCloseable {
    final int b = 2, h = 2, n = 8, d = 4;
    final Tensor q = Tensor.randn(new long[] {b, h, n, d}, DType.F32, CPU, 31);
    final Tensor k = Tensor.randn(new long[] {b, h, n, d}, DType.F32, CPU, 32);
    final Tensor v = Tensor.randn(new long[] {b, h, n, d}, DType.F32, CPU, 33);
    final Tensor out = Tensor.full(new long[] {b, h, n, d}, 7.0, DType.F32, CPU);
    final Tensor lse = Tensor.full(new long[] {b, h, n}, 7.0, DType.F32, CPU);
    final MkNative.mk_attention_params p = new MkNative.mk_attention_params().batch(b).heads(h).kv_heads(h).nq(n).nk(n)
        .d(d).dv(d).q(q.address("t")).k(k.address("t")).v(v.address("t")).scale(0.5).out(out.address("t"))
        .lse(lse.address("t"));
    final long wsBytes = MkNative.mk_attention_softmax_workspace(CPU.code, DType.F32.code, p);
    final long wsHalf = MkNative.mk_attention_softmax_workspace(CPU.code, DType.BF16.code, p);
    final Tensor ws = Tensor.zeros(new long[] {(Math.max(wsBytes, wsHalf) + 7) / 8 + 1}, DType.F64, CPU);

    int forward(int dtype) {
      return MkNative.mk_attention_softmax_forward(CPU.code, dtype, p, ws.address("t"), wsBytes, 0);
    }

    void refused(int st, int code, String... words) {
      assertEquals(code, st);
      String msg = Native.lastError();
      for (String w : words) assertTrue(msg.contains(w), msg);
      for (float x : out.toFloatArray()) assertEquals(7.0f, x, "nothing written");
    }

    @Override
    public void close() {
      p.close();
    }
  }

  /**
   * The strided ABI refuses negative strides, an output whose strides write an element twice, an
   * output sharing memory with an input, strides on 16-bit calls, and the strides of another pass's
   * operands (the backward's given to the forward, the jvp's to the double backward, ...): each
   * naming the entry point, nothing written.
   */
  @Test
  void stridedAbiRefusesAndWritesNothing() {
    try (Scope s = Scope.open(); Call c = new Call()) {
      c.p.q_strides(0, 64).q_strides(1, -4).q_strides(2, 8);
      c.refused(c.forward(DType.F32.code), Codes.ERR_INVALID_ARGUMENT, "mk_attention_softmax_forward", "q strides",
          "negative");
      c.p.q_strides(1, 4);  // q as [B, N, H, D]: fine
      c.p.out_strides(0, 0).out_strides(1, 4).out_strides(2, 8);  // both batch entries on one place
      c.refused(c.forward(DType.F32.code), Codes.ERR_INVALID_ARGUMENT, "mk_attention_softmax_forward", "out strides",
          "twice");
      c.p.out(c.k.address("t")).out_strides(0, 64);
      c.refused(c.forward(DType.F32.code), Codes.ERR_INVALID_ARGUMENT, "mk_attention_softmax_forward", "out overlaps k");
      c.p.out(c.out.address("t")).dout_strides(2, 4);
      c.refused(c.forward(DType.F32.code), Codes.ERR_INVALID_ARGUMENT, "mk_attention_softmax_forward", "dout");
      c.p.dout_strides(2, 0);
      c.refused(MkNative.mk_attention_softmax_forward(CPU.code, DType.BF16.code, c.p, c.ws.address("t"), c.wsHalf, 0),
          Codes.ERR_UNSUPPORTED, "mk_attention_softmax_forward", "F32 and F64 only");
      c.p.dout(c.lse.address("t")).cot_q(c.out.address("t")).tan_q_strides(2, 4);
      c.refused(MkNative.mk_attention_softmax_backward_backward(CPU.code, DType.F32.code, c.p, c.ws.address("t"),
          c.wsBytes, 0), Codes.ERR_INVALID_ARGUMENT, "mk_attention_softmax_backward_backward", "tan_q", "another pass");
      c.p.tan_q_strides(2, 0).cot_q_strides(0, 64).cot_q_strides(1, 4).cot_q_strides(2, 8).cot_q(c.q.address("t"));
      c.refused(MkNative.mk_attention_softmax_backward_backward(CPU.code, DType.F32.code, c.p, c.ws.address("t"),
          c.wsBytes, 0), Codes.ERR_INVALID_ARGUMENT, "mk_attention_softmax_backward_backward", "cot_q overlaps q");
      c.refused(MkNative.mk_attention_softmax_jvp(CPU.code, DType.F32.code, c.p.cot_q(0).tan_out(c.out.address("t")),
          c.ws.address("t"), c.wsBytes, 0), Codes.ERR_INVALID_ARGUMENT, "mk_attention_softmax_jvp", "cot_q", "another pass");
      // the same block, q's strides and out's [B, N, H, D] layout, runs and gives the bits of the view
      c.p.dout(0).tan_out(0).cot_q_strides(0, 0).cot_q_strides(1, 0).cot_q_strides(2, 0);
      assertEquals(0, c.forward(DType.F32.code), Native.lastError());
      Tensor qView = Views.viewRaw(c.q, new long[] {2, 2, 8, 4}, new long[] {64, 4, 8, 1}, c.q.offset());
      Tensor outView = Views.viewRaw(c.out, new long[] {2, 2, 8, 4}, new long[] {64, 4, 8, 1}, c.out.offset());
      Tensor ref = Attention.softmax(qView.copyContiguous(), c.k, c.v, Attention.Options.defaults().withScale(0.5));
      assertSameBits(ref, outView.copyContiguous(), "strided out");
    }
  }

  /** The backward refuses gradients that share memory, naming both; nothing written. */
  @Test
  void backwardRefusesOverlappingGradients() {
    try (Scope s = Scope.open(); Call c = new Call()) {
      assertEquals(0, c.forward(DType.F32.code), Native.lastError());
      Tensor dout = Tensor.randn(new long[] {2, 2, 8, 4}, DType.F32, CPU, 34);
      Tensor dq = Tensor.full(new long[] {2, 2, 8, 4}, 7.0, DType.F32, CPU);
      Tensor dk = Tensor.full(new long[] {2, 2, 8, 4}, 7.0, DType.F32, CPU);
      c.p.dout(dout.address("t")).grad_q(dq.address("t")).grad_k(dq.address("t") + 4 * 4).grad_v(dk.address("t"));
      c.p.grad_q_strides(0, 64).grad_q_strides(1, 4).grad_q_strides(2, 8);
      int st = MkNative.mk_attention_softmax_backward(CPU.code, DType.F32.code, c.p, c.ws.address("t"), c.wsBytes, 0);
      assertEquals(Codes.ERR_INVALID_ARGUMENT, st);
      String msg = Native.lastError();
      assertTrue(msg.contains("mk_attention_softmax_backward") && msg.contains("grad_q overlaps grad_k"), msg);
      for (float x : dq.toFloatArray()) assertEquals(7.0f, x, "nothing written");
      for (float x : dk.toFloatArray()) assertEquals(7.0f, x, "nothing written");
    }
  }
}
