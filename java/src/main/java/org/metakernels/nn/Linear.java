package org.metakernels.nn;

import org.metakernels.ops.Functional;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * y = x Wᵀ + b. x: [..., in] → [..., out]; weight [out, in] and bias [out] start uniform in
 * ±1/√in (as PyTorch's Linear).
 *
 * <pre>{@code
 * Linear fc = new Linear(10, 1, true, DType.F64, Device.CPU, 0L);
 * Tensor y = fc.forward(x);                    // x [B, 10]: [B, 1]
 * }</pre>
 */
public final class Linear extends Module {
  private final long in;
  private final long out;
  private final boolean bias;

  /**
   * A linear layer with fresh seeded weights.
   *
   * @param in input features
   * @param out output features
   * @param bias whether to add a bias
   * @param dtype the parameters' type
   * @param device the parameters' device
   * @param seed seed of the weight (the bias uses seed + 1)
   */
  public Linear(long in, long out, boolean bias, DType dtype, Device device, long seed) {
    if (in < 1 || out < 1)
      throw new MetakernelsException("Linear: in " + in + " and out " + out + " must be at least 1");
    this.in = in;
    this.out = out;
    this.bias = bias;
    double bound = 1.0 / Math.sqrt(in);
    register("weight", Tensor.uniform(new long[] {out, in}, -bound, bound, dtype, device, seed));
    if (bias) register("bias", Tensor.uniform(new long[] {out}, -bound, bound, dtype, device, seed + 1));
  }

  @Override
  public Tensor forward(Tensor x, Weights w) {
    return Functional.linear(x, p("weight", w), bias ? p("bias", w) : null);
  }

  /**
   * act(x Wᵀ + b) with this layer's weights or the substituted ones in {@code w}, fused into one
   * op where {@link Functional#fuses(Activation)} (see {@link Functional#linear(Tensor, Tensor,
   * Tensor, Activation)}): {@code fc.forward(x, Weights.of(fast), Activation.TANH)} of [B, in] is [B, out].
   *
   * @param x [..., in]
   * @param w substituted weights (names "weight", "bias"), or {@link Weights#none()} for the layer's own
   * @param act the activation after the bias
   * @return [..., out]
   */
  public Tensor forward(Tensor x, Weights w, Activation act) {
    return Functional.linear(x, p("weight", w), bias ? p("bias", w) : null, act);
  }

  /**
   * Input features.
   *
   * @return the size of the input's last dim
   */
  public long in() {
    return in;
  }

  /**
   * Output features.
   *
   * @return the size of the output's last dim
   */
  public long out() {
    return out;
  }
}
