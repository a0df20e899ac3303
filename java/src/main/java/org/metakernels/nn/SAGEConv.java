package org.metakernels.nn;

import org.metakernels.graph.Graph;
import org.metakernels.graph.MessagePassing;
import org.metakernels.graph.Reduce;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * GraphSAGE's layer (Hamilton, Ying and Leskovec): out = W_neigh · ⊕_{j → i} x_j + W_root · x_i
 * + b, with ⊕ the mean or the max over in-neighbours (0 for a node without in-edges) and the root
 * term optional. Parameters {@code neighbor.weight} [out, in], {@code neighbor.bias} [out] and
 * {@code root.weight} [out, in]; substituted weights ({@link Weights}) take their place.
 * Differentiable to any order (the max routes its gradient through the saved argmax).
 *
 * <pre>{@code
 * try (SAGEConv sage = new SAGEConv(16, 8, Reduce.MEAN, true, DType.F32, Device.CPU, 1L)) {
 *   Tensor h = sage.forward(graph, x, Weights.none());              // x [N, 16]: [N, 8]
 * }
 * }</pre>
 */
public final class SAGEConv extends Module {
  private final Reduce aggregator;
  private final boolean rootWeight;

  /**
   * A layer with fresh parameters. {@code new SAGEConv(16, 8, Reduce.MAX, true, DType.F64, Device.CPU, 2L)}.
   *
   * @param in input features
   * @param out output features
   * @param aggregator {@link Reduce#MEAN} or {@link Reduce#MAX}
   * @param rootWeight whether to add W_root · x_i
   * @param dtype F32 or F64
   * @param device the device of the parameters
   * @param seed the initialisation seed
   * @throws MetakernelsException for another aggregator
   */
  public SAGEConv(long in, long out, Reduce aggregator, boolean rootWeight, DType dtype, Device device, long seed) {
    if (aggregator != Reduce.MEAN && aggregator != Reduce.MAX)
      throw new MetakernelsException("SAGEConv: aggregator must be MEAN or MAX, got " + aggregator);
    this.aggregator = aggregator;
    this.rootWeight = rootWeight;
    child("neighbor", new Linear(in, out, true, dtype, device, seed));
    if (rootWeight) child("root", new Linear(in, out, false, dtype, device, seed + 17));
  }

  /**
   * Refuses: the layer needs a graph ({@link #forward(Graph, Tensor, Weights)}).
   *
   * @param x unused
   * @param w unused
   * @return never
   * @throws MetakernelsException always
   */
  @Override
  public Tensor forward(Tensor x, Weights w) {
    throw new MetakernelsException("SAGEConv: needs a graph: forward(graph, x, weights)");
  }

  /**
   * The layer on a graph. {@code sage.forward(g, x, Weights.none())} of x [N, in] is [N, out].
   *
   * @param g the graph (N nodes, on x's device)
   * @param x [N, in]
   * @param w substituted parameters, or {@link Weights#none()}
   * @return [N, out]
   * @throws MetakernelsException when x does not fit the graph or the weights
   */
  public Tensor forward(Graph g, Tensor x, Weights w) {
    Tensor agg = MessagePassing.aggregate(g, x, aggregator);
    Tensor h = run("neighbor", agg, w);
    return rootWeight ? h.add(run("root", x, w)) : h;
  }

  /**
   * The aggregator.
   *
   * @return MEAN or MAX
   */
  public Reduce aggregator() {
    return aggregator;
  }
}
