package org.metakernels.nn;

import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * Stack of {@link Linear} layers {@code layer0, layer1, ...} (with biases) and an activation
 * between them (not after the last).
 *
 * <pre>{@code
 * MLP net = new MLP(new long[] {1, 40, 40, 1}, Activation.RELU, DType.F64, Device.CPU, 0L);
 * Tensor y = net.forward(x);                   // x [B, 1]: [B, 1]
 * }</pre>
 */
public final class MLP extends Module {
  private final int layers;
  private final Activation act;
  private final Linear[] linears;

  /**
   * An MLP with fresh seeded weights.
   *
   * @param sizes {in, hidden..., out}: at least two
   * @param act the activation between layers
   * @param dtype the parameters' type
   * @param device the parameters' device
   * @param seed seed of layer 0 (layer i uses seed + 101·i)
   */
  public MLP(long[] sizes, Activation act, DType dtype, Device device, long seed) {
    if (sizes == null || sizes.length < 2)
      throw new MetakernelsException("MLP: sizes must be {in, hidden..., out}, at least two, got "
          + java.util.Arrays.toString(sizes));
    for (long d : sizes)  // all checked before any layer is made (a later refusal left the earlier ones unowned)
      if (d < 1) throw new MetakernelsException("MLP: every size must be at least 1, got " + java.util.Arrays.toString(sizes));
    this.layers = sizes.length - 1;
    this.act = act;
    this.linears = new Linear[layers];
    for (int i = 0; i < layers; i++)
      linears[i] = child("layer" + i, new Linear(sizes[i], sizes[i + 1], true, dtype, device, seed + 101L * i));
  }

  @Override
  public Tensor forward(Tensor x, Weights w) {
    Tensor h = x;
    for (int i = 0; i < layers; i++) {
      // the activation fused into the layer where it has a fused form (one op and one tape node)
      Linear layer = linears[i];
      h = layer.forward(h, w.child("layer" + i), i < layers - 1 ? act : Activation.IDENTITY);
    }
    return h;
  }

  /**
   * The activation between layers: {@code net.activation().apply(h)} keeps h's shape.
   *
   * @return the activation given at construction
   */
  public Activation activation() {
    return act;
  }

  /**
   * Number of {@link Linear} layers ({@code layer0 ... layer(depth-1)}): sizes.length - 1.
   *
   * @return the layer count
   */
  public int depth() {
    return layers;
  }
}
