package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;
import static org.metakernels.testing.Ref.rejects;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.Activation;
import org.metakernels.nn.LayerNorm;
import org.metakernels.nn.Linear;
import org.metakernels.nn.LinearSelfAttention;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Module;
import org.metakernels.nn.MultiHeadAttention;
import org.metakernels.ops.LinearAttention;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Per-example gradients and norms against B separate single-example backward passes (float64,
 * 1e-12), the fused norm kernel against the materialised gradients, determinism, and bad input.
 */
class PerExampleTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;
  static final Class<MetakernelsException> MK = MetakernelsException.class;

  /** Squared error per example, summed over every non-batch axis: [B]. */
  static Function<Tensor, Tensor> sqLoss(Tensor y) {
    return out -> {
      Tensor d = out.sub(y).square();
      return d.reshape(d.size(0), d.numel() / d.size(0)).sum(1, false);
    };
  }

  static void close(double[] want, double[] got, double rtol, String what) {
    assertEquals(want.length, got.length, what);
    double scale = 0;
    for (double v : want) scale = Math.max(scale, Math.abs(v));
    assertTrue(scale > 1e-8, what + ": a vacuous comparison (all zeros)");
    for (int i = 0; i < want.length; i++)
      assertEquals(want[i], got[i], rtol * Math.max(Math.abs(want[i]), 1e-3 * scale), what + " element " + i);
  }

  /** Per parameter: [B, ...] stacked from B single-example backward passes. */
  static double[][] separate(Module m, Tensor x, Tensor y, String name) {
    long b = x.size(0);
    Tensor p = m.namedParameters().get(name);
    double[][] out = new double[(int) b][];
    for (int i = 0; i < b; i++) {
      Tensor xi = x.narrow(0, i, 1), yi = y.narrow(0, i, 1);
      Tensor loss = sqLoss(yi).apply(m.forward(xi)).sum();
      out[i] = Autograd.grad(loss, List.of(p), false).get(0).toDoubleArray();
    }
    return out;
  }

  static void checkAgainstSeparate(Module m, Tensor x, Tensor y, double rtol) {
    PerExample.Result r = PerExample.gradients(m, x, sqLoss(y), false);
    assertEquals(m.namedParameters().keySet(), r.gradients().keySet());
    long b = x.size(0);
    double[] sepNorm2 = new double[(int) b];
    for (Map.Entry<String, Tensor> e : r.gradients().entrySet()) {
      Tensor g = e.getValue();
      Tensor p = m.namedParameters().get(e.getKey());
      assertEquals(b, g.size(0), e.getKey());
      for (int d = 0; d < p.rank(); d++) assertEquals(p.size(d), g.size(d + 1), e.getKey() + " shape " + g.describe());
      double[][] want = separate(m, x, y, e.getKey());
      for (int i = 0; i < b; i++) {
        close(want[i], g.select(0, i).toDoubleArray(), rtol,
            m.getClass().getSimpleName() + " " + e.getKey() + " example " + i);
        for (double v : want[i]) sepNorm2[i] += v * v;
      }
    }
    // the losses, and the norms (fused for Linear/MLP) equal the norms of the separate gradients
    double[] losses = r.losses().toDoubleArray();
    double[] norms = PerExample.norms(m, x, sqLoss(y), false).toDoubleArray();
    for (int i = 0; i < b; i++) {
      double li = sqLoss(y.narrow(0, i, 1)).apply(m.forward(x.narrow(0, i, 1))).item();
      assertEquals(li, losses[i], 1e-12 * Math.abs(li), "loss " + i);
      assertEquals(Math.sqrt(sepNorm2[i]), norms[i], rtol * Math.sqrt(sepNorm2[i]), "norm " + i);
    }
  }

  @Test
  void mlpEqualsSeparateBackwardPasses() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {3, 5, 4, 2}, Activation.TANH, F64, CPU, 3)) {
      Tensor x = Tensor.randn(new long[] {6, 3}, F64, CPU, 1), y = Tensor.randn(new long[] {6, 2}, F64, CPU, 2);
      checkAgainstSeparate(net, x, y, 1e-12);
    }
  }

  @Test
  void mlpOnSequencesEqualsSeparateBackwardPasses() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {4, 6, 3}, Activation.GELU, F64, CPU, 4)) {
      Tensor x = Tensor.randn(new long[] {5, 7, 4}, F64, CPU, 3), y = Tensor.randn(new long[] {5, 7, 3}, F64, CPU, 4);
      checkAgainstSeparate(net, x, y, 1e-12);
    }
  }

  @Test
  void linearWithAndWithoutBias() {
    try (Scope s = Scope.open(); Linear a = new Linear(4, 3, true, F64, CPU, 5);
         Linear b = new Linear(4, 3, false, F64, CPU, 6)) {
      Tensor x = Tensor.randn(new long[] {8, 4}, F64, CPU, 7), y = Tensor.randn(new long[] {8, 3}, F64, CPU, 8);
      checkAgainstSeparate(a, x, y, 1e-12);
      checkAgainstSeparate(b, x, y, 1e-12);
      Tensor xs = Tensor.randn(new long[] {3, 5, 4}, F64, CPU, 9),
             ys = Tensor.randn(new long[] {3, 5, 3}, F64, CPU, 10);
      checkAgainstSeparate(a, xs, ys, 1e-12);
    }
  }

  @Test
  void multiHeadAttentionEqualsSeparateBackwardPasses() {
    try (Scope s = Scope.open(); MultiHeadAttention mha = new MultiHeadAttention(8, 2, 1, true, F64, CPU, 11)) {
      Tensor x = Tensor.randn(new long[] {3, 5, 8}, F64, CPU, 12), y = Tensor.randn(new long[] {3, 5, 8}, F64, CPU, 13);
      checkAgainstSeparate(mha, x, y, 1e-11);
    }
  }

  @Test
  void linearSelfAttentionEqualsSeparateBackwardPasses() {
    try (Scope s = Scope.open(); LinearSelfAttention lsa = new LinearSelfAttention(
                                     5, 2, 3, 4, true, LinearAttention.FeatureMap.IDENTITY, 0.3, F64, CPU, 14)) {
      Tensor x = Tensor.randn(new long[] {4, 6, 5}, F64, CPU, 15), y = Tensor.randn(new long[] {4, 6, 5}, F64, CPU, 16);
      checkAgainstSeparate(lsa, x, y, 1e-11);
    }
  }

  @Test
  void fusedNormsEqualNormsOfTheMaterialisedGradients() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, F64})
        for (long[] sh : new long[][] {{6, 1, 9, 4}, {4, 3, 5, 7}, {3, 40, 6, 2}, {2, 1, 1, 1}}) {
          boolean seq = sh[1] > 1;
          long[] xs = seq ? new long[] {sh[0], sh[1], sh[2]} : new long[] {sh[0], sh[2]};
          long[] gs = seq ? new long[] {sh[0], sh[1], sh[3]} : new long[] {sh[0], sh[3]};
          Tensor x = Tensor.randn(xs, t, CPU, sh[2]), g = Tensor.randn(gs, t, CPU, sh[3] + 100);
          Tensor full = PerExample.linearWeightGradients(x.to(F64), g.to(F64));
          double[] want = full.reshape(sh[0], sh[2] * sh[3]).square().sum(1, false).toDoubleArray();
          double[] got = PerExample.linearNormsSquared(x, g).toDoubleArray();
          close(want, got, t == F64 ? 1e-13 : 3e-6, t + " " + java.util.Arrays.toString(sh));
        }
      // strided (non-contiguous) inputs are copied first
      Tensor x = Tensor.randn(new long[] {4, 6}, F64, CPU, 1).narrow(1, 1, 4);
      Tensor g = Tensor.randn(new long[] {3, 4}, F64, CPU, 2).mT();
      close(PerExample.linearWeightGradients(x, g).reshape(4, 12).square().sum(1, false).toDoubleArray(),
          PerExample.linearNormsSquared(x, g).toDoubleArray(), 1e-13, "strided");
    }
  }

  @Test
  void normsAreBitwiseDeterministicAcrossRunsAndThreadCounts() {
    int before = MkNative.mk_runtime_num_threads();
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {512, 16, 24}, DType.F32, CPU, 1);
      Tensor g = Tensor.randn(new long[] {512, 16, 12}, DType.F32, CPU, 2);
      double[] first = PerExample.linearNormsSquared(x, g).toDoubleArray();
      for (int threads : new int[] {1, 2, 3}) {
        MkNative.mk_runtime_set_num_threads(threads);
        assertArrayEquals(first, PerExample.linearNormsSquared(x, g).toDoubleArray(), 0.0, threads + " threads");
      }
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  @Test
  void dataRatingMetaGradientGoesThroughTheNorms() {
    // d/dx of Σ_b ‖∇_θ L_b‖²: through the fused norm (createGraph) equals through the materialised gradients
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {3, 4, 2}, Activation.TANH, F64, CPU, 21)) {
      Tensor x = Tensor.randn(new long[] {5, 3}, F64, CPU, 22).requiresGrad(true);
      Tensor y = Tensor.randn(new long[] {5, 2}, F64, CPU, 23);
      Tensor viaKernel = PerExample.normsSquared(net, x, sqLoss(y), true).sum();
      Tensor viaGrads = null;
      for (Tensor g : PerExample.gradients(net, x, sqLoss(y), true).gradients().values()) {
        Tensor part = g.square().sum();
        viaGrads = viaGrads == null ? part : viaGrads.add(part);
      }
      assertEquals(viaGrads.item(), viaKernel.item(), 1e-12 * viaGrads.item());
      double[] a = Autograd.grad(viaKernel, List.of(x), false).get(0).toDoubleArray();
      double[] b = Autograd.grad(viaGrads, List.of(x), false).get(0).toDoubleArray();
      close(b, a, 1e-11, "meta-gradient");
    }
  }

  @Test
  void badInputIsRefusedWithTheShapes() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {3, 4, 2}, Activation.TANH, F64, CPU, 1);
         LayerNorm ln = new LayerNorm(3, 1e-5, F64, CPU)) {
      Tensor x = Tensor.randn(new long[] {5, 3}, F64, CPU, 1), g = Tensor.randn(new long[] {5, 2}, F64, CPU, 2);
      Tensor g4 = Tensor.randn(new long[] {4, 2}, F64, CPU, 3), g32 = g.castTo(DType.F32);
      Tensor x1 = Tensor.randn(new long[] {3}, F64, CPU, 4), y = Tensor.randn(new long[] {5, 2}, F64, CPU, 5);
      List<Tensor> all = List.of(x, g, g4, g32, x1, y);
      rejects(MK,
          () -> PerExample.linearNormsSquared(x, g4), all, "PerExample.linearNormsSquared", "F64[5, 3]", "F64[4, 2]");
      rejects(MK, () -> PerExample.linearNormsSquared(x, g32), all, "PerExample.linearNormsSquared", "F32[5, 2]");
      rejects(MK, () -> PerExample.linearWeightGradients(x1, g), all, "PerExample.linearWeightGradients", "F64[3]");
      rejects(MK,
          ()
              -> PerExample.linearNormsSquared(x, Tensor.randn(new long[] {5, 2, 2}, F64, CPU, 6)),
          all, "PerExample.linearNormsSquared", "[5, 2, 2]");
      rejects(MK,
          ()
              -> PerExample.gradients(net, Tensor.randn(new long[] {5, 4}, F64, CPU, 7), sqLoss(y), false),
          all, "PerExample.gradients", "F64[5, 4]", "MLP");
      rejects(MK,
          ()
              -> PerExample.gradients(net, x, out -> out.sub(y).square().sum(), false),
          all, "PerExample.gradients", "one value per example", "[5]");
      rejects(MK, () -> PerExample.norms(ln, x, out -> out.sum(1, false), false), all, "PerExample.norms", "LayerNorm");
      Tensor closed = Tensor.randn(new long[] {5, 3}, F64, CPU, 8);
      closed.close();
      assertThrows(IllegalStateException.class, () -> PerExample.linearNormsSquared(closed, g));
      // native refuses what Java would never pass: a negative size
      assertNotEquals(0,
          MkNative.mk_meta_per_example_linear_norm(
              CPU.code, F64.code, -1, 1, 3, 2, x.address("t"), g.address("t"), g4.address("t"), 0L));
      assertTrue(MkNative.mk_last_error().getString().contains("batch"), MkNative.mk_last_error().getString());
    }
  }
  /**
   * A jvp around per-example norms without createGraph: the layer inputs were detached, cutting
   * their tangents while the gradients kept theirs (a partial product, 2026-12-08). Against the
   * same jvp with createGraph and central differences.
   */
  @Test
  void jvpThroughNormsWithoutCreateGraphIsTheWholeDerivative() {
    try (Scope s = Scope.open();
        MLP net = new MLP(new long[] {3, 4, 2}, Activation.TANH, DType.F64, Device.CPU, 5)) {
      Tensor x = Tensor.uniform(new long[] {3, 3}, -1, 1, DType.F64, Device.CPU, 1);
      Tensor y = Tensor.uniform(new long[] {3, 2}, -1, 1, DType.F64, Device.CPU, 2);
      Tensor t = Tensor.randn(x.shape(), DType.F64, Device.CPU, 5);
      Function<Tensor, Tensor> loss = out -> out.sub(y).square().sum(1, false);
      double[] fd = new double[3];
      double eps = 1e-6;
      try (var ng = Autograd.noGrad()) {
        double[] up = PerExample.normsSquared(net, x.add(t.mul(eps)), loss, false).toDoubleArray();
        double[] down = PerExample.normsSquared(net, x.sub(t.mul(eps)), loss, false).toDoubleArray();
        for (int i = 0; i < 3; i++) fd[i] = (up[i] - down[i]) / (2 * eps);
      }
      for (boolean cg : new boolean[] {false, true}) {
        double[] jt = Autograd.jvp(xs -> List.of(PerExample.normsSquared(net, xs.get(0), loss, cg)), List.of(x), List.of(t))
            .tangents().get(0).toDoubleArray();
        for (int i = 0; i < 3; i++) assertEquals(fd[i], jt[i], 1e-6 * Math.max(1, Math.abs(fd[i])), "createGraph " + cg);
      }
    }
  }
}
