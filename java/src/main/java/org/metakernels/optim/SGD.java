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
  private final double momentum;
  private final double weightDecay;
  private final Tensor[] velocity;

  /**
   * Plain SGD: no momentum, no weight decay.
   *
   * @param params the leaves to update
   * @param lr the learning rate
   */
  public SGD(List<Tensor> params, double lr) {
    this(params, lr, 0.0, 0.0);
  }

  /**
   * SGD with momentum and weight decay.
   *
   * @param params the leaves to update
   * @param lr the learning rate
   * @param momentum μ, finite and not negative (as torch.optim.SGD); 0 for none
   * @param weightDecay L2 coefficient λ, finite and not negative; 0 for none
   * @throws IllegalArgumentException for a value outside those ranges, or a parameter the
   *     {@link Optimizer} constructor refuses
   */
  public SGD(List<Tensor> params, double lr, double momentum, double weightDecay) {
    super(params, lr);
    this.momentum = checkRange("SGD", "momentum", momentum, 0, Double.MAX_VALUE, true);
    this.weightDecay = checkRange("SGD", "weightDecay", weightDecay, 0, Double.MAX_VALUE, true);
    this.velocity = new Tensor[params.size()];
  }

  @Override
  public void step() {
    checkOpenWithGradients("step");
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
        p.subInPlace(d.mul(learningRate()));
      }
    }
  }

  @Override
  protected List<String> stateKinds() {
    return momentum != 0 ? List.of("velocity") : List.of();
  }

  @Override
  protected Tensor state(String kind, int i, boolean create) {
    if (!kind.equals("velocity") || momentum == 0) return super.state(kind, i, create);
    if (velocity[i] == null && create) velocity[i] = newState(params.get(i));
    return velocity[i];
  }

  /**
   * p − lr·g for each pair, recorded on the tape (so the result is differentiable in p and g):
   * MAML's inner step, {@code SGD.differentiableStep(net.parameters(), grads, 0.01)} gives one
   * tensor of each parameter's shape.
   *
   * @param params the current weights
   * @param grads their gradients (built with createGraph to differentiate through them)
   * @param lr the step size
   * @return the new weights, in order
   */
  public static List<Tensor> differentiableStep(List<Tensor> params, List<Tensor> grads, double lr) {
    List<Tensor> out = new ArrayList<>(params.size());
    for (int i = 0; i < params.size(); i++) out.add(params.get(i).sub(grads.get(i).mul(lr)));
    return out;
  }

  /**
   * p − lr·g with a learnable (tensor) learning rate, broadcast against each parameter (a scalar
   * or a per-parameter shape); differentiable in p, g and lr.
   * {@code SGD.differentiableStep(ws, gs, Tensor.scalar(0.1, DType.F64, Device.CPU).requiresGrad(true))}.
   *
   * @param params the current weights
   * @param grads their gradients
   * @param lr the step size, broadcast against each parameter
   * @return the new weights, in order
   */
  public static List<Tensor> differentiableStep(List<Tensor> params, List<Tensor> grads, Tensor lr) {
    List<Tensor> out = new ArrayList<>(params.size());
    for (int i = 0; i < params.size(); i++) out.add(params.get(i).sub(grads.get(i).mul(lr)));
    return out;
  }
}
