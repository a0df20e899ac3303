package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** layerNorm, mse and crossEntropy against float64 loops. */
class FunctionalTest {
  static Nd in(Random r, DType d, double lo, double hi, int... shape) {
    Nd x = Nd.uniform(r, lo, hi, shape);
    return d == DType.F32 ? x.roundToFloat() : x;
  }

  static Nd layerNormRef(Nd x, Nd w, Nd b, double eps) {
    int last = x.rank() - 1;
    int n = x.shape[last];
    return x.alongDim(last, v -> {
      double m = Nd.mean(v), var = Nd.var(v, false);
      double[] o = new double[n];
      for (int i = 0; i < n; i++) {
        o[i] = (v[i] - m) / Math.sqrt(var + eps);
        if (w != null) o[i] *= w.data[i];
        if (b != null) o[i] += b.data[i];
      }
      return o;
    });
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void layerNormWithAndWithoutAffine(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(51 + d.ordinal());
      double tol = d == DType.F64 ? 1e-11 : 2e-5;
      for (int[] shape : new int[][] {{5}, {3, 7}, {2, 3, 17}, {400, 130}}) {
        int n = shape[shape.length - 1];
        Nd x = in(r, d, -2, 3, shape), w = in(r, d, 0.5, 2, n), b = in(r, d, -1, 1, n);
        for (double eps : new double[] {1e-5, 0.1}) {
          Ref.assertClose(Functional.layerNorm(x.tensor(d), w.tensor(d), b.tensor(d), eps),
              layerNormRef(x, w, b, eps), tol, tol);
          Ref.assertClose(Functional.layerNorm(x.tensor(d), null, null, eps), layerNormRef(x, null, null, eps), tol, tol);
          Ref.assertClose(Functional.layerNorm(x.tensor(d), w.tensor(d), null, eps), layerNormRef(x, w, null, eps), tol, tol);
        }
      }
      // a non-contiguous input
      Nd x = in(r, d, -2, 3, 6, 4);
      Ref.assertClose(Functional.layerNorm(x.tensor(d).mT(), null, null, 1e-5),
          layerNormRef(x.transpose(0, 1), null, null, 1e-5), tol, tol);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void meanSquaredError(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(52 + d.ordinal());
      for (int[] shape : new int[][] {{1}, {7}, {3, 5}, {300, 150}}) {
        Nd p = in(r, d, -2, 2, shape), t = in(r, d, -2, 2, shape);
        double ref = Nd.mean(Nd.zip(p, t, (a, b) -> (a - b) * (a - b)).data);
        Tensor y = Functional.mse(p.tensor(d), t.tensor(d));
        assertEquals(0, y.rank());
        assertEquals(ref, y.item(), Ref.rtol(d) * ref * 10);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void crossEntropyOfLogits(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(53 + d.ordinal());
      for (int[] nc : new int[][] {{1, 1}, {1, 5}, {6, 3}, {17, 10}, {4000, 12}}) {
        int n = nc[0], c = nc[1];
        Nd logits = in(r, d, -4, 4, n, c);
        long[] tg = new long[n];
        for (int i = 0; i < n; i++) tg[i] = r.nextInt(c);
        Nd lsm = logits.alongDim(1, Nd::logSoftmax);
        double ref = 0;
        for (int i = 0; i < n; i++) ref -= lsm.at(i, (int) tg[i]);
        ref /= n;
        Tensor y = Functional.crossEntropy(logits.tensor(d), Tensor.ofIndices(tg, n));
        assertEquals(0, y.rank());
        assertEquals(ref, y.item(), (d == DType.F64 ? 1e-12 : 1e-5) * (1 + Math.abs(ref)));
      }
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void dropoutKeepsWhereTheSeededUniformExceedsP(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(54 + d.ordinal());
      Nd x = in(r, d, -2, 2, 300, 70);
      double p = 0.3;
      double[] u = Tensor.rand(new long[] {300, 70}, d, org.metakernels.tensor.Device.CPU, 9).toDoubleArray();
      double[] y = Functional.dropout(x.tensor(d), p, 9).toDoubleArray();
      int kept = 0;
      for (int i = 0; i < y.length; i++) {
        double want = u[i] > p ? x.data[i] * (1 / (1 - p)) : 0;
        assertEquals(want, y[i], Math.abs(want) * Ref.rtol(d), "element " + i);
        kept += u[i] > p ? 1 : 0;
      }
      assertEquals(0.7, kept / (double) y.length, 0.01, "share kept");
      assertArrayEquals(y, Functional.dropout(x.tensor(d), p, 9).toDoubleArray(), 0, "same seed, same mask");
      assertFalse(java.util.Arrays.equals(y, Functional.dropout(x.tensor(d), p, 10).toDoubleArray()), "a new seed");
      Tensor xt = x.tensor(d);
      assertSame(xt, Functional.dropout(xt, 0, 9), "p = 0 is x itself");
      for (double v : Functional.dropout(xt, 1, 9).toDoubleArray()) assertEquals(0, v, 0);
    }
  }

  @org.junit.jupiter.api.Test
  void dropoutDerivativesToOrderTwo() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {6, 5}, DType.F64, org.metakernels.tensor.Device.CPU, 3).requiresGrad(true);
      // the mask fixed by the seed: a smooth function of x around it
      org.metakernels.autograd.GradCheck.check(xs -> Functional.dropout(xs.get(0), 0.4, 21).tanh(), java.util.List.of(x), 2);
    }
  }

  @org.junit.jupiter.api.Test
  void dropoutRefusesPOutsideTheUnitInterval() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.ones(new long[] {2, 3}, DType.F32, org.metakernels.tensor.Device.CPU);
      for (double p : new double[] {-0.1, 1.5, Double.NaN}) {
        String m = assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> Functional.dropout(x, p, 1))
            .getMessage();
        assertTrue(m.startsWith("dropout:") && m.contains("[2, 3]"), m);
      }
      Tensor i = Tensor.zeros(new long[] {2}, DType.I64, org.metakernels.tensor.Device.CPU);
      String m = assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> Functional.dropout(i, 0.5, 1))
          .getMessage();
      assertTrue(m.startsWith("dropout:"), m);
    }
  }
}
