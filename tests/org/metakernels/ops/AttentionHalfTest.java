package org.metakernels.ops;

import org.metakernels.runtime.Codes;
import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.HalfAttentionRef;

/**
 * BF16 / F16 softmax attention on the CPU. The 16-bit kernels are the F32 kernels on the rounded
 * inputs with the results rounded (bit for bit); lse is F32; the double backward and the JVP go
 * through F32 copies.
 */
class AttentionHalfTest {
  static final Device CPU = Device.CPU;

  /** Normal samples times {@code mul}, rounded to {@code t}. */
  static Tensor rnd(DType t, long seed, double mul, long... shape) {
    return Tensor.randn(shape, DType.F32, CPU, seed).mul(mul).to(t);
  }

  /** An exact F32 copy of a 16-bit tensor, as a fresh leaf (requiring grad when asked). */
  static Tensor f32(Tensor h, boolean grad) {
    if (h == null) return null;
    Tensor c = h.detach().to(DType.F32);
    return grad ? c.requiresGrad(true) : c;
  }

  /** {@code actual} (16-bit) is bit for bit {@code f32} rounded to its type. */
  static void bitwise(Tensor actual, Tensor f32, String what) {
    assertTrue(actual.dtype().isHalf(), what + ": " + actual.describe());
    assertArrayEquals(f32.shape(), actual.shape(), what);
    assertArrayEquals(f32.detach().to(actual.dtype()).toFloatArray(), actual.toFloatArray(), what);
  }

  /** max|a − ref| / max|ref|. */
  static double relToScale(Tensor a, Tensor ref) {
    double[] x = a.toDoubleArray(), r = ref.toDoubleArray();
    double err = 0, scale = 0;
    for (int i = 0; i < x.length; i++) {
      err = Math.max(err, Math.abs(x[i] - r[i]));
      scale = Math.max(scale, Math.abs(r[i]));
    }
    return err / Math.max(scale, 1e-30);
  }

  record Case(Tensor q, Tensor k, Tensor v, Tensor bias, Attention.Options o) {
    List<Tensor> inputs() {
      List<Tensor> l = new ArrayList<>(List.of(q, k, v));
      if (bias != null) l.add(bias);
      return l;
    }

    /** Exact F32 copies of the inputs (leaves requiring grad), with the same options. */
    Case toF32() {
      Tensor b = f32(bias, true);
      return new Case(f32(q, true), f32(k, true), f32(v, true), b, o.withBias(b));
    }
  }

  /**
   * bias: none, full ([B, H, Nq, Nk]) or 1H ([1, H, Nq, Nk]), with a suffix -inf some of its
   * entries -inf (HalfAttentionRef.withInfiniteEntries); it requires grad.
   */
  static Case makeCase(DType t, int b, int h, int hkv, int nq, int nk, int d, int dv, boolean causal, String bias,
      boolean lens, long seed) {
    return makeCase(t, b, h, hkv, nq, nk, d, dv, Boolean.toString(causal), bias, lens, seed);
  }

  /** causal: "false", "true" (bottom-right) or "tl" (top-left), as AttentionTest.mask. */
  static Case makeCase(DType t, int b, int h, int hkv, int nq, int nk, int d, int dv, String causal, String bias,
      boolean lens, long seed) {
    Tensor q = rnd(t, seed, 1, b, h, nq, d).requiresGrad(true);
    Tensor k = rnd(t, seed + 1, 1, b, hkv, nk, d).requiresGrad(true);
    Tensor v = rnd(t, seed + 2, 1, b, hkv, nk, dv).requiresGrad(true);
    Attention.Options o = AttentionTest.mask(causal);
    Tensor bt = null;
    if (!bias.equals("none")) {
      bt = rnd(t, seed + 3, 0.5, bias.startsWith("full") ? b : 1, h, nq, nk);
      if (bias.endsWith("-inf"))
        bt = Tensor.of(HalfAttentionRef.withInfiniteEntries(bt.toDoubleArray(), nq, nk), bt.shape()).to(t);
      bt = bt.requiresGrad(true);
      o = o.withBias(bt);
    }
    if (lens) {
      long[] lengths = new long[b];
      for (int i = 0; i < b; i++) lengths[i] = Math.max(1, nk - 7 * i - 3);
      o = o.withKeyLengths(Tensor.ofIndices(lengths, b));
    }
    return new Case(q, k, v, bt, o);
  }

