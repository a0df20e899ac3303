package org.metakernels.optim;

/**
 * A learning rate as a function of the step number (0 for the first {@link Optimizer#step()}),
 * applied by the training loop before each step:
 *
 * <pre>{@code
 * LearningRateSchedule schedule = LearningRateSchedule.cosine(1e-3, 1000, 1e-5).withWarmup(100);
 * for (long step = 0; step < 1100; step++) {
 *   schedule.apply(opt, step);                           // opt.setLearningRate(schedule.at(step))
 *   // forward, backward, opt.step(), opt.zeroGrad()
 * }
 * }</pre>
 *
 * A schedule holds no state, so a resumed run (see {@link Optimizer#loadState}) calls
 * {@code apply(opt, step)} with the step it resumes at and continues exactly. The factories check
 * their arguments when called; {@link #at} of a factory's schedule is finite and not negative for
 * every step &gt;= 0.
 */
@FunctionalInterface
public interface LearningRateSchedule {
  /**
   * The learning rate for step {@code step}.
   *
   * @param step the step number, from 0
   * @return the learning rate, finite and not negative
   */
  double at(long step);

  /**
   * Sets {@code opt}'s learning rate to {@link #at}{@code (step)}.
   *
   * @param opt the optimizer
   * @param step the step about to be taken, from 0
   * @throws IllegalArgumentException for a negative step, or when this schedule gives a negative
   *     or non-finite rate (the optimizer keeps its rate)
   */
  default void apply(Optimizer opt, long step) {
    if (step < 0) throw new IllegalArgumentException("LearningRateSchedule.apply: step " + step + " (must be >= 0)");
    opt.setLearningRate(at(step));
  }

  /**
   * {@code lr} at every step.
   *
   * @param lr the rate, finite and &gt;= 0
   * @return the schedule
   */
  static LearningRateSchedule constant(double lr) {
    check("constant", "lr", lr);
    return step -> lr;
  }

  /**
   * {@code lr · gamma^⌊step / every⌋}: PyTorch's {@code StepLR}, e.g. {@code stepDecay(0.1, 30, 0.1)}
   * is 0.1 for steps 0-29, 0.01 for 30-59, ...
   *
   * @param lr the initial rate, finite and &gt;= 0
   * @param every the steps between decays, &gt; 0
   * @param gamma the factor, in [0, 1]
   * @return the schedule
   */
  static LearningRateSchedule stepDecay(double lr, long every, double gamma) {
    check("stepDecay", "lr", lr);
    if (every <= 0) throw new IllegalArgumentException("LearningRateSchedule.stepDecay: every " + every + " (must be > 0)");
    checkFactor("stepDecay", gamma);
    return step -> lr * Math.pow(gamma, (double) (step / every));
  }

  /**
   * {@code lr · gamma^step}: PyTorch's {@code ExponentialLR}.
   *
   * @param lr the initial rate, finite and &gt;= 0
   * @param gamma the factor per step, in [0, 1]
   * @return the schedule
   */
  static LearningRateSchedule exponential(double lr, double gamma) {
    check("exponential", "lr", lr);
    checkFactor("exponential", gamma);
    return step -> lr * Math.pow(gamma, (double) step);
  }

  /**
   * Cosine decay from {@code lr} at step 0 to {@code minLr} at step {@code steps}, and
   * {@code minLr} after: {@code minLr + (lr - minLr) · (1 + cos(π · step / steps)) / 2}, PyTorch's
   * {@code CosineAnnealingLR} over one half period without restarts.
   *
   * @param lr the rate at step 0, finite and &gt;= 0
   * @param steps the length of the decay, &gt; 0
   * @param minLr the final rate, finite, in [0, lr]
   * @return the schedule
   */
  static LearningRateSchedule cosine(double lr, long steps, double minLr) {
    check("cosine", "lr", lr);
    check("cosine", "minLr", minLr);
    if (steps <= 0) throw new IllegalArgumentException("LearningRateSchedule.cosine: steps " + steps + " (must be > 0)");
    if (minLr > lr)
      throw new IllegalArgumentException("LearningRateSchedule.cosine: minLr " + minLr + " > lr " + lr);
    return step -> step >= steps ? minLr : minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * step / steps));
  }

  /**
   * Linear decay from {@code lr} at step 0 to {@code endLr} at step {@code steps}, and
   * {@code endLr} after.
   *
   * @param lr the rate at step 0, finite and &gt;= 0
   * @param steps the length of the decay, &gt; 0
   * @param endLr the final rate, finite and &gt;= 0
   * @return the schedule
   */
  static LearningRateSchedule linear(double lr, long steps, double endLr) {
    check("linear", "lr", lr);
    check("linear", "endLr", endLr);
    if (steps <= 0) throw new IllegalArgumentException("LearningRateSchedule.linear: steps " + steps + " (must be > 0)");
    return step -> step >= steps ? endLr : lr + (endLr - lr) * ((double) step / steps);
  }

  /**
   * This schedule after {@code warmup} steps of linear warm-up: step {@code t < warmup} gets
   * {@code at(0) · (t + 1) / (warmup + 1)}, rising to {@code at(0)} at step {@code warmup}, from
   * where this schedule runs as from its own step 0 ({@code at(t - warmup)}). No step has rate 0
   * and none repeats the full rate. {@code cosine(1e-3, 1000, 0).withWarmup(100)} lasts 1100
   * steps.
   *
   * @param warmup the warm-up steps, &gt;= 0 (0: this schedule)
   * @return the schedule
   */
  default LearningRateSchedule withWarmup(long warmup) {
    if (warmup < 0) throw new IllegalArgumentException("LearningRateSchedule.withWarmup: warmup " + warmup + " (must be >= 0)");
    if (warmup == 0) return this;
    double peak = at(0);
    // the fraction first (peak * (step + 1) overflowed for a peak near Double.MAX_VALUE), in double
    // (warmup + 1 wrapped to a negative long for Long.MAX_VALUE)
    return step -> step < warmup ? peak * ((step + 1.0) / (warmup + 1.0)) : at(step - warmup);
  }

  private static void check(String who, String name, double v) {
    if (!(v >= 0) || Double.isInfinite(v))
      throw new IllegalArgumentException("LearningRateSchedule." + who + ": " + name + " " + v + " (must be finite and >= 0)");
  }

  private static void checkFactor(String who, double gamma) {
    if (!(gamma >= 0 && gamma <= 1))
      throw new IllegalArgumentException("LearningRateSchedule." + who + ": gamma " + gamma + " (must be in [0, 1])");
  }
}
