package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.Activation;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The fused linear layer {@code Functional.linear(x, w, b, act)} against its composed form
 * act(x.matmul(wᵀ).add(b)) in float64: values, first derivatives in x, W and b, and second
 * derivatives through {@code Autograd.grad(createGraph)} (the fused backward's own rule), with
 * leading batch dims; bad input; determinism across runs and thread counts.
 */
class FusedLinearTest {
  static final Activation[] FUSED = {Activation.IDENTITY, Activation.RELU, Activation.TANH, Activation.SIGMOID};

  static Tensor rand(long seed, DType d, long... shape) {
    return Tensor.uniform(shape, -1, 1, d, Device.CPU, seed);
  }

  static Tensor composed(Tensor x, Tensor w, Tensor b, Activation act) {
    Tensor z = x.matmul(w.mT());
    return act.apply(b == null ? z : z.add(b));
  }

  static void assertClose(Tensor got, Tensor want, double tol, String what) {
    assertArrayEquals(want.shape(), got.shape(), what + ": shape");
    double[] g = got.toDoubleArray(), w = want.toDoubleArray();
    for (int i = 0; i < g.length; i++)
      assertTrue(Math.abs(g[i] - w[i]) <= tol * (1 + Math.abs(w[i])), what + " [" + i + "]: " + g[i] + " vs " + w[i]);
  }

  @ParameterizedTest
  @EnumSource(value = Activation.class, names = {"IDENTITY", "RELU", "TANH", "SIGMOID"})
  void valuesAndGradientsMatchTheComposedFormF64(Activation act) {
    for (long[] xs : new long[][] {{7, 5}, {2, 3, 5}, {5}, {2, 1, 3, 5}})
      for (boolean withBias : new boolean[] {true, false}) try (Scope s = Scope.open()) {
          Tensor x = rand(1, DType.F64, xs).requiresGrad(true);
          Tensor w = rand(2, DType.F64, 4, 5).requiresGrad(true);
          Tensor b = withBias ? rand(3, DType.F64, 4).requiresGrad(true) : null;
          String what = act + " x " + Arrays.toString(xs) + " bias " + withBias;
          Tensor y = Functional.linear(x, w, b, act), yr = composed(x, w, b, act);
          assertClose(y, yr, 1e-12, what + " value");
          Tensor gy = rand(4, DType.F64, y.shape());
          List<Tensor> ins = withBias ? List.of(x, w, b) : List.of(x, w);
          List<Tensor> g = Autograd.grad(List.of(y), ins, List.of(gy), false);
          List<Tensor> gr = Autograd.grad(List.of(yr), ins, List.of(gy), false);
          for (int i = 0; i < ins.size(); i++) assertClose(g.get(i), gr.get(i), 1e-12, what + " grad " + i);
        }
  }

  @Test
  void float32MatchesTheComposedForm() {
    for (Activation act : FUSED) try (Scope s = Scope.open()) {
        Tensor x = rand(5, DType.F32, 3, 8, 16).requiresGrad(true), w = rand(6, DType.F32, 12, 16).requiresGrad(true);
        Tensor b = rand(7, DType.F32, 12).requiresGrad(true);
        Tensor y = Functional.linear(x, w, b, act), yr = composed(x, w, b, act);
        assertClose(y, yr, 1e-5, act + " F32 value");
        List<Tensor> g = Autograd.grad(y.square().sum(), List.of(x, w, b), false);
        List<Tensor> gr = Autograd.grad(yr.square().sum(), List.of(x, w, b), false);
        for (int i = 0; i < 3; i++) assertClose(g.get(i), gr.get(i), 1e-4, act + " F32 grad " + i);
      }
  }

  /** Second derivatives: the gradient built with createGraph, then its VJP, fused vs composed. */
  @ParameterizedTest
  @EnumSource(value = Activation.class, names = {"IDENTITY", "RELU", "TANH", "SIGMOID"})
  void secondDerivativesMatchTheComposedForm(Activation act) {
    try (Scope s = Scope.open()) {
      Tensor x = rand(11, DType.F64, 2, 3, 5).requiresGrad(true);
      Tensor w = rand(12, DType.F64, 4, 5).requiresGrad(true), b = rand(13, DType.F64, 4).requiresGrad(true);
      Tensor w2 = rand(14, DType.F64, 2, 4).requiresGrad(true);
      List<Tensor> ins = List.of(x, w, b, w2);
      List<Tensor> v = List.of(
          rand(15, DType.F64, 2, 3, 5), rand(16, DType.F64, 4, 5), rand(17, DType.F64, 4), rand(18, DType.F64, 2, 4));
      List<Tensor> fused = secondOrder(
          Functional.linear(Functional.linear(x, w, b, act), w2, null, Activation.TANH).square().mean(), ins, v);
      List<Tensor> ref =
          secondOrder(composed(composed(x, w, b, act), w2, null, Activation.TANH).square().mean(), ins, v);
      for (int i = 0; i < ins.size(); i++) assertClose(fused.get(i), ref.get(i), 1e-12, act + " H v " + i);
    }
  }

  static List<Tensor> secondOrder(Tensor loss, List<Tensor> ins, List<Tensor> v) {
    List<Tensor> g = Autograd.grad(loss, ins, true);
    Tensor dot = null;
    for (int i = 0; i < g.size(); i++) {
      Tensor t = g.get(i).mul(v.get(i)).sum();
      dot = dot == null ? t : dot.add(t);
    }
    return Autograd.grad(dot, ins, false);
  }

  @Test
  void stridedOperandsAndTheFallbackActivation() {
    try (Scope s = Scope.open()) {
      Tensor xt = rand(21, DType.F64, 5, 6).requiresGrad(true); // x = xtᵀ: strided
      Tensor wt = rand(22, DType.F64, 5, 3).requiresGrad(true); // w = wtᵀ: [3, 5] column-major
      Tensor b = rand(23, DType.F64, 3).requiresGrad(true);
      for (Activation act : Activation.values()) {
        Tensor y = Functional.linear(xt.mT(), wt.mT(), b, act), yr = composed(xt.mT(), wt.mT(), b, act);
        assertClose(y, yr, 1e-12, act + " strided value");
        List<Tensor> g = Autograd.grad(y.sum(), List.of(xt, wt, b), false);
        List<Tensor> gr = Autograd.grad(yr.sum(), List.of(xt, wt, b), false);
        for (int i = 0; i < 3; i++) assertClose(g.get(i), gr.get(i), 1e-12, act + " strided grad " + i);
      }
      assertTrue(Functional.fuses(Activation.TANH) && !Functional.fuses(Activation.GELU) && !Functional.fuses(null));
    }
  }

  @Test
  void emptyBatchAndEmptyInput() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.zeros(new long[] {0, 4}, DType.F64, Device.CPU).requiresGrad(true);
      Tensor w = rand(31, DType.F64, 3, 4).requiresGrad(true), b = rand(32, DType.F64, 3).requiresGrad(true);
      Tensor y = Functional.linear(x, w, b, Activation.TANH);
      assertArrayEquals(new long[] {0, 3}, y.shape());
      List<Tensor> g = Autograd.grad(
          List.of(y), List.of(w, b), List.of(Tensor.zeros(new long[] {0, 3}, DType.F64, Device.CPU)), false);
      assertArrayEquals(new double[12], g.get(0).toDoubleArray());
      assertArrayEquals(new double[3], g.get(1).toDoubleArray());
      // in = 0: y = act(b)
      Tensor x0 = Tensor.zeros(new long[] {2, 0}, DType.F64, Device.CPU);
      Tensor w0 = Tensor.zeros(new long[] {3, 0}, DType.F64, Device.CPU);
      assertClose(
          Functional.linear(x0, w0, b, Activation.SIGMOID), b.sigmoid().unsqueeze(0).expand(2, 3), 1e-15, "in = 0");
    }
  }

  @Test
  void badInputNamesTheOpAndTheShapesAndChangesNothing() {
    try (Scope s = Scope.open()) {
      Tensor x = rand(41, DType.F64, 4, 5).requiresGrad(true), w = rand(42, DType.F64, 3, 5),
             b = rand(43, DType.F64, 3);
      double[] xBefore = x.toDoubleArray(), wBefore = w.toDoubleArray();
      assertBadLinear(() -> Functional.linear(x, rand(44, DType.F64, 3, 6), b, Activation.TANH), "[4, 5]", "[3, 6]");
      assertBadLinear(() -> Functional.linear(x, w, rand(45, DType.F64, 4), Activation.TANH), "[4]", "[3, 5]");
      assertBadLinear(() -> Functional.linear(x, w, rand(45, DType.F64, 1, 3), Activation.RELU), "[1, 3]", "[3, 5]");
      assertBadLinear(() -> Functional.linear(x, rand(46, DType.F32, 3, 5), b, Activation.TANH), "F32", "F64");
      assertBadLinear(() -> Functional.linear(x, w, b, null), "null", "[4, 5]");
      assertBadLinear(
          () -> Functional.linear(Tensor.scalar(1.0, DType.F64, Device.CPU), w, b, Activation.TANH), "[3, 5]");
      Tensor closed;
      try (Scope inner = Scope.open()) {
        closed = rand(47, DType.F64, 3, 5);
      }
      // a freed tensor is refused the library's way (IllegalStateException), naming the op and the tensor
      IllegalStateException freed =
          assertThrows(IllegalStateException.class, () -> Functional.linear(x, closed, b, Activation.SIGMOID));
      assertTrue(freed.getMessage().contains("linear") && freed.getMessage().contains("[3, 5]"), freed.getMessage());
      assertArrayEquals(xBefore, x.toDoubleArray());
      assertArrayEquals(wBefore, w.toDoubleArray());
      assertNull(x.grad());
    }
  }

  @Test
  void nativeValidationNamesTheEntryPoint() {
    // straight to the C ABI (what Java never sends): an unknown activation code, negative sizes
    int st = MkNative.mk_dense_linear_forward(Device.CPU.code, DType.F64.code, 99, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0);
    assertNotEquals(0, st);
    assertTrue(
        MkNative.mk_last_error().getString().contains("mk_dense_linear_forward"), MkNative.mk_last_error().getString());
    assertTrue(MkNative.mk_last_error().getString().contains("activation"), MkNative.mk_last_error().getString());
    st = MkNative.mk_dense_linear_backward(Device.CPU.code, DType.F32.code, 0, -1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0);
    assertNotEquals(0, st);
    assertTrue(MkNative.mk_last_error().getString().contains("mk_dense_linear_backward"));
    st = MkNative.mk_dense_linear_forward(Device.CPU.code, DType.F32.code, 0, 2, 2, 2, 0, 0, 2, 1, 0, 0, 0);
    assertNotEquals(0, st, "null pointers for non-empty operands");
  }

  static void assertBadLinear(org.junit.jupiter.api.function.Executable call, String... mustContain) {
    MetakernelsException e = assertThrows(MetakernelsException.class, call);
    assertTrue(e.getMessage().contains("linear"), e.getMessage());
    assertBad(call, mustContain);
  }

  static void assertBad(org.junit.jupiter.api.function.Executable call, String... mustContain) {
    MetakernelsException e = assertThrows(MetakernelsException.class, call);
    for (String m : mustContain) assertTrue(e.getMessage().contains(m), "'" + m + "' missing from: " + e.getMessage());
  }

  /** Bitwise the same run to run and on 1 and 2 CPU threads, values and gradients (F32). */
  @Test
  void deterministicAcrossRunsAndThreadCounts() {
    float[][] a = run(1), b = run(2), c = run(2);
    for (int i = 0; i < a.length; i++) {
      assertArrayEquals(a[i], b[i], "1 vs 2 threads, output " + i);
      assertArrayEquals(b[i], c[i], "run to run, output " + i);
    }
  }

  /**
   * A small output over a long reduction (m n <= 4096, k >= 2048, >= 2^24 multiply-adds) takes the
   * split-k GEMM: its parts are a function of k alone, so 1, 2 and 3 threads give the same bits.
   */
  @Test
  void splitKMatmulIsTheSameForEveryThreadCount() {
    int before = MkNative.mk_runtime_num_threads();
    try (Scope s = Scope.open()) {
      for (DType d : new DType[] {DType.F32, DType.F64}) {
        Tensor a = rand(71, d, 8192, 64), b = rand(72, d, 8192, 48);
        double[] ref = null;
        for (int threads : new int[] {1, 2, 3}) {
          MkNative.mk_runtime_set_num_threads(threads);
          double[] got = a.mT().matmul(b).toDoubleArray();  // [64, 48] = aᵀ b over k = 8192
          if (ref == null) {
            ref = got;
            double[] exact = a.to(DType.F64).mT().matmul(b.to(DType.F64)).toDoubleArray();
            for (int i = 0; i < ref.length; i++)
              assertEquals(exact[i], ref[i], (d == DType.F32 ? 1e-3 : 1e-10) * (1 + Math.abs(exact[i])), d + " [" + i + "]");
          } else {
            assertArrayEquals(ref, got, 0.0, d + ": " + threads + " threads vs 1");
          }
        }
      }
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  static float[][] run(int threads) {
    int before = MkNative.mk_runtime_num_threads();
    MkNative.mk_runtime_set_num_threads(threads);
    try (Scope s = Scope.open()) {
      // large enough to fork (mk/cpu_parallel.h, native/src/dense.cpp): [1024, 256] outputs, a weight
      // gradient over 1024 rows
      Tensor x = rand(51, DType.F32, 1024, 128).requiresGrad(true), w = rand(52, DType.F32, 256, 128).requiresGrad(true);
      Tensor bias = rand(53, DType.F32, 256).requiresGrad(true);
      Tensor y = Functional.linear(x, w, bias, Activation.TANH);
      List<Tensor> g = Autograd.grad(y.square().sum(), List.of(x, w, bias), false);
      List<float[]> out = new ArrayList<>();
      out.add(y.toFloatArray());
      for (Tensor t : g) out.add(t.toFloatArray());
      return out.toArray(new float[0][]);
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }
  @Test
  void mseMatchesTheComposedFormToSecondOrder() {
    try (Scope s = Scope.open()) {
      for (long[] shape : new long[][] {{7, 1}, {2, 3, 4}, {1}}) {
        Tensor p = rand(61, DType.F64, shape).requiresGrad(true), t = rand(62, DType.F64, shape).requiresGrad(true);
        Tensor l = Functional.mse(p, t), lr = p.sub(t).square().mean();
        assertClose(l, lr, 1e-14, "mse value");
        List<Tensor> v = List.of(rand(63, DType.F64, shape), rand(64, DType.F64, shape));
        // the loss times a function of p, so the seed g of the fused backward is not a constant
        List<Tensor> a = secondOrder(l.mul(p.sum().tanh()), List.of(p, t), v);
        List<Tensor> b = secondOrder(lr.mul(p.sum().tanh()), List.of(p, t), v);
        for (int i = 0; i < 2; i++) assertClose(a.get(i), b.get(i), 1e-12, "mse H v " + i);
        List<Tensor> g = Autograd.grad(l, List.of(p, t), false), gr = Autograd.grad(lr, List.of(p, t), false);
        for (int i = 0; i < 2; i++) assertClose(g.get(i), gr.get(i), 1e-14, "mse grad " + i);
      }
      // F32 and a strided prediction
      Tensor p = rand(65, DType.F32, 5, 4).requiresGrad(true), t = rand(66, DType.F32, 4, 5);
      assertClose(Functional.mse(p.mT(), t), p.mT().sub(t).square().mean(), 1e-6, "mse F32 strided");
      // bad input: the op and the shapes
      assertBad(() -> Functional.mse(p, t), "mse", "[5, 4]", "[4, 5]");
      assertBad(() -> Functional.mse(p, rand(67, DType.F64, 5, 4)), "mse");
      assertBad(()
                    -> Functional.mse(Tensor.zeros(new long[] {0, 2}, DType.F32, Device.CPU),
                        Tensor.zeros(new long[] {0, 2}, DType.F32, Device.CPU)),
          "mse", "empty");
      int st = MkNative.mk_dense_mse_forward(Device.CPU.code, DType.F32.code, 0, 0, 0, 0, 0);
      assertNotEquals(0, st);
      assertTrue(MkNative.mk_last_error().getString().contains("mk_dense_mse_forward"));
    }
  }
}
