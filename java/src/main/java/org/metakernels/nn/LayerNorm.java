package org.metakernels.nn;

import org.metakernels.ops.Functional;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * Layer norm over the last dim with a learned scale {@code weight} (ones) and shift {@code bias}
 * (zeros), both [dim]: {@code new LayerNorm(64, 1e-5, DType.F32, Device.CPU).forward(x)} of
 * [B, N, 64] is [B, N, 64]. See {@link Functional#layerNorm}.
 */
public final class LayerNorm extends Module {
  private final double eps;

  /**
   * A layer norm for inputs [..., dim].
   *
   * @param dim the size of the normalised (last) dim
   * @param eps added to the variance
   * @param dtype the parameters' type
   * @param device the parameters' device
   */
  public LayerNorm(long dim, double eps, DType dtype, Device device) {
    this.eps = eps;
    register("weight", Tensor.ones(new long[] {dim}, dtype, device));
    register("bias", Tensor.zeros(new long[] {dim}, dtype, device));
  }

  @Override
  public Tensor forward(Tensor x, Weights w) {
    return Functional.layerNorm(x, p("weight", w), p("bias", w), eps);
  }
}
