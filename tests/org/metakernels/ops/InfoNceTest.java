package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** Functional.infoNce against a float64 loop; its refusals. */
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
}