  @ParameterizedTest
  @CsvSource({
      // dtype, b, h, hkv, nq, nk, d, dv, causal, bias, lengths
      "BF16, 1, 2, 2, 37, 37, 16, 16, false, none, false",
      "F16, 1, 2, 2, 37, 37, 16, 16, true, full, false",
      "BF16, 2, 4, 2, 70, 33, 64, 64, true, none, true",
      "F16, 2, 4, 2, 33, 70, 64, 64, false, full, true",
      "BF16, 2, 2, 1, 33, 70, 128, 128, true, full, true",
      "F16, 1, 2, 1, 100, 100, 128, 64, true, none, false",
      "BF16, 1, 2, 1, 65, 97, 256, 256, false, full, false",
      "F16, 2, 3, 3, 40, 97, 256, 32, true, full, true",
      "BF16, 1, 1, 1, 130, 70, 16, 16, true, full, true",
      "F16, 1, 1, 1, 130, 70, 16, 16, tl, full, true",
      "BF16, 2, 2, 1, 33, 70, 128, 128, tl, none, true",
  })
  void forwardAndBackwardAreTheF32KernelsOnRoundedInputsRounded(DType t, int b, int h, int hkv, int nq, int nk, int d,
      int dv, String causal, String bias, boolean lens) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(t, b, h, hkv, nq, nk, d, dv, causal, bias, lens, 13L * nq + nk + d);
      Case c32 = c.toF32();
      Attention.Output fh = Attention.forward(c.q, c.k, c.v, c.o);
      Attention.Output f = Attention.forward(c32.q, c32.k, c32.v, c32.o);
      assertEquals(t, fh.out().dtype());
      assertEquals(DType.F32, fh.lse().dtype(), "lse is F32 for 16-bit inputs");
      bitwise(fh.out(), f.out(), "out");
      assertArrayEquals(f.lse().toFloatArray(), fh.lse().toFloatArray(), "lse");
      for (double x : fh.out().toDoubleArray()) assertTrue(Double.isFinite(x));

