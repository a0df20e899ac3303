package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.Forward;
import org.metakernels.autograd.GradCheck;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Functional.infoNce and infoNceLogits (the fused InfoNCE rows, kernels/cpu/infonce.cpp) against a
 * float64 loop and the composed form; GradCheck to order 2 through the fused backward; forward mode
 * against reverse mode; the edge rows; their refusals.
 */
class InfoNceTest {
  static double[] uniform(Random r, int n) {
    double[] v = new double[n];
    for (int i = 0; i < n; i++) v[i] = 2 * r.nextDouble() - 1;
    return v;
  }

  /** The loss written out: cosines, temperature, positives' logsumexp, weighted negatives. */
  static double reference(double[] a, double[] b, int n, int d, double tau, double[] pos, double[] logW) {
    double total = 0;
    for (int i = 0; i < n; i++) {
      double p = 0, all = 0;
      for (int j = 0; j < n; j++) {
        double dot = 0, na = 0, nb = 0;
        for (int k = 0; k < d; k++) {
          dot += a[i * d + k] * b[j * d + k];
          na += a[i * d + k] * a[i * d + k];
          nb += b[j * d + k] * b[j * d + k];
        }
        double e = Math.exp(dot / Math.sqrt(na * nb) / tau);
        boolean positive = pos == null ? i == j : pos[i * n + j] == 1;
        if (positive) {
          p += e;
          all += e;
        } else {
          all += (logW == null ? 1 : Math.exp(logW[i * n + j])) * e;
        }
      }
      total += Math.log(all) - Math.log(p);
    }
    return total / n;
  }

  @Test
  void matchesTheLoopWithAndWithoutWeightsAndPositives() {
    try (Scope s = Scope.open()) {
      Random r = new Random(7);
      int n = 9, d = 5;
      double[] a = uniform(r, n * d), b = uniform(r, n * d), logW = uniform(r, n * n), pos = new double[n * n];
      for (int i = 0; i < n; i++) {
        pos[i * n + i] = 1;
        pos[i * n + (i + 3) % n] = 1; // a second positive per row
      }
      Tensor ta = Tensor.of(a, n, d), tb = Tensor.of(b, n, d);
      Tensor tp = Tensor.of(pos, n, n), tw = Tensor.of(logW, n, n);
      assertEquals(reference(a, b, n, d, 0.5, null, null), Functional.infoNce(ta, tb, 0.5, null, null).item(), 1e-9);
      assertEquals(reference(a, b, n, d, 0.3, null, logW), Functional.infoNce(ta, tb, 0.3, null, tw).item(), 1e-9);
      assertEquals(reference(a, b, n, d, 0.8, pos, null), Functional.infoNce(ta, tb, 0.8, tp, null).item(), 1e-9);
      assertEquals(reference(a, b, n, d, 0.8, pos, logW), Functional.infoNce(ta, tb, 0.8, tp, tw).item(), 1e-9);
      // weights of zero log (w = 1) are plain InfoNCE; F32 agrees with F64
      Tensor zeros = Tensor.of(new double[n * n], n, n);
      assertEquals(Functional.infoNce(ta, tb, 0.5, null, null).item(),
          Functional.infoNce(ta, tb, 0.5, null, zeros).item(), 1e-9);
      double f32 =
          Functional.infoNce(ta.to(DType.F32), tb.to(DType.F32), 0.5, tp.to(DType.F32), tw.to(DType.F32)).item();
      assertEquals(reference(a, b, n, d, 0.5, pos, logW), f32, 1e-5);
      // gradients into the embeddings and the weights of negatives only
      Tensor ga = ta.detach().requiresGrad(true), gw = tw.detach().requiresGrad(true);
      Functional.infoNce(ga, tb, 0.5, tp, gw).backward();
      assertTrue(ga.grad() != null);
      double[] g = gw.grad().toDoubleArray();
      for (int i = 0; i < n * n; i++)
        if (pos[i] == 1) assertEquals(0.0, g[i], 0.0, "the weight of a positive has no effect");
    }
  }

