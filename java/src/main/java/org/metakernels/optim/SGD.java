package org.metakernels.optim;

import java.util.ArrayList;
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Stochastic gradient descent with optional momentum and L2 weight decay:
 * v ← μ v + (g + λ p); p ← p − lr v.
 *
 * <p>{@link #differentiableStep} is the same update as a function of tensors (no in-place
 * writes), for inner loops that are differentiated through.
 */
public final class SGD extends Optimizer {
  private final double lr;
  private final double momentum;
  private final double weightDecay;
  private final Tensor[] velocity;

  public SGD(List<Tensor> params, double lr) {
    this(params, lr, 0.0, 0.0);
  }

  public SGD(List<Tensor> params, double lr, double momentum, double weightDecay) {
    super(params);
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.velocity = new Tensor[params.size()];
  }

  @Override
  public void step() {
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      for (int i = 0; i < params.size(); i++) {
        Tensor p = params.get(i);
        Tensor g = p.grad();
        if (g == null) continue;
        Tensor d = weightDecay != 0 ? g.add(p.mul(weightDecay)) : g;
        if (momentum != 0) {
          if (velocity[i] == null) velocity[i] = newState(p);
          velocity[i].mulInPlace(momentum).addInPlace(d);
          d = velocity[i];
        }
        p.subInPlace(d.mul(lr));
      }
    }
  }

  /** p − lr·g for each pair, recorded on the tape (so the result is differentiable in p, g and lr). */
  public static List<Tensor> differentiableStep(List<Tensor> params, List<Tensor> grads, double lr) {
    List<Tensor> out = new ArrayList<>(params.size());
    for (int i = 0; i < params.size(); i++) out.add(params.get(i).sub(grads.get(i).mul(lr)));
    return out;
  }

  /** p − lr·g with a learnable (tensor) learning rate, broadcast against each parameter. */
  public static List<Tensor> differentiableStep(List<Tensor> params, List<Tensor> grads, Tensor lr) {
    List<Tensor> out = new ArrayList<>(params.size());
    for (int i = 0; i < params.size(); i++) out.add(params.get(i).sub(grads.get(i).mul(lr)));
    return out;
  }
}