      // the backward's inputs include the saved (rounded) output: the F32 kernel gets it too
      Tensor dout = rnd(t, 77, 1, b, h, nq, dv);
      List<Tensor> gh = Autograd.grad(List.of(fh.out()), c.inputs(), List.of(dout), false);
      Tensor[] g = backward32(c32, f32(fh.out(), false), fh.lse(), f32(dout, false));
      String[] names = {"dq", "dk", "dv", "dbias"};
      for (int i = 0; i < gh.size(); i++) {
        assertEquals(t, gh.get(i).dtype(), names[i]);
        bitwise(gh.get(i), g[i], names[i]);
      }
    }
  }

  /** The F32 fused backward (not recorded) for a saved output and lse: {dq, dk, dv, dbias}. */
  static Tensor[] backward32(Case c32, Tensor out, Tensor lse, Tensor dout) {
    try (var ng = Autograd.noGrad()) {
      Attention.Geometry g = new Attention.Geometry("attention", c32.q, c32.k, c32.v, c32.o);
      return Attention.backward(g, c32.q, c32.k, c32.v, c32.bias, out, lse, dout);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"BF16", "F16"})
  void broadcastBiasGradientIsTheRoundedFullGradientSummedInF32(DType t) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(t, 2, 2, 1, 45, 71, 64, 64, true, "1H", true, 5);
      Tensor dout = rnd(t, 78, 1, 2, 2, 45, 64);
      Attention.Output fh = Attention.forward(c.q, c.k, c.v, c.o);
      List<Tensor> gh = Autograd.grad(List.of(fh.out()), c.inputs(), List.of(dout), false);
      // F32 reference with the bias expanded to [B, H, Nq, Nk]: its gradient is the full dS
      Tensor bFull = c.bias.detach().to(DType.F32).expand(2, 2, 45, 71).contiguous().requiresGrad(true);
      Case c32 = new Case(f32(c.q, true), f32(c.k, true), f32(c.v, true), bFull, c.o.withBias(bFull));
      Tensor[] g = backward32(c32, f32(fh.out(), false), fh.lse(), f32(dout, false));
      for (int i = 0; i < 3; i++) bitwise(gh.get(i), g[i], "gradient " + i);
      Tensor dbRef = g[3].to(t).to(DType.F32).sumTo(c.bias.shape());
      bitwise(gh.get(3), dbRef, "dbias (broadcast)");
    }
  }

  @ParameterizedTest
  @CsvSource({
      "BF16, false, full, false", "F16, true, full, true", "BF16, true, none, true", "F16, false, none, false",
  })
  void doubleBackwardIsTheF32KernelOnF32CopiesRounded(DType t, boolean causal, String bias, boolean lens) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(t, 2, 4, 2, 37, 70, 64, 32, causal, bias, lens, 3);
      Attention.Output fh;
      try (var ng = Autograd.noGrad()) {
        fh = Attention.forward(c.q, c.k, c.v, c.o);
      }
      Tensor dout = rnd(t, 41, 1, 2, 4, 37, 32).requiresGrad(true);
      Attention.Geometry gh = new Attention.Geometry("attention", c.q, c.k, c.v, c.o);
      Tensor[] d = Attention.backward(gh, c.q, c.k, c.v, c.bias, fh.out(), fh.lse(), dout);
      assertEquals("attention_backward", d[0].gradFn().name());

      Case c32 = c.toF32();
      Tensor dout32 = f32(dout, true);
      Attention.Geometry g32 = new Attention.Geometry("attention", c32.q, c32.k, c32.v, c32.o);
      Tensor[] d32 = Attention.backward(g32, c32.q, c32.k, c32.v, c32.bias, f32(fh.out(), false), fh.lse(), dout32);

      int n = c.bias == null ? 3 : 4;
      List<Tensor> outs = new ArrayList<>(), outs32 = new ArrayList<>(), cot = new ArrayList<>(), cot32 = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        outs.add(d[i]);
        outs32.add(d32[i]);
        Tensor u = rnd(t, 300 + i, 1, d[i].shape());
        cot.add(u);
        cot32.add(f32(u, false));
      }
      List<Tensor> in = new ArrayList<>(c.inputs()), in32 = new ArrayList<>(c32.inputs());
      in.add(dout);
      in32.add(dout32);
      List<Tensor> hh = Autograd.grad(outs, in, cot, false);
      List<Tensor> h32 = Autograd.grad(outs32, in32, cot32, false);
      for (int i = 0; i < hh.size(); i++) {
        assertEquals(t, hh.get(i).dtype());
        bitwise(hh.get(i), h32.get(i), "second-order gradient " + i);
      }
    }
  }

  @ParameterizedTest
  @CsvSource({"BF16, true, 1H, true", "F16, false, full, false", "F16, true, none, true"})
  void secondOrderThroughAutogradMatchesTheF32PathRounded(DType t, boolean causal, String bias, boolean lens) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(t, 2, 2, 1, 40, 53, 16, 16, causal, bias, lens, 8);
      Case c32 = c.toF32();
      Tensor r = rnd(t, 50, 1, 2, 2, 40, 16);
      Tensor out = Attention.softmax(c.q, c.k, c.v, c.o);
      // a loss that is not linear in out, so the cotangent of dout flows back through the forward
      List<Tensor> g = Autograd.grad(out.to(DType.F32).square().mul(r.to(DType.F32)).sum(), c.inputs(), true);
      Tensor out32 = Attention.softmax(c32.q, c32.k, c32.v, c32.o);
      List<Tensor> g32 = Autograd.grad(out32.square().mul(r.to(DType.F32)).sum(), c32.inputs(), true);
      Tensor probe = null, probe32 = null;
      for (int i = 0; i < g.size(); i++) {
        assertEquals(t, g.get(i).dtype());
        Tensor u = rnd(t, 400 + i, 1, g.get(i).shape()).to(DType.F32);
        Tensor p = g.get(i).to(DType.F32).mul(u).sum(), p32 = g32.get(i).mul(u).sum();
        probe = probe == null ? p : probe.add(p);
        probe32 = probe32 == null ? p32 : probe32.add(p32);
      }
      List<Tensor> hv = Autograd.grad(probe, c.inputs(), false);
      List<Tensor> hv32 = Autograd.grad(probe32, c32.inputs(), false);
      double tol = t == DType.BF16 ? 4e-2 : 6e-3;
      for (int i = 0; i < hv.size(); i++) {
        assertEquals(t, hv.get(i).dtype());
        double e1 = relToScale(g.get(i), g32.get(i).to(t)), e2 = relToScale(hv.get(i), hv32.get(i).to(t));
        assertTrue(e1 <= tol, "first order, input " + i + ": " + e1);
        assertTrue(e2 <= tol, "second order, input " + i + ": " + e2);
      }
    }
  }

  @ParameterizedTest
  @CsvSource({"BF16, false, none, false", "F16, true, full, true", "BF16, true, 1H, false"})
  void jvpGoesThroughF32(DType t, boolean causal, String bias, boolean lens) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(t, 2, 2, 2, 37, 41, 64, 16, causal, bias, lens, 21);
      Tensor tq = rnd(t, 31, 1, c.q.shape()), tk = rnd(t, 32, 1, c.k.shape()), tv = rnd(t, 33, 1, c.v.shape());
      Tensor tb = c.bias == null ? null : rnd(t, 34, 1, c.bias.shape());
      Attention.Output j = Attention.jvp(c.q, c.k, c.v, c.o, tq, tk, tv, tb);
      assertEquals(t, j.out().dtype());
      assertEquals(DType.F32, j.lse().dtype());
      Case c32 = c.toF32();
      Attention.Output j32 = Attention.jvp(c32.q, c32.k, c32.v, c32.o, f32(tq, false), f32(tk, false), f32(tv, false),
          f32(tb, false));
      double tol = t == DType.BF16 ? 2e-2 : 3e-3;
      double e = relToScale(j.out(), j32.out().to(t));
      assertTrue(e <= tol, "tangent of out: " + e);
      double[] a = j.lse().toDoubleArray(), ref = j32.lse().toDoubleArray();
      for (int i = 0; i < a.length; i++) assertEquals(ref[i], a[i], tol * (1 + Math.abs(ref[i])), "tangent of lse " + i);
    }
  }

  @ParameterizedTest
  @CsvSource({
      // dtype, b, h, hkv, nq, nk, d, causal, padding, bias
      "BF16, 2, 4, 2, 70, 133, 64, false, true, none",
      "F16, 2, 4, 2, 133, 70, 64, true, false, 1H",
      "BF16, 1, 2, 1, 100, 100, 128, true, true, full",
      "F16, 1, 2, 2, 65, 191, 128, false, false, none",
      "BF16, 2, 2, 1, 130, 200, 64, false, false, 1H-inf",
      "F16, 2, 2, 2, 70, 150, 128, true, true, full-inf",
  })
  void cpuTwinIsWithinTwiceTheNaive16BitErrorOfTheF64Reference(DType t, int b, int h, int hkv, int nq, int nk, int d,
      boolean causal, boolean padding, String bias) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(t, b, h, hkv, nq, nk, d, d, causal, bias, padding, 17L * nq + nk);
      long[] lengths = null;
      if (padding) {
        lengths = new long[b];
        for (int i = 0; i < b; i++) lengths[i] = Math.max(1, nk - 7 * i - 3);  // as makeCase
      }
      int biasB = bias.startsWith("full") ? b : 1;
      HalfAttentionRef.Shape shape = new HalfAttentionRef.Shape(b, h, hkv, nq, nk, d, causal, lengths, biasB, h);
      Tensor dout = rnd(t, 90, 1, b, h, nq, d);
      double[] qa = c.q.toDoubleArray(), ka = c.k.toDoubleArray(), va = c.v.toDoubleArray();
      double[] ba = c.bias == null ? null : c.bias.toDoubleArray(), da = dout.toDoubleArray();
      double[][] ref = HalfAttentionRef.host(shape, qa, ka, va, ba, da, x -> x);
      double[][] naive = HalfAttentionRef.host(shape, qa, ka, va, ba, da, HalfAttentionRef.rounder(t));
      Tensor out = Attention.softmax(c.q, c.k, c.v, c.o);
      List<Tensor> g = Autograd.grad(List.of(out), List.of(c.q, c.k, c.v), List.of(dout), false);
      double[][] mine = {out.toDoubleArray(), g.get(0).toDoubleArray(), g.get(1).toDoubleArray(),
          g.get(2).toDoubleArray()};
      String[] names = {"out", "dq", "dk", "dv"};
      for (int i = 0; i < 4; i++) {
        double e = HalfAttentionRef.err(mine[i], ref[i]), en = HalfAttentionRef.err(naive[i], ref[i]);
        assertTrue(e <= 2 * en + 1e-6, names[i] + ": error " + e + " vs naive " + en);
        assertTrue(en > 0, names[i] + ": the naive composition should be inexact");
      }
    }
  }

  @Test
  void rejectsMixedDtypesAndBadInputWithoutChangingAnything() {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(DType.BF16, 1, 1, 2, 4, 5, 8), k = rnd(DType.BF16, 2, 1, 2, 2, 6, 8);
      Tensor v = rnd(DType.BF16, 3, 1, 2, 2, 6, 8);
      float[] before = q.toFloatArray();
      var e = assertThrows(MetakernelsException.class, () -> Attention.softmax(q, k.to(DType.F16), v));
      for (String part : new String[] {"attention", "BF16[2, 4, 5, 8]", "F16[2, 2, 6, 8]", "dtype"})
        assertTrue(e.getMessage().contains(part), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Attention.softmax(q, k, v.to(DType.F32)));
      assertTrue(e.getMessage().contains("F32[2, 2, 6, 8]"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Attention.softmax(q, k, v,
          Attention.Options.defaults().withBias(Tensor.zeros(new long[] {2, 4, 5, 6}, DType.F32, CPU))));
      assertTrue(e.getMessage().contains("bias F32[2, 4, 5, 6]") && e.getMessage().contains("attention"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Attention.softmax(q.to(DType.I64), k.to(DType.I64),
          v.to(DType.I64)));
      assertTrue(e.getMessage().contains("I64[2, 4, 5, 8]"), e.getMessage());
      AttentionTest.assertMessage(() -> Attention.softmax(q, rnd(DType.BF16, 4, 1, 2, 3, 6, 8),
          rnd(DType.BF16, 5, 1, 2, 3, 6, 8)), "3 key/value heads");
      AttentionTest.assertMessage(() -> Attention.softmax(rnd(DType.F16, 6, 1, 1, 1, 2, 300),
          rnd(DType.F16, 7, 1, 1, 1, 2, 300), rnd(DType.F16, 8, 1, 1, 1, 2, 300)), "[1, 256]");
      AttentionTest.assertMessage(() -> Attention.softmax(q, k, v, Attention.Options.defaults()
          .withKeyLengths(Tensor.ofIndices(new long[] {3, 7}, 2))), "key length 7");
      AttentionTest.assertMessage(() -> Attention.jvp(q, k, v, Attention.Options.defaults(), q.to(DType.F32), null,
          null, null), "tq");
      assertArrayEquals(before, q.toFloatArray());
      Tensor closed = rnd(DType.BF16, 10, 1, 2, 4, 5, 8);
      closed.close();
      assertThrows(IllegalStateException.class, () -> Attention.softmax(closed, k, v));
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"BF16", "F16"})
  void nativeDoubleBackwardAndJvpTake16BitTypes(DType t) {
    // the 16-bit double backward and JVP widen in native (mk_attention_softmax_*: the F32 kernels
    // on F32 copies, results rounded back; doubleBackwardIsTheF32KernelOnF32CopiesRounded and
    // jvpGoesThroughF32 check the values): the dtype passes, then the block is validated
    Native.ensureLoaded();
    int cpu = Device.CPU.code;
    MkNative.mk_attention_params p = new MkNative.mk_attention_params().batch(1).heads(1).kv_heads(1).nq(4).nk(4).d(8)
        .dv(8).scale(1.0);
    long ws = MkNative.mk_attention_softmax_workspace(cpu, t.code, p);
    assertTrue(ws >= 0, "workspace " + ws);
    int st = MkNative.mk_attention_softmax_backward_backward(cpu, t.code, p, 0, 0, 0);
    assertEquals(Codes.ERR_INVALID_ARGUMENT, st);
    String msg = Native.lastError();
    assertTrue(msg.contains("mk_attention_softmax_backward_backward") && msg.contains("q"), msg);
    st = MkNative.mk_attention_softmax_jvp(cpu, t.code, p, 0, 0, 0);
    assertEquals(Codes.ERR_INVALID_ARGUMENT, st);
    assertTrue(Native.lastError().contains("mk_attention_softmax_jvp"), Native.lastError());
    // I64 is still refused by the forward
    st = MkNative.mk_attention_softmax_forward(cpu, DType.I64.code, p, 0, 0, 0);
    assertEquals(Codes.ERR_UNSUPPORTED, st);
    // a null parameter block is refused, not read
    st = MkNative.mk_attention_softmax_forward(cpu, DType.F32.code, null, 0, 0, 0);
    assertEquals(Codes.ERR_INVALID_ARGUMENT, st);
    assertTrue(Native.lastError().contains("parameter block is null"), Native.lastError());
    p.close();
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"BF16", "F16"})
  void halfTensorsAreCreatedReadCastAndDifferentiated(DType t) {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {3, 5}, t, CPU, 9);
      assertEquals(t, x.dtype());
      assertArrayEquals(Tensor.randn(new long[] {3, 5}, DType.F32, CPU, 9).to(t).toFloatArray(), x.toFloatArray());
      assertTrue(x.toString().startsWith("Tensor(" + t), x.toString());
      assertArrayEquals(new float[] {0f, 0f, 0f, 0f}, Tensor.zeros(new long[] {4}, t, CPU).toFloatArray());
      Tensor w = Tensor.of(new float[] {1.5f, -2f, 0.25f}, 3).to(t).requiresGrad(true);
      // two uses of w: the 16-bit gradients are summed (in F32)
      Tensor loss = w.to(DType.F32).square().sum().add(w.to(DType.F32).mul(3.0).sum());
      Tensor g = Autograd.grad(loss, List.of(w), true).get(0);
      assertEquals(t, g.dtype());
      assertArrayEquals(new float[] {6f, -1f, 3.5f}, g.toFloatArray());
      Tensor hvp = Autograd.grad(g.to(DType.F32).sum(), List.of(w), false).get(0);
      assertArrayEquals(new float[] {2f, 2f, 2f}, hvp.toFloatArray());
      loss.backward();
      loss.backward();
      assertArrayEquals(new float[] {12f, -2f, 7f}, w.grad().toFloatArray());
      assertEquals(t, w.grad().dtype());
    }
  }
}
