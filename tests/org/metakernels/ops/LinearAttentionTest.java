package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.metakernels.autograd.GradCheck;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.ops.LinearAttention.Mask;
import org.metakernels.ops.LinearAttention.Normalization;
import org.metakernels.ops.LinearAttention.Options;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.HalfLinearAttentionRef;
import org.metakernels.testing.Ref;

class LinearAttentionTest {
  static final Device CPU = Device.CPU;

  static Tensor rnd(long seed, long... shape) {
    return Tensor.randn(shape, DType.F64, CPU, seed);
  }

  /** Composed reference: (mask ∘ φ(Q) φ(K)ᵀ) V with an explicit N×N matrix, then normalization. */
  static Tensor reference(Tensor q, Tensor k, Tensor v, Options o) {
    Tensor fq = o.featureMap().apply(q), fk = o.featureMap().apply(k);
    Tensor scores = fq.matmul(fk.mT());  // [..., Nq, Nk]
    long nq = q.size(-2), nk = k.size(-2);
    Tensor mask = null;
    if (o.causal()) {
      double[] m = new double[(int) (nq * nk)];
      for (int j = 0; j < nq; j++) for (int i = 0; i < nk; i++) m[(int) (j * nk + i)] = i <= j ? 1 : 0;
      mask = Tensor.of(m, nq, nk);
      scores = scores.mul(mask);
    }
    Tensor out = scores.matmul(v);
    switch (o.normalization()) {
      case NONE -> { }
      case BY_LENGTH -> {
        Tensor ones = Tensor.ones(new long[] {nq, nk}, DType.F64, CPU);
        Tensor cnt = (mask == null ? ones : mask).sum(-1, true);
        out = out.div(cnt);
      }
      case NORMALIZER -> out = out.div(scores.sum(-1, true).clampMin(o.eps()));
    }
    if (o.momentum() != 0) {
      double[] m = new double[(int) (nq * nk)];
      for (int j = 0; j < nq; j++) for (int i = 0; i < j; i++) m[(int) (j * nk + i)] = Math.pow(o.momentum(), j - i);
      out = out.add(Tensor.of(m, nq, nk).matmul(v));
    }
    return out;
  }

  @ParameterizedTest
  @CsvSource({
      "IDENTITY, false, NONE, 0.0, 5, 5",
      "IDENTITY, false, NONE, 0.0, 7, 3",
      "IDENTITY, true, NONE, 0.0, 70, 70",
      "IDENTITY, true, NONE, 0.0, 130, 130",
      "ELU_PLUS_ONE, true, NORMALIZER, 0.0, 67, 67",
      "ELU_PLUS_ONE, false, NORMALIZER, 0.0, 9, 11",
      "RELU, false, BY_LENGTH, 0.0, 6, 6",
      "RELU, true, BY_LENGTH, 0.0, 65, 65",
      "IDENTITY, true, NONE, 0.7, 66, 66",
  })
  void forwardMatchesComposedReference(FeatureMap fm, boolean causal, Normalization norm, double mom, int nq, int nk) {
    try (Scope s = Scope.open()) {
      Options o = Options.of(fm, causal).withNormalization(norm).withMomentum(mom);
      Tensor q = rnd(1, 2, 3, nq, 16), k = rnd(2, 2, 3, nk, 16), v = rnd(3, 2, 3, nk, 8);
      Tensor out = LinearAttention.apply(q, k, v, o);
      assertArrayEquals(new long[] {2, 3, nq, 8}, out.shape());
      Ref.assertClose(out, reference(q, k, v, o), 1e-10, 1e-10);
      // F32 agrees with the F64 reference to float rounding
      Tensor out32 = LinearAttention.apply(q.to(DType.F32), k.to(DType.F32), v.to(DType.F32), o);
      Ref.assertClose(out32, reference(q, k, v, o), 2e-3, 2e-3);
    }
  }

