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
}
