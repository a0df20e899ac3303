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
}