  @ParameterizedTest
  @CsvSource({"NONE, 6, 4", "CAUSAL, 70, 70", "ANTI_CAUSAL, 70, 70"})
  void productGradCheckOrder2(Mask mask, int nq, int nk) {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(4, 2, nq, 5), k = rnd(5, 2, nk, 5), v = rnd(6, 2, nk, 3);
      GradCheck.check(xs -> LinearAttention.product(xs.get(0), xs.get(1), xs.get(2), mask).tanh(),
          List.of(q, k, v), 2);
    }
  }

  @ParameterizedTest
  @CsvSource({"ELU_PLUS_ONE, true, NORMALIZER, 0.0", "RELU, false, BY_LENGTH, 0.0", "IDENTITY, true, NONE, 0.5"})
  void applyGradCheckOrder2(FeatureMap fm, boolean causal, Normalization norm, double mom) {
    try (Scope s = Scope.open()) {
      Options o = Options.of(fm, causal).withNormalization(norm).withMomentum(mom);
      Tensor q = rnd(7, 1, 2, 9, 4), k = rnd(8, 1, 2, 9, 4), v = rnd(9, 1, 2, 9, 3);
      GradCheck.check(xs -> LinearAttention.apply(xs.get(0), xs.get(1), xs.get(2), o), List.of(q, k, v), 2);
    }
  }

  @Test
  void rejectsBadShapes() {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(1, 2, 5, 4), k = rnd(2, 2, 6, 4), v = rnd(3, 2, 6, 3);
      var e = assertThrows(MetakernelsException.class, () -> LinearAttention.apply(q, k, v, FeatureMap.IDENTITY, true));
      assertTrue(e.getMessage().contains("linearAttention") && e.getMessage().contains("[2, 5, 4]"), e.getMessage());
      assertThrows(MetakernelsException.class, () -> LinearAttention.apply(q, rnd(4, 2, 6, 5), v, FeatureMap.IDENTITY, false));
      assertThrows(MetakernelsException.class, () -> LinearAttention.apply(q, k, rnd(5, 2, 7, 3), FeatureMap.IDENTITY, false));
      assertThrows(MetakernelsException.class, () -> LinearAttention.apply(q.to(DType.F32), k, v, FeatureMap.IDENTITY, false));
      Tensor closed = rnd(6, 2, 5, 4);
      closed.close();
      assertThrows(IllegalStateException.class, () -> LinearAttention.apply(closed, k, v, FeatureMap.IDENTITY, false));
    }
  }

  /**
   * The workspace protocol of metakernels.h: the product's CPU kernel takes its scratch from the
   * caller, sized by mk_linear_attention_product_workspace, and refuses less (guards the check in
   * native/src/linear_attention.cpp; before the protocol it used a hidden thread_local buffer).
   */
  @Test
  void productTakesACallerWorkspaceAndRefusesATooSmallOne() {
    try (Scope s = Scope.open()) {
      int cpu = Device.CPU.code, f64 = DType.F64.code;
      long need = org.metakernels.runtime.MkNative.mk_linear_attention_product_workspace(cpu, f64, 8, 4);
      assertTrue(need > 0, "the CPU kernel needs scratch, got " + need);
      assertEquals(-1, org.metakernels.runtime.MkNative.mk_linear_attention_product_workspace(cpu, f64, 0, 4));
      Tensor q = Tensor.randn(new long[] {2, 16, 8}, DType.F64, Device.CPU, 1L);
      Tensor v = Tensor.randn(new long[] {2, 16, 4}, DType.F64, Device.CPU, 2L);
      Tensor out = Tensor.full(new long[] {2, 16, 4}, 7.0, DType.F64, Device.CPU);
      Tensor ws = Tensor.empty(new long[] {(need + 7) / 8}, DType.F64, Device.CPU);
      int st = org.metakernels.runtime.MkNative.mk_linear_attention_product_forward(cpu, f64, 2, 16, 16, 8, 4,
          q.address("t"), q.address("t"), v.address("t"), out.address("t"), 1, ws.address("t"), need - 1, 0L);
      assertEquals(org.metakernels.runtime.Codes.ERR_INVALID_ARGUMENT, st);
      String msg = org.metakernels.runtime.Native.lastError();
      assertTrue(msg.contains("mk_linear_attention_product_forward") && msg.contains("workspace of " + (need - 1)), msg);
      assertEquals(7.0, out.toDoubleArray()[0], 0.0, "nothing written");
      st = org.metakernels.runtime.MkNative.mk_linear_attention_product_forward(cpu, f64, 2, 16, 16, 8, 4,
          q.address("t"), q.address("t"), v.address("t"), out.address("t"), 1, ws.address("t"), need, 0L);
      assertEquals(0, st, org.metakernels.runtime.Native.lastError());
      Ref.assertClose(out, LinearAttention.product(q, q, v, Mask.CAUSAL), 0.0, 0.0);  // same kernel, same bits
    }
  }

  // ---- BF16 / F16 (issue 11): F32 inside, each output rounded once ----------------------------------

  static Tensor half(long seed, DType t, long... shape) {
    return Tensor.randn(shape, DType.F32, CPU, seed).to(t);
  }

  /**
   * The CPU twin of the 16-bit product (the oracle of the CUDA tensor-core form): F32 arithmetic
   * on the widened inputs, the output rounded once, so within a unit of the type's last place of
   * the exact product of the same inputs, and within the naive 16-bit composition's error bound.
   */
  @ParameterizedTest
  @CsvSource({"BF16, NONE, 37, 150, 20, 12", "F16, CAUSAL, 130, 130, 16, 24", "BF16, ANTI_CAUSAL, 70, 70, 33, 8",
      "F16, NONE, 64, 64, 64, 64", "BF16, CAUSAL, 200, 200, 128, 40"})
  void halfProductIsTheF32ProductOfTheInputsRounded(DType t, Mask mask, int nq, int nk, int dk, int dv) {
    try (Scope s = Scope.open()) {
      Tensor q = half(1, t, 2, nq, dk), k = half(2, t, 2, nk, dk), v = half(3, t, 2, nk, dv);
      Tensor out = LinearAttention.product(q, k, v, mask);
      assertEquals(t, out.dtype());
      assertArrayEquals(new long[] {2, nq, dv}, out.shape());
      double[] got = out.toDoubleArray();
      double[] exact = LinearAttention.product(q.to(DType.F64), k.to(DType.F64), v.to(DType.F64), mask).toDoubleArray();
      double scale = Ref.maxAbs(exact), ulp = t == DType.BF16 ? 0x1p-7 : 0x1p-10;
      for (int i = 0; i < got.length; i++)
        assertTrue(Math.abs(got[i] - exact[i]) <= ulp * Math.abs(exact[i]) + 1e-5 * scale,
            "element " + i + ": " + got[i] + " vs exact " + exact[i]);
      int code = mask == Mask.NONE ? 0 : mask == Mask.CAUSAL ? 1 : 2;
      double[] naive = HalfLinearAttentionRef.product(t, code, 2, nq, nk, dk, dv, q.toDoubleArray(), k.toDoubleArray(),
          v.toDoubleArray());
      double en = HalfLinearAttentionRef.relErr(naive, exact), ek = HalfLinearAttentionRef.relErr(got, exact);
      assertTrue(ek <= 2 * en + 1e-6, "error " + ek + " over twice the naive composition's " + en);
    }
  }

  /** 16-bit gradients are the same products in 16 bit, to every order (createGraph included). */
  @ParameterizedTest
  @CsvSource({"BF16, CAUSAL", "F16, NONE", "F16, ANTI_CAUSAL"})
  void halfGradientsAndDoubleBackwardFollowTheF64Ones(DType t, Mask mask) {
    try (Scope s = Scope.open()) {
      int n = 70;
      Tensor q = half(4, t, 2, n, 8).requiresGrad(true), k = half(5, t, 2, n, 8).requiresGrad(true);
      Tensor v = half(6, t, 2, n, 4).requiresGrad(true), w = half(7, t, 2, n, 4), u = half(8, t, 2, n, 8);
      Tensor q64 = q.detach().to(DType.F64).requiresGrad(true), k64 = k.detach().to(DType.F64).requiresGrad(true);
      Tensor v64 = v.detach().to(DType.F64).requiresGrad(true);
      List<Tensor> g = org.metakernels.autograd.Autograd.grad(List.of(LinearAttention.product(q, k, v, mask)),
          List.of(q, k, v), List.of(w), true);
      List<Tensor> g64 = org.metakernels.autograd.Autograd.grad(List.of(LinearAttention.product(q64, k64, v64, mask)),
          List.of(q64, k64, v64), List.of(w.to(DType.F64)), true);
      double tol = t == DType.BF16 ? 3e-2 : 4e-3;
      for (int i = 0; i < 3; i++) {
        assertEquals(t, g.get(i).dtype());
        double sc = Ref.maxAbs(g64.get(i).toDoubleArray());
        Ref.assertClose(g.get(i).toDoubleArray(), g64.get(i).toDoubleArray(), tol * sc, 0, "grad " + i);
      }
      // second order: d/dk <dL/dq, u>
      Tensor h = org.metakernels.autograd.Autograd.grad(List.of(g.get(0)), List.of(k), List.of(u), false).get(0);
      Tensor h64 = org.metakernels.autograd.Autograd.grad(List.of(g64.get(0)), List.of(k64), List.of(u.to(DType.F64)),
          false).get(0);
      assertEquals(t, h.dtype());
      double sc = Ref.maxAbs(h64.toDoubleArray());
      Ref.assertClose(h.toDoubleArray(), h64.toDoubleArray(), 2 * tol * sc, 0, "second order");
    }
  }

  /** 16-bit momentum: the F32 recurrence (F32 running sum), each output rounded: the same bits. */
  @ParameterizedTest
  @CsvSource({"BF16, false", "F16, true"})
  void halfMomentumIsTheF32MomentumRounded(DType t, boolean reverse) {
    try (Scope s = Scope.open()) {
      Tensor v = half(9, t, 3, 50, 70);
      Tensor m = LinearAttention.momentum(v, 0.9, reverse);
      assertEquals(t, m.dtype());
      assertArrayEquals(LinearAttention.momentum(v.to(DType.F32), 0.9, reverse).to(t).toDoubleArray(), m.toDoubleArray());
    }
  }

  /** apply() in 16 bit: feature maps, normalization and momentum in F32, the result rounded. */
  @Test
  void halfApplyWithFeatureMapNormalizerAndMomentum() {
    try (Scope s = Scope.open()) {
      Options o = Options.causal(FeatureMap.ELU_PLUS_ONE).withNormalization(Normalization.NORMALIZER).withMomentum(0.8);
      Tensor q = half(10, DType.BF16, 1, 2, 90, 16), k = half(11, DType.BF16, 1, 2, 90, 16);
      Tensor v = half(12, DType.BF16, 1, 2, 90, 8);
      Tensor out = LinearAttention.apply(q, k, v, o);
      assertEquals(DType.BF16, out.dtype());
      Tensor ref = reference(q.to(DType.F64), k.to(DType.F64), v.to(DType.F64), o);
      double sc = Ref.maxAbs(ref.toDoubleArray());
      Ref.assertClose(out.toDoubleArray(), ref.toDoubleArray(), 2e-2 * sc, 0, "bf16 apply");
    }
  }

  @Test
  void halfRejectsMixedTypesAndIntegers() {
    try (Scope s = Scope.open()) {
      Tensor q = half(13, DType.BF16, 2, 5, 4), k = half(14, DType.F16, 2, 5, 4), v = half(15, DType.BF16, 2, 5, 3);
      var e = assertThrows(MetakernelsException.class, () -> LinearAttention.product(q, k, v, Mask.CAUSAL));
      assertTrue(e.getMessage().contains("linearAttention.product") && e.getMessage().contains("BF16")
          && e.getMessage().contains("F16"), e.getMessage());
      Tensor i = Tensor.zeros(new long[] {2, 5, 4}, DType.I64, CPU);
      e = assertThrows(MetakernelsException.class, () -> LinearAttention.product(i, i, i, Mask.NONE));
      assertTrue(e.getMessage().contains("linearAttention.product"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> LinearAttention.momentum(i, 0.5, false));
      assertTrue(e.getMessage().contains("linearAttention.momentum"), e.getMessage());
    }
  }

  /** The 16-bit CPU twin: a group per thread, fixed orders, so the same bits for any thread count. */
  @Test
  void halfProductIsBitwiseTheSameAcrossThreadCounts() {
    int before = org.metakernels.runtime.MkNative.mk_runtime_num_threads();
    try (Scope s = Scope.open()) {
      // 32 groups of 1024 x 32 x 16: 2^25 multiply-adds, past the fork threshold (kMinParallelFma)
      Tensor q = half(16, DType.BF16, 32, 1024, 32), k = half(17, DType.BF16, 32, 1024, 32);
      Tensor v = half(18, DType.BF16, 32, 1024, 16);
      double[][] seen = new double[2][];
      for (int threads = 1; threads <= 2; threads++) {
        org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(threads);
        seen[threads - 1] = LinearAttention.product(q, k, v, Mask.CAUSAL).toDoubleArray();
      }
      assertArrayEquals(seen[0], seen[1]);
    } finally {
      org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(before);
    }
  }

  // ---- TF32 (issue 11): a CUDA allowance; the CPU ignores it ----------------------------------------

  /**
   * The runtime's one TF32 switch ({@link org.metakernels.runtime.Backend#setAllowTf32}) changes
   * nothing on the CPU: the F32 product (every mask), its gradients and the double backward, and
   * momentum attention give the same bits with it on and off.
   */
  @Test
  void tf32SwitchChangesNothingOnTheCpu() {
    boolean before = org.metakernels.runtime.Backend.allowTf32();
    try (Scope s = Scope.open()) {
      Tensor q = Tensor.randn(new long[] {2, 3, 70, 24}, DType.F32, CPU, 31);
      Tensor k = Tensor.randn(new long[] {2, 3, 70, 24}, DType.F32, CPU, 32);
      Tensor v = Tensor.randn(new long[] {2, 3, 70, 12}, DType.F32, CPU, 33);
      double[][] seen = new double[2][];
      for (int on = 0; on <= 1; on++) {
        org.metakernels.runtime.Backend.setAllowTf32(on == 1);
        seen[on] = tf32Probe(q, k, v);
      }
      assertTrue(seen[0].length > 3 * 2 * 3 * 70 * 12, "the probe covers products, gradients and momentum");
      assertArrayEquals(seen[0], seen[1]);
    } finally {
      org.metakernels.runtime.Backend.setAllowTf32(before);
    }
  }

  // every mask's product, dq/dk/dv and d/dk <dq, u> of the causal one, momentum attention: one array
  static double[] tf32Probe(Tensor q, Tensor k, Tensor v) {
    List<double[]> parts = new java.util.ArrayList<>();
    for (Mask m : Mask.values()) parts.add(LinearAttention.product(q, k, v, m).toDoubleArray());
    Tensor qd = q.requiresGrad(true), kd = k.requiresGrad(true), vd = v.requiresGrad(true);
    Tensor w = Tensor.randn(new long[] {2, 3, 70, 12}, DType.F32, CPU, 34);
    List<Tensor> g = org.metakernels.autograd.Autograd.grad(
        List.of(LinearAttention.product(qd, kd, vd, Mask.CAUSAL)), List.of(qd, kd, vd), List.of(w), true);
    Tensor u = Tensor.randn(new long[] {2, 3, 70, 24}, DType.F32, CPU, 35);
    Tensor h = org.metakernels.autograd.Autograd.grad(List.of(g.get(0)), List.of(kd), List.of(u), false).get(0);
    for (Tensor x : g) parts.add(x.toDoubleArray());
    parts.add(h.toDoubleArray());
    Options o = Options.causal(FeatureMap.ELU_PLUS_ONE).withNormalization(Normalization.NORMALIZER).withMomentum(0.9);
    parts.add(LinearAttention.apply(q, k, v, o).toDoubleArray());
    int n = 0;
    for (double[] p : parts) n += p.length;
    double[] all = new double[n];
    int at = 0;
    for (double[] p : parts) {
      System.arraycopy(p, 0, all, at, p.length);
      at += p.length;
    }
    return all;
  }

  /**
   * The C ABI: MK_LINEAR_MASK_TF32 (4) OR-ed into the mask is accepted on every device and changes
   * nothing on the CPU (same bits as the mask alone); other bits are refused with a message naming
   * the op, before anything is written.
   */
  @Test
  void tf32MaskFlagIsIgnoredOnTheCpuAndUnknownBitsAreRefused() {
    try (Scope s = Scope.open()) {
      int cpu = Device.CPU.code, f32 = DType.F32.code;
      assertEquals(4, org.metakernels.runtime.Codes.LINEAR_MASK_TF32);
      long need = org.metakernels.runtime.MkNative.mk_linear_attention_product_workspace(cpu, f32, 8, 4);
      Tensor q = Tensor.randn(new long[] {2, 40, 8}, DType.F32, CPU, 36);
      Tensor v = Tensor.randn(new long[] {2, 40, 4}, DType.F32, CPU, 37);
      Tensor ws = Tensor.empty(new long[] {(need + 7) / 8}, DType.F64, CPU);
      int[] masks = {1, 1 | 4, 2 | 4, 0 | 4, 3, 1 | 8};
      float[][] outs = new float[masks.length][];
      for (int i = 0; i < masks.length; i++) {
        Tensor out = Tensor.full(new long[] {2, 40, 4}, 7.0, DType.F32, CPU);
        int st = org.metakernels.runtime.MkNative.mk_linear_attention_product_forward(cpu, f32, 2, 40, 40, 8, 4,
            q.address("t"), q.address("t"), v.address("t"), out.address("t"), masks[i], ws.address("t"), need, 0L);
        if (i < 4) {
          assertEquals(0, st, org.metakernels.runtime.Native.lastError());
        } else {
          assertEquals(org.metakernels.runtime.Codes.ERR_INVALID_ARGUMENT, st);
          String msg = org.metakernels.runtime.Native.lastError();
          assertTrue(msg.contains("mk_linear_attention_product_forward") && msg.contains("got " + masks[i]), msg);
          for (float x : out.toFloatArray()) assertEquals(7.0f, x, "nothing written");
        }
        outs[i] = out.toFloatArray();
      }
      assertArrayEquals(outs[0], outs[1]);
      assertArrayEquals(LinearAttention.product(q, q, v, Mask.ANTI_CAUSAL).toFloatArray(), outs[2]);
      assertArrayEquals(LinearAttention.product(q, q, v, Mask.NONE).toFloatArray(), outs[3]);
    }
  }

  /**
   * The TF32 reference the gpu-tagged CudaLinearAttentionTf32Test holds the CUDA kernel to, checked
   * here without a GPU: tf32() rounds to 10 mantissa bits, to nearest, ties away from zero; the naive
   * TF32 composition's error is that of 10-bit operands (between 1e-5 and 1e-2 of the largest
   * output), and the exact F32 CPU twin is far inside twice it.
   */
  @Test
  void tf32ReferenceRoundsTo10BitsAndItsErrorIsTf32Sized() {
    assertEquals(1.0 + Math.scalb(1.0, -10), HalfLinearAttentionRef.tf32(1.0 + Math.scalb(1.0, -11)), 0.0);  // tie: away
    assertEquals(-1.0 - Math.scalb(1.0, -10), HalfLinearAttentionRef.tf32(-1.0 - Math.scalb(1.0, -11)), 0.0);
    assertEquals(1.0, HalfLinearAttentionRef.tf32(1.0 + Math.scalb(1.0, -12)), 0.0);
    assertEquals(3.0, HalfLinearAttentionRef.tf32(3.0), 0.0);
    try (Scope s = Scope.open()) {
      int g = 2, n = 150, dk = 24, dv = 16;
      for (int code = 0; code <= 2; code++) {
        Tensor q = Tensor.randn(new long[] {g, n, dk}, DType.F32, CPU, 40 + code);
        Tensor k = Tensor.randn(new long[] {g, n, dk}, DType.F32, CPU, 50 + code);
        Tensor v = Tensor.randn(new long[] {g, n, dv}, DType.F32, CPU, 60 + code);
        double[] qd = q.toDoubleArray(), kd = k.toDoubleArray(), vd = v.toDoubleArray();
        double[] exact = HalfLinearAttentionRef.product(DType.F64, code, g, n, n, dk, dv, qd, kd, vd);
        double en = HalfLinearAttentionRef.relErr(
            HalfLinearAttentionRef.productTf32(code, g, n, n, dk, dv, qd, kd, vd), exact);
        Mask m = code == 0 ? Mask.NONE : code == 1 ? Mask.CAUSAL : Mask.ANTI_CAUSAL;
        double ec = HalfLinearAttentionRef.relErr(LinearAttention.product(q, k, v, m).toDoubleArray(), exact);
        assertTrue(en > 1e-5 && en < 1e-2, "naive TF32 error " + en);
        assertTrue(ec < en / 100, "F32 CPU twin error " + ec + " vs naive TF32 " + en);
      }
    }
  }

  // ---- strided operands (mk_linear_attention_product_strided_forward) -------------------------------------

  static Tensor randnAs(DType t, long seed, long... shape) {
    return Tensor.randn(shape, DType.F32, CPU, seed).to(t);
  }

  static double[] values(Tensor t) {
    return t.to(DType.F64).toDoubleArray();
  }

  /**
   * Heads of [B, N, H, D] projections viewed as [B, H, N, D] go to the kernel as they are (batch,
   * head and row strides) and give the bits of their contiguous copies; the output is laid out as
   * q, so merging its heads back ([B, N, H·Dv]) is a view.
   */
  @ParameterizedTest
  @CsvSource({"F64, NONE, 9, 7", "F32, CAUSAL, 70, 70", "F32, ANTI_CAUSAL, 130, 130", "BF16, CAUSAL, 67, 67",
      "F16, NONE, 5, 66", "F64, NONE, 1, 3", "F32, NONE, 3, 0"})
  void headViewsOfProjectionsGiveTheContiguousBits(DType t, Mask mask, int nq, int nk) {
    try (Scope s = Scope.open()) {
      long b = 2, h = 3, dk = 5, dv = 4;
      Tensor q = randnAs(t, 11, b, nq, h, dk).permute(0, 2, 1, 3);
      Tensor k = randnAs(t, 12, b, nk, h, dk).permute(0, 2, 1, 3);
      Tensor v = randnAs(t, 13, b, nk, h, dv).permute(0, 2, 1, 3);
      assertFalse(q.isContiguous() && nq > 1);
      Tensor out = LinearAttention.product(q, k, v, mask);
      Tensor ref = LinearAttention.product(q.contiguous(), k.contiguous(), v.contiguous(), mask);
      assertArrayEquals(new long[] {b, h, nq, dv}, out.shape());
      assertArrayEquals(values(ref), values(out));
      assertTrue(out.permute(0, 2, 1, 3).isContiguous(), "out is laid out as q: " + out.describe());
    }
  }

  /**
   * Windows of rows (narrowed views), k and v shared by the heads (a stride of 0), leading dims that
   * only collapse when split in two, and a layout the kernel cannot read (columns not unit-stride,
   * copied first): each gives the bits of the contiguous copies.
   */
  @Test
  void windowsSharedKeysAndUnreadableLayoutsGiveTheContiguousBits() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64, DType.BF16}) {
        Tensor x = randnAs(t, 21, 2, 3, 90, 8);
        Tensor q = x.narrow(2, 10, 70), k = x.narrow(2, 5, 70), v = randnAs(t, 22, 2, 3, 80, 6).narrow(2, 3, 70);
        for (Mask m : Mask.values())
          assertArrayEquals(values(LinearAttention.product(q.contiguous(), k.contiguous(), v.contiguous(), m)),
              values(LinearAttention.product(q, k, v, m)), t + " window " + m);
        Tensor ks = randnAs(t, 23, 2, 1, 70, 8).expand(2, 3, 70, 8), vs = randnAs(t, 24, 2, 1, 70, 6).expand(2, 3, 70, 6);
        assertArrayEquals(values(LinearAttention.product(q.contiguous(), ks.contiguous(), vs.contiguous(), Mask.CAUSAL)),
            values(LinearAttention.product(q, ks, vs, Mask.CAUSAL)), t + " shared k, v");
        // [2, 5, 4, N, D] from [2, N, 5, 4, D]: (2) and (5, 4) collapse, (2, 5, 4) do not
        Tensor q5 = randnAs(t, 25, 2, 9, 5, 4, 8).permute(0, 2, 3, 1, 4);
        Tensor k5 = randnAs(t, 26, 2, 9, 5, 4, 8).permute(0, 2, 3, 1, 4);
        Tensor v5 = randnAs(t, 27, 2, 5, 4, 9, 3);
        assertArrayEquals(values(LinearAttention.product(q5.contiguous(), k5.contiguous(), v5, Mask.ANTI_CAUSAL)),
            values(LinearAttention.product(q5, k5, v5, Mask.ANTI_CAUSAL)), t + " rank 5");
        Tensor kt = randnAs(t, 28, 2, 3, 8, 70).mT();  // columns of stride 70
        assertArrayEquals(values(LinearAttention.product(q.contiguous(), kt.contiguous(), v.contiguous(), Mask.NONE)),
            values(LinearAttention.product(q, kt, v, Mask.NONE)), t + " transposed k");
      }
    }
  }

  /** Gradients to second order through head views (their backward products are strided too). */
  @ParameterizedTest
  @CsvSource({"NONE, 6, 4", "CAUSAL, 70, 70"})
  void headViewsGradCheckOrder2(Mask mask, int nq, int nk) {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(31, 2, nq, 2, 5), k = rnd(32, 2, nk, 2, 5), v = rnd(33, 2, nk, 2, 3);
      GradCheck.check(xs -> LinearAttention.product(xs.get(0).permute(0, 2, 1, 3), xs.get(1).permute(0, 2, 1, 3),
          xs.get(2).permute(0, 2, 1, 3), mask).permute(0, 2, 1, 3).reshape(2, nq, 6).tanh(), List.of(q, k, v), 2);
    }
  }

  /**
   * The strided C ABI refuses negative strides, an out whose strides write an element twice and an
   * out that shares memory with an input, naming the op; nothing is written. NULL strides are the
   * contiguous layout.
   */
  @Test
  void stridedAbiRefusesBadStridesAndOverlapsAndWritesNothing() {
    try (Scope s = Scope.open()) {
      int cpu = Device.CPU.code, f64 = DType.F64.code;
      long need = org.metakernels.runtime.MkNative.mk_linear_attention_product_workspace(cpu, f64, 4, 4);
      Tensor ws = Tensor.empty(new long[] {(need + 7) / 8}, DType.F64, CPU);
      Tensor q = rnd(41, 2, 3, 6, 4), v = rnd(42, 2, 3, 6, 4);
      long[] contiguous = {72, 24, 4};
      long[][] outStrides = {{72, 24, -4}, {72, 24, 2}, {24, 24, 4}, null};
      String[] expect = {"must not be negative", "write some element twice", "write some element twice", "overlaps q"};
      for (int i = 0; i < outStrides.length; i++) {
        Tensor out = Tensor.full(new long[] {2, 3, 6, 4}, 7.0, DType.F64, CPU);
        long outAddr = i == 3 ? q.address("t") : out.address("t");
        int st = org.metakernels.runtime.MkNative.mk_linear_attention_product_strided_forward(cpu, f64, 2, 3, 6, 6, 4, 4,
            q.address("t"), contiguous, q.address("t"), null, v.address("t"), contiguous, outAddr, outStrides[i], 0,
            ws.address("t"), need, 0L);
        assertEquals(org.metakernels.runtime.Codes.ERR_INVALID_ARGUMENT, st, "case " + i);
        String msg = org.metakernels.runtime.Native.lastError();
        assertTrue(msg.contains("mk_linear_attention_product_strided_forward") && msg.contains(expect[i]), msg);
        for (double x : out.toDoubleArray()) assertEquals(7.0, x, "nothing written");
      }
      Tensor before = q.contiguous().add(0.0);
      assertArrayEquals(before.toDoubleArray(), q.toDoubleArray(), "q untouched");
      Tensor out = Tensor.empty(new long[] {2, 3, 6, 4}, DType.F64, CPU);
      int st = org.metakernels.runtime.MkNative.mk_linear_attention_product_strided_forward(cpu, f64, 2, 3, 6, 6, 4, 4,
          q.address("t"), null, q.address("t"), null, v.address("t"), null, out.address("t"), null, 1,
          ws.address("t"), need, 0L);
      assertEquals(0, st, org.metakernels.runtime.Native.lastError());
      assertArrayEquals(LinearAttention.product(q, q, v, Mask.CAUSAL).toDoubleArray(), out.toDoubleArray());
    }
  }
}
