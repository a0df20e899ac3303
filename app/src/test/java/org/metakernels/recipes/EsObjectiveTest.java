package org.metakernels.recipes;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The es-objective recipe with a small budget: ES improves the meta-objective over the cross-entropy it starts from.
 */
class EsObjectiveTest {
  static final EsObjective.Config SMALL =
      EsObjective.Config.defaults().withGenerations(15).withPopulation(12).withInner(15, 0.1).withEval(16, 3);

  @Test
  void esImprovesTheMetaObjectiveOverCrossEntropy() {
    EsObjective.Result r = EsObjective.run(SMALL, null);
    int g = r.centreLoss().length;
    assertEquals(SMALL.generations(), g);
    // generation 1's centre is φ₀, the plain cross-entropy: the same loss as the baseline member
    assertEquals(r.baselineLoss()[0], r.centreLoss()[0], 1e-6 * r.baselineLoss()[0]);
    // held out (fresh inits, paired): the learned objective ends lower, by a margin far outside the noise
    assertTrue(r.improvement() > 4 * r.improvementSe() && r.improvement() > 0.02 * r.ceLoss(),
        "improvement " + r.improvement() + " +- " + r.improvementSe() + " on CE " + r.ceLoss());
    assertTrue(r.wins() >= SMALL.evalRuns() - 2, "better on " + r.wins() + " of " + SMALL.evalRuns());
    // the training curves start from the same inits
    assertEquals(r.ceCurve()[0], r.learnedCurve()[0], 1e-9);
    // the tuned baseline: the grid's lowest mean on the meta-training tasks; at the configured step
    // it is the plain cross-entropy run itself
    int best = 0;
    for (int q = 0; q < r.lrGrid().length; q++) if (r.lrGridLoss()[q] < r.lrGridLoss()[best]) best = q;
    assertEquals(r.lrGrid()[best], r.tunedLr(), 0.0);
    if (r.tunedLr() == SMALL.innerLr()) assertEquals(r.ceLoss(), r.tunedCeLoss(), 0.0);
    assertTrue(Double.isFinite(r.tunedCeLoss()) && r.tunedWins() >= 0 && r.tunedWins() <= SMALL.evalRuns());
  }

  @Test
  void theStartingObjectiveIsCrossEntropy() {
    EsObjective.Config c = SMALL;
    try (Scope s = Scope.open()) {
      Tensor z = Tensor.randn(new long[] {2, 5, c.classes()}, DType.F64, Device.CPU, 1);
      double[] oh = new double[5 * c.classes()];
      for (int i = 0; i < 5; i++) oh[i * c.classes() + (i % c.classes())] = 1;
      Tensor y = Tensor.of(oh, 5, c.classes());
      Tensor a1 = Tensor.randn(new long[] {2, EsObjective.FEATURES * c.lossHidden()}, DType.F64, Device.CPU, 2);
      Tensor phi = Tensor.concat(
          List.of(a1,
              Tensor.zeros(new long[] {2, c.objectiveParameters() - EsObjective.FEATURES * c.lossHidden()}, DType.F64,
                  Device.CPU)),
          1);
      double[] got = EsObjective.objective(c, phi, z, y, 0.3).toDoubleArray();
      double[] ce = z.logsumexp(2, false).sub(z.mul(y).sum(2, false)).toDoubleArray();
      assertArrayEquals(ce, got, 1e-12);
    }
  }
}
