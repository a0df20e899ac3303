package org.metakernels.optim;

import java.util.List;
import java.util.Map;
import org.metakernels.autograd.Autograd;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Adam (Kingma and Ba, 2015): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
 * p ← p − lr · m̂ / (√v̂ + ε) with bias-corrected m̂, v̂. Optional L2 weight decay added to g.
 * In place, on the gradients {@link org.metakernels.tensor.Tensor#backward()} accumulated; there
 * is no differentiable form. A parameter without a gradient at a step is skipped (its moments do
 * not decay), and the bias correction counts each parameter's own updates, as torch.optim.Adam's
 * per-parameter {@code step}: a parameter first updated at step 3 takes the step-1 correction.
 *
 * <pre>{@code
 * try (Adam opt = new Adam(net.parameters(), 1e-3)) {
 *   for (int step = 0; step < 100; step++) {
 *     opt.zeroGrad();
 *     try (Scope s = Scope.open()) { net.forward(x).sub(y).square().mean().backward(); }
 *     opt.step();                                // every parameter keeps its shape
 *   }
 * }
 * }</pre>
 */
public final class Adam extends Optimizer {
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final double weightDecay;
  private final Tensor[] m;
  private final Tensor[] v;
  private final long[] updates;  // per parameter: the t of its bias correction
  private long t;

  /**
   * Adam with β₁ 0.9, β₂ 0.999, ε 1e-8 and no weight decay.
   *
   * @param params the leaves to update
   * @param lr the learning rate
   */
  public Adam(List<Tensor> params, double lr) {
    this(params, lr, 0.9, 0.999, 1e-8, 0.0);
  }

  /**
   * Adam with every setting given.
   *
   * @param params the leaves to update
   * @param lr the learning rate
   * @param beta1 decay of the first moment, in [0, 1) (as torch.optim.Adam: at 1 the bias
   *     correction divides by zero)
   * @param beta2 decay of the second moment, in [0, 1)
   * @param eps added to √v̂, finite and not negative
   * @param weightDecay L2 coefficient λ (g + λp), finite and not negative; 0 for none
   * @throws IllegalArgumentException for a value outside those ranges, or a parameter the
   *     {@link Optimizer} constructor refuses
   */
  public Adam(List<Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay) {
    super(params, lr);
    this.beta1 = checkRange("Adam", "beta1", beta1, 0, 1, false);
    this.beta2 = checkRange("Adam", "beta2", beta2, 0, 1, false);
    this.eps = checkRange("Adam", "eps", eps, 0, Double.MAX_VALUE, true);
    this.weightDecay = checkRange("Adam", "weightDecay", weightDecay, 0, Double.MAX_VALUE, true);
    this.m = new Tensor[params.size()];
    this.v = new Tensor[params.size()];
    this.updates = new long[params.size()];
  }

  @Override
  public void step() {
    checkOpenWithGradients("step");
    t++;
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      for (int i = 0; i < params.size(); i++) {
        Tensor p = params.get(i);
        Tensor g = p.grad();
        if (g == null) continue;
        long n = ++updates[i];
        double c1 = 1 - Math.pow(beta1, n), c2 = 1 - Math.pow(beta2, n);
        if (weightDecay != 0) g = g.add(p.mul(weightDecay));
        if (m[i] == null) {
          m[i] = newState(p);
          v[i] = newState(p);
        }
        m[i].mulInPlace(beta1).addInPlace(g.mul(1 - beta1));
        v[i].mulInPlace(beta2).addInPlace(g.square().mul(1 - beta2));
        Tensor update = m[i].mul(learningRate() / c1).div(v[i].mul(1.0 / c2).sqrt().add(eps));
        p.subInPlace(update);
      }
    }
  }

  @Override
  protected List<String> stateKinds() {
    return List.of("m", "v");
  }

  @Override
  protected Tensor state(String kind, int i, boolean create) {
    Tensor[] s = kind.equals("m") ? m : kind.equals("v") ? v : null;
    if (s == null) return super.state(kind, i, create);
    if (s[i] == null && create) s[i] = newState(params.get(i));
    return s[i];
  }

  @Override
  protected Map<String, Long> scalarState() {
    return Map.of("step", t);
  }

  @Override
  protected void setScalarState(Map<String, Long> values) {
    t = values.get("step");
  }

  @Override
  protected List<String> countKinds() {
    return List.of("step");
  }

  @Override
  protected Map<String, Long> counts() {
    Map<String, Long> c = new java.util.LinkedHashMap<>();
    for (int i = 0; i < updates.length; i++)
      if (updates[i] > 0) c.put("step." + i, updates[i]);
    return c;
  }

  @Override
  protected void setCounts(Map<String, Long> values, java.util.Set<String> presentStates) {
    // a file without "step.i" (written before 2026-12-07, when one count served every parameter):
    // the global count for a parameter it has moments of, else none
    for (int i = 0; i < updates.length; i++) {
      Long n = values.get("step." + i);
      updates[i] = n != null ? n : presentStates.contains("m." + i) ? t : 0;
    }
  }

  /**
   * Number of {@link #step()} calls so far.
   *
   * @return the step count
   */
  public long steps() {
    return t;
  }

  /**
   * Number of updates parameter i has had: the t of its bias correction (a step at which it had no
   * gradient does not count).
   *
   * @param i the parameter's index
   * @return its update count
   */
  public long steps(int i) {
    return updates[i];
  }
}
