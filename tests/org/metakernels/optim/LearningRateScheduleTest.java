package org.metakernels.optim;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/** The schedules' values against their formulas written out, warm-up, apply, and refused arguments. */
class LearningRateScheduleTest {
  @Test
  void constantStepAndExponential() {
    LearningRateSchedule c = LearningRateSchedule.constant(0.3);
    for (long t : new long[] {0, 1, 1000, Long.MAX_VALUE}) assertEquals(0.3, c.at(t));
    LearningRateSchedule s = LearningRateSchedule.stepDecay(0.1, 30, 0.1);
    assertEquals(0.1, s.at(0));
    assertEquals(0.1, s.at(29));
    assertEquals(0.1 * 0.1, s.at(30), 1e-18);
    assertEquals(0.1 * 0.1, s.at(59), 1e-18);
    assertEquals(0.1 * 0.1 * 0.1, s.at(60), 1e-18);
    LearningRateSchedule e = LearningRateSchedule.exponential(2.0, 0.5);
    assertEquals(2.0, e.at(0));
    assertEquals(1.0, e.at(1));
    assertEquals(0.25, e.at(3));
    assertEquals(0.0, LearningRateSchedule.exponential(1.0, 0.0).at(1));
    assertEquals(1.0, LearningRateSchedule.exponential(1.0, 0.0).at(0));
  }

  @Test
  void cosineAndLinearReachTheirEndsAndStayThere() {
    LearningRateSchedule c = LearningRateSchedule.cosine(1e-3, 100, 1e-5);
    assertEquals(1e-3, c.at(0), 1e-18);
    assertEquals(1e-5 + (1e-3 - 1e-5) * 0.5, c.at(50), 1e-15);  // half way: the mean
    assertEquals(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + Math.cos(Math.PI * 0.25)), c.at(25), 1e-15);
    assertEquals(1e-5, c.at(100), 1e-18);
    assertEquals(1e-5, c.at(10_000));
    for (long t = 1; t <= 100; t++) assertTrue(c.at(t) < c.at(t - 1), "decreasing at " + t);
    LearningRateSchedule l = LearningRateSchedule.linear(1.0, 4, 0.2);
    assertArrayEquals(new double[] {1.0, 0.8, 0.6, 0.4, 0.2, 0.2}, new double[] {l.at(0), l.at(1), l.at(2), l.at(3), l.at(4), l.at(5)}, 1e-15);
    LearningRateSchedule up = LearningRateSchedule.linear(0.0, 2, 1.0);  // increasing is allowed
    assertEquals(0.5, up.at(1));
  }

  @Test
  void warmupRisesWithoutAZeroStepThenRunsTheScheduleFromItsStart() {
    LearningRateSchedule base = LearningRateSchedule.cosine(1.0, 10, 0.0);
    LearningRateSchedule w = base.withWarmup(4);
    assertArrayEquals(new double[] {0.2, 0.4, 0.6, 0.8}, new double[] {w.at(0), w.at(1), w.at(2), w.at(3)}, 1e-15);
    for (long t = 4; t < 20; t++) assertEquals(base.at(t - 4), w.at(t), "step " + t);
    assertEquals(1.0, w.at(4));
    assertSame(base, base.withWarmup(0));
    // finite and not negative at the extremes (peak * (step + 1) overflowed; warmup + 1 wrapped)
    assertEquals(Double.MAX_VALUE * (6.0 / 11.0), LearningRateSchedule.constant(Double.MAX_VALUE).withWarmup(10).at(5));
    double tiny = LearningRateSchedule.constant(1.0).withWarmup(Long.MAX_VALUE).at(0);
    assertTrue(tiny > 0 && tiny < 1e-18, "warmup of Long.MAX_VALUE steps at step 0: " + tiny);
  }

  @Test
  void applySetsTheOptimizersRateForTheStep() {
    try (Tensor p = Tensor.zeros(new long[] {2}, DType.F64, Device.CPU).requiresGrad(true);
        SGD opt = new SGD(List.of(p), 1.0)) {
      LearningRateSchedule s = LearningRateSchedule.stepDecay(0.5, 2, 0.5);
      double[] seen = new double[5];
      for (int t = 0; t < 5; t++) {
        s.apply(opt, t);
        seen[t] = opt.learningRate();
      }
      assertArrayEquals(new double[] {0.5, 0.5, 0.25, 0.25, 0.125}, seen);
      assertThrows(IllegalArgumentException.class, () -> s.apply(opt, -1));
      LearningRateSchedule bad = t -> -1.0;  // a user's schedule giving a negative rate
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bad.apply(opt, 0));
      assertTrue(e.getMessage().contains("SGD.setLearningRate"), e.getMessage());
      assertEquals(0.125, opt.learningRate(), "kept");
    }
  }

  @Test
  void factoriesRefuseBadArguments() {
    String[] msgs = {
      msg(() -> LearningRateSchedule.constant(-1)),
      msg(() -> LearningRateSchedule.constant(Double.NaN)),
      msg(() -> LearningRateSchedule.stepDecay(0.1, 0, 0.5)),
      msg(() -> LearningRateSchedule.stepDecay(0.1, 10, 1.5)),
      msg(() -> LearningRateSchedule.exponential(0.1, -0.1)),
      msg(() -> LearningRateSchedule.exponential(Double.POSITIVE_INFINITY, 0.5)),
      msg(() -> LearningRateSchedule.cosine(0.1, 0, 0.0)),
      msg(() -> LearningRateSchedule.cosine(0.1, 10, 0.2)),
      msg(() -> LearningRateSchedule.linear(0.1, -3, 0.0)),
      msg(() -> LearningRateSchedule.constant(1).withWarmup(-1)),
    };
    String[] want = {"constant: lr -1.0", "constant: lr NaN", "stepDecay: every 0", "stepDecay: gamma 1.5",
        "exponential: gamma -0.1", "exponential: lr Infinity", "cosine: steps 0", "cosine: minLr 0.2 > lr 0.1",
        "linear: steps -3", "withWarmup: warmup -1"};
    for (int i = 0; i < want.length; i++) assertTrue(msgs[i].contains("LearningRateSchedule." + want[i]), msgs[i]);
  }

  static String msg(org.junit.jupiter.api.function.Executable call) {
    return assertThrows(IllegalArgumentException.class, call).getMessage();
  }
}
