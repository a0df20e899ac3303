package org.metakernels.testing;

import org.metakernels.tensor.Tensor;

/**
 * The optimizer steps of torch.optim (torch 2.x, single-tensor code, op for op) written with the
 * library's tensor ops: the naive reference of the fused steps of org.metakernels.meta.InnerStep.
 * Every hyperparameter is a tensor that broadcasts against the parameter (a rank-0 tensor, or one
 * value per element, Adam's betas and eps included), so autograd through these functions gives
 * reference gradients, per element where the hyperparameter is.
 */
public final class StepRef {
  private StepRef() {}

  /** torch.optim.SGD's step (dampening 0): {p'} without a buffer, else {p', b'}. */
  public static Tensor[] sgd(Tensor p, Tensor g, Tensor buf, Tensor lr, Tensor mu, Tensor wd, boolean nesterov) {
    Tensor d = g.add(p.mul(wd));                       // grad.add(param, alpha=weight_decay)
    if (buf == null) return new Tensor[] {p.sub(d.mul(lr))};
    Tensor b = buf.mul(mu).add(d);                     // buf.mul_(momentum).add_(grad)
    Tensor u = nesterov ? d.add(b.mul(mu)) : b;        // grad.add(buf, alpha=momentum)
    return new Tensor[] {p.sub(u.mul(lr)), b};         // param.add_(grad, alpha=-lr)
  }

  /** torch.optim.Adam's step (amsgrad off; AdamW when decoupled): {p', m', v'}. */
  public static Tensor[] adam(Tensor p, Tensor g, Tensor m, Tensor v, long step, Tensor lr, Tensor b1, Tensor b2,
      Tensor eps, Tensor wd, boolean decoupled) {
    Tensor d = g, p0 = p;
    if (decoupled) p0 = p.mul(lr.mul(wd).rsub(1.0));   // param.mul_(1 - lr * weight_decay)
    else d = g.add(p.mul(wd));                          // grad.add(param, alpha=weight_decay)
    Tensor m1 = m.add(d.sub(m).mul(b1.rsub(1.0)));     // exp_avg.lerp_(grad, 1 - beta1)
    Tensor v1 = v.mul(b2).add(d.mul(d).mul(b2.rsub(1.0)));  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
    Tensor c1 = b1.pow((double) step).rsub(1.0), c2 = b2.pow((double) step).rsub(1.0);
    Tensor denom = v1.sqrt().div(c2.sqrt()).add(eps);  // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    return new Tensor[] {p0.sub(lr.div(c1).mul(m1.div(denom))), m1, v1};  // param.addcdiv_(exp_avg, denom, -step_size)
  }
}
