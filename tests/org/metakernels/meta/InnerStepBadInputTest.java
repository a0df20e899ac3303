package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;
import static org.metakernels.testing.Ref.rejects;

import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

/**
 * Rejected steps: each throws a {@link MetakernelsException} naming the op and the shapes (or
 * {@link IllegalStateException} naming the op for a freed tensor, as every op of the library) and
 * leaves its inputs as they were; then the native layer's own checks, called directly (the Java
 * side checks first, so these are what another caller of the C ABI sees); and what is allowed:
 * negative learning rates, in-place forwards through the C ABI.
 */
class InnerStepBadInputTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;
  static final Class<MetakernelsException> MK = MetakernelsException.class;

  static Tensor f64(long seed, long... shape) {
    return Tensor.randn(shape, F64, CPU, seed);
  }

  @Test
  void operandsThatDoNotMatchTheParameter() {
    try (Scope s = Scope.open()) {
      Tensor p = f64(1, 3, 4), g = f64(2, 3, 4), b = f64(3, 3, 4), m = f64(4, 3, 4), v = f64(5, 3, 4).abs();
      Tensor gT = f64(6, 4, 3), g32 = g.castTo(DType.F32), i64 = Tensor.ofIndices(new long[] {1, 2, 3}, 3);
      List<Tensor> all = List.of(p, g, b, m, v, gT, g32);
      rejects(MK, () -> InnerStep.sgd(p, gT, 0.1), all, "InnerStep.sgd", "grad F64[4, 3]", "param F64[3, 4]");
      rejects(MK, () -> InnerStep.sgd(p, g32, 0.1), all, "InnerStep.sgd", "grad F32[3, 4]", "param F64[3, 4]");
      rejects(MK, () -> InnerStep.sgd(i64, i64, 0.1), all, "InnerStep.sgd", "I64[3]", "F32 or F64");
      rejects(MK, () -> InnerStep.momentum(p, g, f64(7, 12), InnerStep.Momentum.lr(0.1)), all, "InnerStep.momentum",
          "buffer F64[12]", "param F64[3, 4]");
      rejects(MK, () -> InnerStep.adam(p, g, m, f64(8, 3, 5), 1, InnerStep.Adam.lr(0.1)), all, "InnerStep.adam",
          "v F64[3, 5]", "param F64[3, 4]");
      rejects(MK, () -> InnerStep.adam(p, g, m.castTo(DType.F32), v, 1, InnerStep.Adam.lr(0.1)), all,
          "InnerStep.adam", "m F32[3, 4]");
      rejects(MK, () -> InnerStep.sgd(List.of(p, p), List.of(g), InnerStep.Sgd.lr(0.1)), all, "InnerStep.sgd",
          "2 parameters but 1 gradients");
    }
  }

  @Test
  void hyperparametersThatDoNotFit() {
    try (Scope s = Scope.open()) {
      Tensor p = f64(1, 3, 4), g = f64(2, 3, 4), m = f64(4, 3, 4), v = f64(5, 3, 4).abs();
      List<Tensor> all = List.of(p, g, m, v);
      rejects(MK, () -> InnerStep.sgd(p, g, f64(3, 3)), all, "InnerStep.sgd", "lr F64[3] does not broadcast",
          "param F64[3, 4]");
      rejects(MK, () -> InnerStep.sgd(p, g, Tensor.scalar(0.1, DType.F32, CPU)), all, "InnerStep.sgd", "lr F32[]",
          "param's dtype");
      rejects(MK, () -> InnerStep.sgd(p, g, InnerStep.Sgd.lr(0.1).withWeightDecay(f64(4, 2, 3, 4))), all,
          "weightDecay F64[2, 3, 4] does not broadcast");
      rejects(MK, () -> InnerStep.sgd(p, g, Double.NaN), all, "InnerStep.sgd", "lr = NaN is not finite",
          "param F64[3, 4]");
      rejects(MK, () -> InnerStep.adam(p, g, m, v, 1, InnerStep.Adam.lr(1e-3).withBetas(1.0, 0.999)), all,
          "InnerStep.adam", "beta1 = 1.0 is outside [0, 1)");
      rejects(MK, () -> InnerStep.adam(p, g, m, v, 1, InnerStep.Adam.lr(1e-3).withEps(-1e-8)), all,
          "InnerStep.adam", "eps = -1.0E-8 is negative");
      rejects(MK, () -> InnerStep.adam(p, g, m, v, 1, InnerStep.Adam.lr(1e-3).withBetas(f64(5, 3, 4), f64(6))),
          all, "InnerStep.adam", "beta1 F64[3, 4] must hold one value");
      rejects(MK, () -> InnerStep.adam(p, g, m, v, 0, InnerStep.Adam.lr(1e-3)), all, "InnerStep.adam", "step 0",
          "F64[3, 4]");
    }
  }

  @Test
  void freedTensorsAreRefusedByName() {
    try (Scope s = Scope.open()) {
      Tensor p = f64(1, 3, 4), g = f64(2, 3, 4), b = f64(3, 3, 4);
      Tensor dead = f64(4, 3, 4);
      dead.close();
      Tensor deadLr = Tensor.scalar(0.1, F64, CPU);
      deadLr.close();
      List<Tensor> live = List.of(p, g, b);
      rejects(IllegalStateException.class, () -> InnerStep.sgd(dead, g, 0.1), live, "InnerStep.sgd", "freed");
      rejects(IllegalStateException.class, () -> InnerStep.sgd(p, dead, 0.1), live, "InnerStep.sgd", "freed");
      rejects(IllegalStateException.class, () -> InnerStep.sgd(p, g, deadLr), live, "InnerStep.sgd", "freed");
      rejects(IllegalStateException.class, () -> InnerStep.momentum(p, g, dead, InnerStep.Momentum.lr(0.1)), live,
          "InnerStep.momentum", "freed");
    }
  }

  /** Negative rates are allowed (a learned rate may cross zero): the step ascends. */
  @Test
  void negativeLearningRatesAscend() {
    try (Scope s = Scope.open()) {
      Tensor p = f64(1, 5), g = f64(2, 5);
      Ref.assertClose(InnerStep.sgd(p, g, -0.5).toDoubleArray(), p.add(g.mul(0.5)).toDoubleArray(), 1e-15, 1e-15,
          "p + 0.5 g");
    }
  }

  // ---- the C ABI's own checks ---------------------------------------------------------------------

  /** A valid block for F64 tensors of n elements (param, grad, buf, m, v, outputs, cotangents). */
  static final class Raw implements AutoCloseable {
    final Scope scope = Scope.open();
    final long n;
    final Tensor p, g, b, m, v, po, bo, mo, vo, cp, lr, glr, ws;

    Raw(long n) {
      this.n = n;
      p = f64(1, n);
      g = f64(2, n);
      b = f64(3, n);
      m = f64(4, n);
      v = f64(5, n).abs();
      po = Tensor.zeros(new long[] {n}, F64, CPU);
      bo = Tensor.zeros(new long[] {n}, F64, CPU);
      mo = Tensor.zeros(new long[] {n}, F64, CPU);
      vo = Tensor.zeros(new long[] {n}, F64, CPU);
      cp = f64(6, n);
      lr = Tensor.scalar(0.1, F64, CPU);
      glr = Tensor.zeros(new long[] {}, F64, CPU);
      ws = Tensor.zeros(new long[] {1 << 12}, F64, CPU);
    }

    long a(Tensor t) {
      return t.address("test");
    }

    MkNative.mk_meta_step_params sgd() {
      MkNative.mk_meta_step_params q = new MkNative.mk_meta_step_params().n(n).param(a(p)).grad(a(g)).buf(a(b));
      q.hyper_value(Codes.META_LR, 0.1).hyper_value(Codes.META_MOMENTUM, 0.9);
      return q.param_out(a(po)).buf_out(a(bo));
    }

    MkNative.mk_meta_step_params adam() {
      MkNative.mk_meta_step_params q = new MkNative.mk_meta_step_params().n(n).step(1).param(a(p)).grad(a(g)).m(a(m))
          .v(a(v));
      q.hyper_value(Codes.META_LR, 1e-3).hyper_value(Codes.META_BETA1, 0.9).hyper_value(Codes.META_BETA2, 0.999)
          .hyper_value(Codes.META_EPS, 1e-8);
      return q.param_out(a(po)).m_out(a(mo)).v_out(a(vo));
    }

    int sgdForward(MkNative.mk_meta_step_params q) {
      return MkNative.mk_meta_sgd_step_forward(0, F64.code, q, 0L);
    }

    int sgdBackward(MkNative.mk_meta_step_params q) {
      return MkNative.mk_meta_sgd_step_backward(0, F64.code, q, a(ws), ws.numel() * 8, 0L);
    }

    int adamForward(MkNative.mk_meta_step_params q) {
      return MkNative.mk_meta_adam_step_forward(0, F64.code, q, 0L);
    }

    @Override
    public void close() {
      scope.close();
    }
  }

  /** The call fails with MK_ERR_INVALID_ARGUMENT (or {@code status}) and a message with every fragment; the outputs stay 0. */
  static void refused(Raw r, int status, java.util.function.IntSupplier call, String... fragments) {
    int got = call.getAsInt();
    String msg = MkNative.mk_last_error().getString();
    assertEquals(status, got, msg);
    for (String f : fragments) assertTrue(msg.contains(f), "'" + msg + "' lacks '" + f + "'");
    for (Tensor o : List.of(r.po, r.bo, r.mo, r.vo, r.glr))
      assertEquals(0.0, Ref.maxAbs(o.toDoubleArray()), "an output was written by a refused call: " + msg);
  }

  static void with(Raw r, MkNative.mk_meta_step_params q, Consumer<MkNative.mk_meta_step_params> edit,
      java.util.function.ToIntFunction<MkNative.mk_meta_step_params> call, int status, String... fragments) {
    try (q) {
      edit.accept(q);
      refused(r, status, () -> call.applyAsInt(q), fragments);
    }
  }

  @Test
  void theNativeLayerNamesTheOpAndWhatItExpected() {
    int bad = Codes.ERR_INVALID_ARGUMENT;
    try (Raw r = new Raw(1000)) {
      String fwd = "mk_meta_sgd_step_forward", bwd = "mk_meta_sgd_step_backward", adam = "mk_meta_adam_step_forward";
      with(r, r.sgd(), q -> q.buf_out(r.a(r.g)), r::sgdForward, bad, fwd, "output buf_out overlaps input grad");
      with(r, r.sgd(), q -> q.param_out(r.a(r.p) + 8), r::sgdForward, bad, fwd, "output param_out overlaps input param",
          "exactly");
      with(r, r.sgd(), q -> q.buf_out(r.a(r.po) + 80), r::sgdForward, bad, fwd, "outputs param_out and buf_out overlap");
      with(r, r.sgd(), q -> q.hyper(Codes.META_LR, r.a(r.lr)).hyper_stride(Codes.META_LR, 2), r::sgdForward, bad, fwd,
          "lr has stride 2");
      with(r, r.sgd(), q -> q.buf(0).buf_out(0), r::sgdForward, bad, fwd, "momentum != 0 without a momentum buffer");
      with(r, r.sgd(), q -> q.flags(Codes.META_NESTEROV).buf(0).buf_out(0).hyper_value(Codes.META_MOMENTUM, 0), r::sgdForward,
          bad, fwd, "Nesterov momentum needs a momentum buffer");
      with(r, r.sgd(), q -> q.flags(Codes.META_DECOUPLED_WEIGHT_DECAY), r::sgdForward, bad, fwd, "flags 2");
      with(r, r.sgd(), q -> q.m(r.a(r.m)), r::sgdForward, bad, fwd, "m and v are Adam's state");
      with(r, r.sgd(), q -> q.hyper_value(Codes.META_LR, Double.POSITIVE_INFINITY), r::sgdForward, bad, fwd,
          "lr = inf is not finite");
      with(r, r.sgd(), q -> q.grad(0), r::sgdForward, bad, fwd, "grad is null");
      with(r, r.sgd(), q -> q.n(-1), r::sgdForward, bad, fwd, "n = -1 is negative");
      with(r, r.sgd(), q -> q.param_out(0).cot_hyper(Codes.META_LR, r.a(r.glr)), r::sgdBackward, bad, bwd,
          "a gradient of hyperparameter lr, which is a constant");
      with(r, r.sgd(), q -> q.param_out(0).buf_out(0).cot_param(r.a(r.g)), r::sgdBackward, bad, bwd,
          "output cot_param overlaps input grad");
      with(r, r.sgd(), q -> q.param_out(0).buf_out(0).cot_param(r.a(r.po)),
          q -> MkNative.mk_meta_sgd_step_backward(0, F64.code, q, r.a(r.ws), 16, 0L), bad, bwd, "workspace of 16 bytes");
      with(r, r.adam(), q -> q.step(0), r::adamForward, bad, adam, "step 0");
      with(r, r.adam(), q -> q.hyper_value(Codes.META_BETA2, 1.0), r::adamForward, bad, adam, "beta2 = 1 outside [0, 1)");
      with(r, r.adam(), q -> q.hyper(Codes.META_BETA1, r.a(r.m)).hyper_stride(Codes.META_BETA1, 1), r::adamForward, bad,
          adam, "beta1 has stride 1 (expected 0, one value)");
      with(r, r.adam(), q -> q.hyper(Codes.META_MOMENTUM, r.a(r.lr)), r::adamForward, bad, adam,
          "momentum is not one of this optimizer's");
      with(r, r.adam(), q -> q.v(0), r::adamForward, bad, adam, "v is null");
      try (MkNative.mk_meta_step_params q = r.sgd()) {
        refused(r, Codes.ERR_UNSUPPORTED, () -> MkNative.mk_meta_sgd_step_forward(0, DType.BF16.code, q, 0L), fwd,
            "BF16", "F32/F64 only");
      }
    }
  }

  /** param_out = param (and buf_out = buf): the forward in place gives the out-of-place result. */
  @Test
  void theForwardRunsInPlaceThroughTheCAbi() {
    try (Raw r = new Raw(3001)) {
      Tensor[] want;
      try (var ng = org.metakernels.autograd.Autograd.noGrad()) {
        InnerStep.MomentumResult m = InnerStep.momentum(r.p, r.g, r.b, InnerStep.Momentum.lr(0.1).withMomentum(0.9));
        want = new Tensor[] {m.param(), m.buffer()};
      }
      try (MkNative.mk_meta_step_params q = r.sgd()) {
        q.param_out(r.a(r.p)).buf_out(r.a(r.b));
        assertEquals(Codes.OK, r.sgdForward(q), MkNative.mk_last_error().getString());
      }
      assertArrayEquals(want[0].toDoubleArray(), r.p.toDoubleArray(), 0.0);
      assertArrayEquals(want[1].toDoubleArray(), r.b.toDoubleArray(), 0.0);
    }
  }
}
