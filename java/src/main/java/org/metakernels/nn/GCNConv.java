package org.metakernels.nn;

import org.metakernels.graph.Graph;
import org.metakernels.graph.MessagePassing;
import org.metakernels.graph.MetaPath;
import org.metakernels.graph.Reduce;
import org.metakernels.ops.Functional;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The graph convolution of Kipf and Welling: out = Â · (x Wᵀ) + b with Â = D^-1/2 (A + I) D^-1/2
 * (self-loops on, the default) or D^-1/2 A D^-1/2 (off), D the weighted in-degrees of A (+ I), A
 * the graph's stored weights or ones. Parameters {@code weight} [out, in] and {@code bias} [out]
 * (Glorot-uniform weight, zero bias); substituted weights ({@link Weights}) take their place, so
 * the layer runs inside an unrolled inner loop. Differentiable to any order in x and the weights.
 *
 * <p><b>Cache.</b> The normalised graph of each input graph object (per dtype) is made once and
 * kept, owned by the layer, while that graph is open (graphs are immutable; a backward recorded
 * through it may still read it, on any thread); it is freed at the first call after that graph is
 * closed, and {@link #close()} frees them all with the parameters. {@link
 * #forward(MetaPath, Tensor, Weights)} propagates over a meta-path instead, whose own normalisation then applies (build
 * it with
 * {@link MetaPath.Normalization#GCN} for the same layer over a meta-path graph).
 *
 * <pre>{@code
 * try (GCNConv conv = new GCNConv(16, 8, true, true, DType.F32, Device.CPU, 1L)) {
 *   Tensor h = conv.forward(graph, x, Weights.none());             // x [N, 16]: [N, 8]
 * }
 * }</pre>
 */
public final class GCNConv extends Module {
  private final long in;
  private final long out;
  private final boolean bias;
  private final boolean selfLoops;
  private final DerivedGraphs normalized = new DerivedGraphs();

  /**
   * A layer with fresh parameters. {@code new GCNConv(16, 8, true, true, DType.F32, Device.CPU, 1L)}.
   *
   * @param in input features
   * @param out output features
   * @param bias whether to add a bias
   * @param selfLoops whether Â includes I
   * @param dtype F32 or F64
   * @param device the device of the parameters
   * @param seed the initialisation seed
   */
  public GCNConv(long in, long out, boolean bias, boolean selfLoops, DType dtype, Device device, long seed) {
    this.in = in;
    this.out = out;
    this.bias = bias;
    this.selfLoops = selfLoops;
    double bound = Math.sqrt(6.0 / (in + out));
    register("weight", Tensor.uniform(new long[] {out, in}, -bound, bound, dtype, device, seed));
    if (bias) register("bias", Tensor.zeros(new long[] {out}, dtype, device));
  }

  /**
   * Refuses: a graph convolution needs a graph ({@link #forward(Graph, Tensor, Weights)}).
   *
   * @param x unused
   * @param w unused
   * @return never
   * @throws MetakernelsException always
   */
  @Override
  public Tensor forward(Tensor x, Weights w) {
    throw new MetakernelsException(
        "GCNConv: needs a graph: forward(graph, x, weights) or forward(metaPath, x, weights)");
  }

  /**
   * Â (x Wᵀ) + b. {@code conv.forward(g, x, Weights.none())} of x [N, in] is [N, out].
   *
   * @param g the graph (N nodes, on x's device)
   * @param x [N, in]
   * @param w substituted parameters ("weight", "bias"), or {@link Weights#none()}
   * @return [N, out]
   * @throws MetakernelsException when x does not fit the graph or the weight
   */
  public Tensor forward(Graph g, Tensor x, Weights w) {
    Graph norm = normalized(g, x.dtype());
    Tensor h = Functional.linear(x, p("weight", w), null);
    h = MessagePassing.aggregate(norm, h, norm.edgeWeight(), Reduce.SUM);
    return bias ? h.add(pExact("bias", w, "GCNConv.forward")) : h;
  }

  /**
   * The same layer propagated over a meta-path: path.apply(x Wᵀ) + b.
   * {@code conv.forward(pap, x, Weights.none())} of x [N, in] is [N, out].
   *
   * @param path the meta-path operator (its normalisation applies)
   * @param x [N, in]
   * @param w substituted parameters, or {@link Weights#none()}
   * @return [N, out]
   */
  public Tensor forward(MetaPath path, Tensor x, Weights w) {
    Tensor h = path.apply(Functional.linear(x, p("weight", w), null));
    return bias ? h.add(pExact("bias", w, "GCNConv.forward")) : h;
  }

  /**
   * The normalised graph this layer propagates over for {@code g} (cached): Â with its weights.
   *
   * @param g the graph
   * @param dtype the features' dtype
   * @return the cached normalised graph (owned by this layer: do not close it)
   */
  public Graph normalized(Graph g, DType dtype) {
    g.checkIntact("GCNConv.forward");  // a closed or edited graph fails here as in every graph op, cached or not
    return normalized.get(g, dtype, () -> !selfLoops ? withoutLoops(g, dtype)
        : !g.hasWeights() || g.edgeWeight().dtype() == dtype ? g.gcnNormalized(dtype) : normalizedWithLoops(g, dtype));
  }

  /**
   * D^-1/2 (A + I) D^-1/2 in {@code dtype} for a graph whose stored weights have another type
   * ({@link Graph#gcnNormalized} keeps the stored type): the same weights, computed in float64.
   */
  private static Graph normalizedWithLoops(Graph g, DType dtype) {
    try (Graph loops = g.addSelfLoops()) {
      return withoutLoops(loops, dtype);
    }
  }

  /** D^-1/2 A D^-1/2 with D the weighted in-degrees of A. */
  private static Graph withoutLoops(Graph g, DType dtype) {
    try (Scope tmp = Scope.open()) {
      Tensor edges = g.edgeIndex();
      long[] e = edges.toLongArray();
      int m = (int) g.numEdges(), n = (int) g.numNodes();
      double[] w = g.hasWeights() ? g.edgeWeight().toDoubleArray() : null;
      double[] deg = new double[n];
      for (int k = 0; k < m; k++) deg[(int) e[m + k]] += w == null ? 1.0 : w[k];
      double[] nw = new double[m];
      for (int k = 0; k < m; k++) {
        double a = deg[(int) e[m + k]], b = deg[(int) e[k]];
        nw[k] = a == 0 || b == 0 ? 0.0 : (w == null ? 1.0 : w[k]) / Math.sqrt(a * b);
      }
      Tensor wt = Tensor.of(nw, m);
      if (dtype != DType.F64) wt = wt.castTo(dtype);
      if (g.device() != Device.CPU) wt = wt.to(g.device());
      return Graph.fromEdges(edges, n, wt);
    }
  }

  /** Frees the parameters and the cached normalised graph. */
  @Override
  public void close() {
    super.close();
    normalized.close();
  }

  /**
   * Input features.
   *
   * @return in
   */
  public long in() {
    return in;
  }

  /**
   * Output features.
   *
   * @return out
   */
  public long out() {
    return out;
  }
}
