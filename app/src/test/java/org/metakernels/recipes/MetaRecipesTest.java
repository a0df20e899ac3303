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
    MamlSine.Config c = new MamlSine.Config(10, 600, 5, 10, 0.01, 2e-3, 100, 10, 2);
    List<MamlSine.MethodResult> r = MamlSine.run(c, List.of("maml", "fomaml", "pretrained"), null);
    MamlSine.MethodResult maml = r.get(0), fo = r.get(1), pre = r.get(2);
    // the pretrained net predicts about the mean over tasks (~0): its loss stays near E[A²]/2 ≈ 4
    assertTrue(pre.lossAfterSteps()[10] > 2.0, "pretrained after 10 steps " + pre.lossAfterSteps()[10]);
    for (MamlSine.MethodResult m : List.of(maml, fo)) {
      assertTrue(m.lossAfterSteps()[10] < 0.5 * pre.lossAfterSteps()[10],
          m.method() + " after 10 steps " + m.lossAfterSteps()[10] + " vs pretrained " + pre.lossAfterSteps()[10]);
      assertTrue(m.lossAfterSteps()[1] < 0.8 * m.lossAfterSteps()[0],
          m.method() + " one step helps: " + m.lossAfterSteps()[0] + " -> " + m.lossAfterSteps()[1]);
    }
  }

  @Test
  void reweightingIgnoresFlippedLabels() {
    Reweight.Result r = Reweight.run(new Reweight.Config(200, 20, 300, 0.1, 1, 0.1, 3), null);
    assertEquals(0.4, r.flippedShare(), 1e-9);
    assertTrue(r.uniformAccuracy() < 0.8, "uniform weights learn the shifted boundary: " + r.uniformAccuracy());
    assertTrue(r.reweightedAccuracy() > 0.88, "reweighted " + r.reweightedAccuracy());
    assertTrue(
        r.reweightedAccuracy() > r.uniformAccuracy() + 0.1, r.reweightedAccuracy() + " vs " + r.uniformAccuracy());
    assertTrue(r.meanWeightClean() > 5 * r.meanWeightFlipped(), r.meanWeightClean() + " vs " + r.meanWeightFlipped());
  }
}