  @Test
  void refusesBadShapesAndTemperatures() {
    try (Scope s = Scope.open()) {
      Tensor a = Tensor.of(new double[12], 4, 3), b = Tensor.of(new double[12], 4, 3);
      Tensor wrongB = Tensor.of(new double[15], 5, 3), mask = Tensor.of(new double[9], 3, 3);
      MetakernelsException e =
          assertThrows(MetakernelsException.class, () -> Functional.infoNce(a, wrongB, 0.5, null, null));
      assertTrue(e.getMessage().contains("infoNce") && e.getMessage().contains("[5, 3]"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Functional.infoNce(a, b, 0.5, mask, null));
      assertTrue(e.getMessage().contains("infoNce") && e.getMessage().contains("[3, 3]"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Functional.infoNce(a, b, 0.0, null, null));
      assertTrue(e.getMessage().contains("tau"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Functional.infoNce(a, b.to(DType.F32), 0.5, null, null));
      assertTrue(e.getMessage().contains("infoNce"), e.getMessage());
      e = assertThrows(
          MetakernelsException.class, () -> Functional.infoNce(a.reshape(12), b.reshape(12), 0.5, null, null));
      assertTrue(e.getMessage().contains("infoNce"), e.getMessage());
    }
  }

  /** The per-row losses written out over given logits (long double is not needed at these sizes). */
  static double[] rowsReference(double[] s, int b, int n, double[] pos, double[] logW) {
    double[] out = new double[b];
    for (int i = 0; i < b; i++) {
      double p = 0, all = 0;
      for (int j = 0; j < n; j++) {
        double e = Math.exp(s[i * n + j]);
        boolean positive = pos == null ? i == j : pos[i * n + j] != 0;
        if (positive) {
          p += e;
          all += e;
        } else {
          all += (logW == null ? 1 : Math.exp(logW[i * n + j])) * e;
        }
      }
      out[i] = Math.log(all) - Math.log(p);
    }
    return out;
  }

  static double[] maskWithTwoPositives(int b, int n) {
    double[] pos = new double[b * n];
    for (int i = 0; i < b; i++) {
      pos[i * n + i % n] = 1;
      pos[i * n + (i + 3) % n] = 1;
    }
    return pos;
  }

  @Test
  void logitsRowsMatchTheLoopOnRectangularLogits() {
    try (Scope sc = Scope.open()) {
      Random r = new Random(11);
      int b = 6, n = 10;
      double[] s = uniform(r, b * n), logW = uniform(r, b * n), pos = maskWithTwoPositives(b, n);
      logW[3] = Double.NEGATIVE_INFINITY; // a dropped negative
      for (int i = 0; i < s.length; i++) s[i] *= 4;
      Tensor ts = Tensor.of(s, b, n), tp = Tensor.of(pos, b, n), tw = Tensor.of(logW, b, n);
      for (Tensor m : new Tensor[] {null, tp})
        for (Tensor w : new Tensor[] {null, tw}) {
          double[] want = rowsReference(s, b, n, m == null ? null : pos, w == null ? null : logW);
          double[] got = Functional.infoNceLogits(ts, m, w).toDoubleArray();
          double[] f32 = Functional.infoNceLogits(ts.to(DType.F32), m == null ? null : m.to(DType.F32),
                                    w == null ? null : w.to(DType.F32))
                             .toDoubleArray();
          for (int i = 0; i < b; i++) {
            assertEquals(want[i], got[i], 1e-12, "row " + i);
            assertEquals(want[i], f32[i], 1e-5, "F32 row " + i);
          }
        }
      // a transposed (non-contiguous) view gives the same as its copy
      Tensor sq = Tensor.of(uniform(r, 49), 7, 7);
      assertEquals(Functional.infoNceLogits(sq.mT().contiguous(), null, null).sum().item(),
          Functional.infoNceLogits(sq.mT(), null, null).sum().item(), 0.0);
    }
  }

  @Test
  void fusedRowsAreDeterministicAndHandleEdgeRows() {
    try (Scope sc = Scope.open()) {
      Random r = new Random(5);
      int b = 64, n = 300;
      double[] s = uniform(r, b * n), pos = maskWithTwoPositives(b, n);
      Tensor ts = Tensor.of(s, b, n).to(DType.F32), tp = Tensor.of(pos, b, n).to(DType.F32);
      double[] first = Functional.infoNceLogits(ts, tp, null).toDoubleArray();
      double[] second = Functional.infoNceLogits(ts, tp, null).toDoubleArray();
      for (int i = 0; i < b; i++) assertEquals(Double.doubleToLongBits(first[i]), Double.doubleToLongBits(second[i]));
      // a row without a positive: +inf loss; its gradient has no positive part and stays finite
      pos[0] = 0;
      pos[3] = 0;
      Tensor none = Tensor.of(pos, b, n);
      Tensor leaf = Tensor.of(s, b, n).requiresGrad(true);
      Tensor rows = Functional.infoNceLogits(leaf, none, null);
      assertEquals(Double.POSITIVE_INFINITY, rows.toDoubleArray()[0]);
      rows.narrow(0, 1, b - 1).sum().backward();
      for (double g : leaf.grad().toDoubleArray()) assertTrue(Double.isFinite(g));
      // every logit of a row −inf but the positives: loss 0
      double[] only = new double[9];
      java.util.Arrays.fill(only, Double.NEGATIVE_INFINITY);
      only[0] = 1.5;
      only[4] = -2;
      only[8] = 0.25;
      assertEquals(0.0, Functional.infoNceLogits(Tensor.of(only, 3, 3), null, null).sum().item(), 0.0);
    }
  }

  @Test
  void gradCheckOrderTwoThroughTheFusedBackward() {
    try (Scope sc = Scope.open()) {
      Random r = new Random(3);
      int b = 5, n = 7, d = 4;
      Tensor s = Tensor.of(uniform(r, b * n), b, n), w = Tensor.of(uniform(r, b * n), b, n);
      Tensor p = Tensor.of(maskWithTwoPositives(b, n), b, n);
      GradCheck.check(xs -> Functional.infoNceLogits(xs.get(0), p, xs.get(1)), List.of(s, w), 2);
      GradCheck.check(xs -> Functional.infoNceLogits(xs.get(0), null, xs.get(1)), List.of(s, w), 2);
      GradCheck.check(xs -> Functional.infoNceLogits(xs.get(0), null, null), List.of(s), 2);
      GradCheck.check(xs -> Functional.infoNceLogits(xs.get(0), p, null).mul(xs.get(0).sum(1, false)), List.of(s), 2);
      // the whole loss: cosines, temperature, weights learned (AdaMEOW)
      Tensor a = Tensor.of(uniform(r, b * d), b, d), c = Tensor.of(uniform(r, b * d), b, d);
      Tensor pb = Tensor.of(maskWithTwoPositives(b, b), b, b), wb = Tensor.of(uniform(r, b * b), b, b);
      GradCheck.check(xs -> Functional.infoNce(xs.get(0), xs.get(1), 0.5, pb, xs.get(2)), List.of(a, c, wb), 2);
      GradCheck.check(xs -> Functional.infoNce(xs.get(0), xs.get(1), 0.3, null, null), List.of(a, c), 2);
    }
  }

  @Test
  void forwardModeAgreesWithReverseMode() {
    try (Scope sc = Scope.open()) {
      Random r = new Random(9);
      int b = 4, n = 6;
      Tensor s = Tensor.of(uniform(r, b * n), b, n), w = Tensor.of(uniform(r, b * n), b, n);
      Tensor p = Tensor.of(maskWithTwoPositives(b, n), b, n);
      Tensor ts = Tensor.of(uniform(r, b * n), b, n), tw = Tensor.of(uniform(r, b * n), b, n);
      java.util.function.Function<List<Tensor>, Tensor> f =
          xs -> Functional.infoNceLogits(xs.get(0), p, xs.get(1)).mul(Tensor.of(new double[] {1, -2, 0.5, 3}, b)).sum();
      // J t by forward mode against ∇f · t by reverse mode
      Forward.Jvp jvp = Autograd.jvp(xs -> List.of(f.apply(xs)), List.of(s, w), List.of(ts, tw));
      Tensor sl = s.detach().requiresGrad(true), wl = w.detach().requiresGrad(true);
      List<Tensor> g = Autograd.grad(f.apply(List.of(sl, wl)), List.of(sl, wl), false);
      double dot = g.get(0).mul(ts).sum().item() + g.get(1).mul(tw).sum().item();
      assertEquals(dot, jvp.tangents().get(0).item(), 1e-10);
      // H v forward over reverse (the backward op's tangent rule) against reverse over reverse
      List<Tensor> fwd = Autograd.hvpForward(f, List.of(s, w), List.of(ts, tw));
      List<Tensor> rev = Autograd.hvp(f, List.of(s, w), List.of(ts, tw));
      for (int k = 0; k < 2; k++) {
        double[] x = fwd.get(k).toDoubleArray(), y = rev.get(k).toDoubleArray();
        for (int i = 0; i < x.length; i++) assertEquals(y[i], x[i], 1e-10, "input " + k + " entry " + i);
      }
    }
  }

  @Test
  void logitsRowsRefuseBadInput() {
    try (Scope sc = Scope.open()) {
      Tensor s = Tensor.of(new double[12], 3, 4), mask = Tensor.of(new double[12], 3, 4);
      Tensor tall = Tensor.of(new double[12], 4, 3);
      MetakernelsException e =
          assertThrows(MetakernelsException.class, () -> Functional.infoNceLogits(tall, null, null));
      assertTrue(e.getMessage().contains("infoNceLogits") && e.getMessage().contains("[4, 3]"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Functional.infoNceLogits(s, tall, null));
      assertTrue(e.getMessage().contains("infoNceLogits") && e.getMessage().contains("[4, 3]"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Functional.infoNceLogits(s, null, mask.to(DType.F32)));
      assertTrue(e.getMessage().contains("infoNceLogits"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Functional.infoNceLogits(s.reshape(12), null, null));
      assertTrue(e.getMessage().contains("infoNceLogits") && e.getMessage().contains("[12]"), e.getMessage());
      e = assertThrows(MetakernelsException.class,
          () -> Functional.infoNceLogits(Tensor.ofIndices(new long[] {1, 2}, 1, 2), null, null));
      assertTrue(e.getMessage().contains("infoNceLogits"), e.getMessage());
      e = assertThrows(
          MetakernelsException.class, () -> Functional.infoNceLogits(Tensor.of(new double[0], 0, 3), null, null));
      assertTrue(e.getMessage().contains("infoNceLogits"), e.getMessage());
      Tensor closed = Tensor.of(new double[9], 3, 3);
      closed.close();
      // a freed tensor: IllegalStateException naming the op, as every op (BadInputTest)
      IllegalStateException f =
          assertThrows(IllegalStateException.class, () -> Functional.infoNceLogits(closed, null, null));
      assertTrue(f.getMessage().contains("infoNceLogits"), f.getMessage());
      f = assertThrows(IllegalStateException.class, () -> Functional.infoNceLogits(s, closed, null));
      assertTrue(f.getMessage().contains("infoNceLogits"), f.getMessage());
      // nothing was changed by the refusals
      for (double v : s.toDoubleArray()) assertEquals(0.0, v);
    }
  }
}
