package org.metakernels.ops;

import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/** Neural-network functions and losses built from differentiable ops (so they have second derivatives). */
public final class Functional {
  private Functional() {}

  /**
   * Layer norm over the last dim: (x − mean) / sqrt(var + eps) · weight + bias.
   * x: [..., d], weight and bias: [d] (either may be null). Output: x's shape.
   */
  public static Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, double eps) {
    Checks.floating("layerNorm", x);
    if (x.rank() == 0) throw new MetakernelsException("layerNorm: needs at least one dim, got " + x.describe());
    long d = x.size(-1);
    if (weight != null && (weight.rank() != 1 || weight.size(0) != d))
      throw new MetakernelsException("layerNorm: weight " + weight.describe() + " does not match " + x.describe());
    if (bias != null && (bias.rank() != 1 || bias.size(0) != d))
      throw new MetakernelsException("layerNorm: bias " + bias.describe() + " does not match " + x.describe());
    Tensor mu = x.mean(-1, true);
    Tensor xc = x.sub(mu);
    Tensor var = xc.square().mean(-1, true);
    Tensor y = xc.mul(var.add(eps).rsqrt());
    if (weight != null) y = y.mul(weight);
    if (bias != null) y = y.add(bias);
    return y;
  }

  /** Mean squared error: mean((pred − target)²), shape []. */
  public static Tensor mse(Tensor pred, Tensor target) {
    Checks.compatible("mse", pred, target);
    if (!java.util.Arrays.equals(pred.shape(), target.shape()))
      throw new MetakernelsException("mse: " + pred.describe() + " vs " + target.describe());
    return pred.sub(target).square().mean();
  }

  /**
   * Cross-entropy of logits [N, C] against class indices [N] (I64), averaged over N: shape [].
   */
  public static Tensor crossEntropy(Tensor logits, Tensor targets) {
    String op = "crossEntropy";
    Checks.floating(op, logits);
    Checks.indices(op, targets);
    if (logits.rank() != 2 || targets.rank() != 1 || targets.size(0) != logits.size(0))
      throw new MetakernelsException(op + ": expected logits [N, C] and targets [N], got " + Checks.shapes(logits, targets));
    Tensor logp = logits.logSoftmax(1);
    return logp.gather(1, targets.unsqueeze(1)).mean().neg();
  }

  /** Linear map x Wᵀ + b: x [..., in], weight [out, in], bias [out] or null. */
  public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
    if (x.rank() == 0 || weight.rank() != 2 || x.size(-1) != weight.size(1))
      throw new MetakernelsException("linear: " + x.describe() + " does not fit weight " + weight.describe());
    Tensor y = x.matmul(weight.mT());
    return bias == null ? y : y.add(bias);
  }

  /** Fresh zeros like {@code t} in the given dtype. */
  static Tensor zeros(Tensor t, DType d) {
    return Tensor.zeros(t.shape(), d, t.device());
  }
}
