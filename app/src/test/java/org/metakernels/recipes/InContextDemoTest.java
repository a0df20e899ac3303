package org.metakernels.recipes;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
import org.metakernels.recipes.InContextLearning.Config;

/** The demo's claims with a small budget: one trained LSA layer is one step of GD with the best step size. */
class InContextDemoTest {
  @Test
  void oneLayerMatchesGradientDescent() {
    Config c = Config.defaults().withSteps(700).withBatch(512).withEvalTasks(4000).withSeed(3);
    InContextDemo.Result r = InContextDemo.run(c, new int[0], 0, null);
    // predicting zero costs ~2x more than GD: the comparison is not vacuous
    assertTrue(r.gdLoss() < 0.7 * r.zeroLoss(), "GD loss " + r.gdLoss() + " vs zero " + r.zeroLoss());
    assertTrue(Math.abs(r.relativeDifference()) < 0.05, "LSA " + r.lsaLoss() + " vs GD " + r.gdLoss());
    assertTrue(r.predCosine() > 0.98, "prediction cosine " + r.predCosine());
    assertTrue(r.sensitivityCosine() > 0.98, "sensitivity cosine " + r.sensitivityCosine());
    assertTrue(r.identityCosine() > 0.95, "W_K^T W_Q vs identity " + r.identityCosine());
    assertTrue(r.yPickShare() > 0.95, "P W_V y pick " + r.yPickShare());
    assertTrue(r.gdEta() > 0.3 && r.gdEta() < 1.2, "eta* " + r.gdEta());
  }

  @Test
  void gdStepSizeScanFindsTheQuadraticOptimum() {
    try (var s = org.metakernels.tensor.Scope.open()) {
      LinearRegressionTasks t = LinearRegressionTasks.sample(3000, 10, 10, org.metakernels.tensor.DType.F64,
          org.metakernels.tensor.Device.CPU, 5);
      double eta = InContextLearning.scan(e -> InContextLearning.loss(GradientDescentLearner.oneStep(t, e), t.queryY()));
      // loss(η) = ½ E(η s − y)² with s = GD's one-step prediction at η = 1: optimum E[s y] / E[s²]
      double[] sv = GradientDescentLearner.oneStep(t, 1.0).toDoubleArray(), y = t.queryY().toDoubleArray();
      double sy = 0, ss = 0;
      for (int i = 0; i < sv.length; i++) {
        sy += sv[i] * y[i];
        ss += sv[i] * sv[i];
      }
      assertEquals(sy / ss, eta, 1e-6 * Math.abs(sy / ss));
    }
  }
}
