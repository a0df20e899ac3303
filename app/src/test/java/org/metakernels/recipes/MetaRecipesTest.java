package org.metakernels.recipes;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The maml-sine and reweight recipes learn, on small settings, with margins far outside what a
 * lucky seed gives.
 */
class MetaRecipesTest {
  @Test
  void mamlAdaptsFasterThanPretraining() {
    MamlSine.Config c = new MamlSine.Config(10, 1000, 5, 10, 0.01, 3e-3, 100, 10, 2);
    List<MamlSine.MethodResult> r = MamlSine.run(c, List.of("maml", "fomaml", "pretrained"), null);
    MamlSine.MethodResult maml = r.get(0), fo = r.get(1), pre = r.get(2);
    // the pretrained net learns the mean over tasks (~0) and adapts slowly (measured: 2.44 after 10 steps)
    assertTrue(pre.lossAfterSteps()[10] > 1.5, "pretrained after 10 steps " + pre.lossAfterSteps()[10]);
    // measured: maml 0.80, fomaml 1.26 after 10 steps; one step already takes most of the way
    assertTrue(maml.lossAfterSteps()[10] < 0.5 * pre.lossAfterSteps()[10],
        "maml after 10 steps " + maml.lossAfterSteps()[10] + " vs pretrained " + pre.lossAfterSteps()[10]);
    assertTrue(fo.lossAfterSteps()[10] < 0.7 * pre.lossAfterSteps()[10],
        "fomaml after 10 steps " + fo.lossAfterSteps()[10] + " vs pretrained " + pre.lossAfterSteps()[10]);
    for (MamlSine.MethodResult m : List.of(maml, fo))
      assertTrue(m.lossAfterSteps()[1] < 0.7 * m.lossAfterSteps()[0],
          m.method() + " one step helps: " + m.lossAfterSteps()[0] + " -> " + m.lossAfterSteps()[1]);
  }

  @Test
  void reweightingIgnoresFlippedLabels() {
    Reweight.Result r = Reweight.run(new Reweight.Config(200, 20, 300, 0.1, 1, 0.1, 3), null);
    assertEquals(0.4, r.flippedShare(), 1e-9);
    assertTrue(r.uniformAccuracy() < 0.8, "uniform weights learn the shifted boundary: " + r.uniformAccuracy());
    assertTrue(r.reweightedAccuracy() > 0.88, "reweighted " + r.reweightedAccuracy());
    assertTrue(
        r.reweightedAccuracy() > r.uniformAccuracy() + 0.1, r.reweightedAccuracy() + " vs " + r.uniformAccuracy());
    // the flips that contradict the Bayes rule get a small share of the weight, most of them none
    assertTrue(r.meanWeightContradicted() < 0.5 * r.meanWeightClean(),
        r.meanWeightContradicted() + " vs " + r.meanWeightClean());
    // most flipped examples get no weight, almost every clean one some (measured at N = 400: 80 % and 2 %)
    assertTrue(r.flippedZeroShare() > 0.6, "flipped with zero weight: " + r.flippedZeroShare());
    assertTrue(r.cleanZeroShare() < 0.2, "clean with zero weight: " + r.cleanZeroShare());
  }
}
