package org.metakernels.nn;

import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/** Stack of {@link Linear} layers {@code layer0, layer1, ...} with an activation between them (not after the last). */
public final class MLP extends Module {
  private final int layers;
  private final Activation act;

  /** sizes = {in, hidden..., out}. */
  public MLP(long[] sizes, Activation act, DType dtype, Device device, long seed) {
    this.layers = sizes.length - 1;
    this.act = act;
    for (int i = 0; i < layers; i++)
      child("layer" + i, new Linear(sizes[i], sizes[i + 1], true, dtype, device, seed + 101L * i));
  }

  @Override
  public Tensor forward(Tensor x, Weights w) {
    Tensor h = x;
    for (int i = 0; i < layers; i++) {
      h = run("layer" + i, h, w);
      if (i < layers - 1) h = act.apply(h);
    }
    return h;
  }
}
