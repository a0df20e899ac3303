package org.metakernels.recipes;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.metakernels.nn.LinearSelfAttention;
import org.metakernels.nn.Weights;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The recipes' gradient-descent learner against a linear self-attention layer with weights set by
 * formula (the module's own tests are in the core: {@code nn.LinearSelfAttentionTest}).
 */
class LinearSelfAttentionGradientDescentTest {

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
      assertArrayEquals(gd.toDoubleArray(), pred.toDoubleArray(), 1e-10, "construction vs GD");
      // and K stacked layers are K steps of GD in the token form
      Tensor e2 = l.forward(out, Weights.of(w));
      Tensor pred2 = e2.select(1, n).select(1, d).neg();
      Tensor eta2 = Tensor.scalar(eta, DType.F64, Device.CPU);
      Tensor gd2 = GradientDescentLearner.predict(t, new Tensor[] {eta2, eta2}, null);
      assertArrayEquals(gd2.toDoubleArray(), pred2.toDoubleArray(), 1e-10, "2 layers vs 2 GD steps");
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
}
