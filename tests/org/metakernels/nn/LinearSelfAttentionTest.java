package org.metakernels.nn;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.GradCheck;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.recipes.GradientDescentLearner;
import org.metakernels.recipes.LinearRegressionTasks;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

class LinearSelfAttentionTest {

  /** e_j + P W_V Σ_{i<ctx} e_i (W_K e_i)ᵀ (W_Q e_j), computed with explicit loops over doubles. */
  static double[] reference(double[] e, int b, int t, int dim, int ctx, double[] wq, double[] wk, double[] wv, double[] p,
      int hd) {
    double[] out = e.clone();
    for (int bb = 0; bb < b; bb++) {
      for (int j = 0; j < t; j++) {
        double[] acc = new double[hd];
        double[] qj = new double[hd];
        for (int a = 0; a < hd; a++) for (int c = 0; c < dim; c++) qj[a] += wq[a * dim + c] * e[(bb * t + j) * dim + c];
        for (int i = 0; i < ctx; i++) {
          double[] ki = new double[hd], vi = new double[hd];
          for (int a = 0; a < hd; a++)
            for (int c = 0; c < dim; c++) {
              ki[a] += wk[a * dim + c] * e[(bb * t + i) * dim + c];
              vi[a] += wv[a * dim + c] * e[(bb * t + i) * dim + c];
            }
          double s = 0;
          for (int a = 0; a < hd; a++) s += ki[a] * qj[a];
          for (int a = 0; a < hd; a++) acc[a] += s * vi[a];
        }
        for (int c = 0; c < dim; c++) {
          double d = 0;
          for (int a = 0; a < hd; a++) d += p[c * hd + a] * acc[a];
          out[(bb * t + j) * dim + c] += d;
        }
      }
    }
    return out;
  }

  @Test
  void forwardMatchesLoopReference() {
    try (Scope s = Scope.open(); LinearSelfAttention l = new LinearSelfAttention(5, 1, 5, 4, true, FeatureMap.IDENTITY, 0.3,
        DType.F64, Device.CPU, 3)) {
      Tensor e = Tensor.randn(new long[] {3, 6, 5}, DType.F64, Device.CPU, 9);
      var ps = l.namedParameters();
      double[] ref = reference(e.toDoubleArray(), 3, 6, 5, 4, ps.get("wq").toDoubleArray(), ps.get("wk").toDoubleArray(),
          ps.get("wv").toDoubleArray(), ps.get("proj").toDoubleArray(), 5);
      Ref.assertClose(l.forward(e).toDoubleArray(), ref, 1e-12, 1e-12, "lsa");
    }
  }

  @Test
  void multiHeadGradCheckOrder2() {
    try (Scope s = Scope.open(); LinearSelfAttention l = new LinearSelfAttention(4, 2, 3, 3, true, FeatureMap.IDENTITY, 0.4,
        DType.F64, Device.CPU, 5)) {
      Tensor e = Tensor.randn(new long[] {2, 5, 4}, DType.F64, Device.CPU, 11);
      var names = List.copyOf(l.namedParameters().keySet());
      List<Tensor> inputs = new java.util.ArrayList<>(l.parameters());
      inputs.add(e);
      GradCheck.check(xs -> {
        Map<String, Tensor> w = new java.util.LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) w.put(names.get(i), xs.get(i));
        return l.forward(xs.get(names.size()), Weights.of(w)).tanh();
      }, inputs, 2);
    }
  }

  /**
   * The construction of von Oswald et al. (Proposition 1): W_Kᵀ W_Q = [[I, 0], [0, 0]] and
   * P W_V = [[0, 0], [0, −η]] make one LSA layer one step of GD from w = 0; the prediction is the
   * negated y slot of the query token. No training: the weights are set by formula.
   */
  @Test
  void handBuiltConstructionIsOneGradientDescentStep() {
    int d = 6, n = 9;
    double eta = 0.37;
    int dim = d + 1;
    double[] id = new double[dim * dim];
    for (int i = 0; i < d; i++) id[i * dim + i] = 1;
    double[] pv = new double[dim * dim];
    pv[d * dim + d] = -eta;
    double[] eye = new double[dim * dim];
    for (int i = 0; i < dim; i++) eye[i * dim + i] = 1;
    try (Scope s = Scope.open(); LinearSelfAttention l = new LinearSelfAttention(dim, 1, dim, n, true, FeatureMap.IDENTITY,
        0.1, DType.F64, Device.CPU, 1)) {
      LinearRegressionTasks t = LinearRegressionTasks.sample(256, n, d, DType.F64, Device.CPU, 77);
      Map<String, Tensor> w = Map.of("wq", Tensor.of(id, dim, dim), "wk", Tensor.of(eye, dim, dim),
          "wv", Tensor.of(pv, dim, dim), "proj", Tensor.of(eye, dim, dim));
      Tensor out = l.forward(t.tokens(), Weights.of(w));
      Tensor pred = out.select(1, n).select(1, d).neg();
      Tensor gd = GradientDescentLearner.oneStep(t, eta);
      Ref.assertClose(pred.toDoubleArray(), gd.toDoubleArray(), 1e-10, 0, "construction vs GD");
      // and K stacked layers are K steps of GD in the token form
      Tensor e2 = l.forward(out, Weights.of(w));
      Tensor pred2 = e2.select(1, n).select(1, d).neg();
      Tensor eta2 = Tensor.scalar(eta, DType.F64, Device.CPU);
      Tensor gd2 = GradientDescentLearner.predict(t, new Tensor[] {eta2, eta2}, null);
      Ref.assertClose(pred2.toDoubleArray(), gd2.toDoubleArray(), 1e-10, 0, "2 layers vs 2 GD steps");
      // GD in weight space: w1 = η Σ y_i x_i, w2 = w1 − η Σ (w1·x_i − y_i) x_i
      double[] x = t.x().toDoubleArray(), y = t.y().toDoubleArray();
      double[] p2 = pred2.toDoubleArray();
      for (int b = 0; b < 256; b++) {
        double[] w1 = new double[d];
        for (int i = 0; i < n; i++) for (int a = 0; a < d; a++) w1[a] += eta * y[b * (n + 1) + i] * x[(b * (n + 1) + i) * d + a];
        double[] w2 = w1.clone();
        for (int i = 0; i < n; i++) {
          double r = -y[b * (n + 1) + i];
          for (int a = 0; a < d; a++) r += w1[a] * x[(b * (n + 1) + i) * d + a];
          for (int a = 0; a < d; a++) w2[a] -= eta * r * x[(b * (n + 1) + i) * d + a];
        }
        double yq = 0;
        for (int a = 0; a < d; a++) yq += w2[a] * x[(b * (n + 1) + n) * d + a];
        assertEquals(yq, p2[b], 1e-10);
      }
    }
  }

  @Test
  void rejectsWrongTokenShape() {
    try (Scope s = Scope.open(); LinearSelfAttention l = new LinearSelfAttention(4, 1, 4, 3, true, FeatureMap.IDENTITY, 0.1,
        DType.F64, Device.CPU, 1)) {
      var e = assertThrows(MetakernelsException.class, () -> l.forward(Tensor.zeros(new long[] {2, 5, 3}, DType.F64, Device.CPU)));
      assertTrue(e.getMessage().contains("[2, 5, 3]"), e.getMessage());
      assertThrows(MetakernelsException.class, () -> l.forward(Tensor.zeros(new long[] {2, 2, 4}, DType.F64, Device.CPU)));
    }
  }
}
