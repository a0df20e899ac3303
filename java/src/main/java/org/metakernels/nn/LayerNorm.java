package org.metakernels.nn;

import org.metakernels.ops.Functional;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/** Layer norm over the last dim with a learned scale (ones) and shift (zeros). */
public final class LayerNorm extends Module {
  private final double eps;

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
