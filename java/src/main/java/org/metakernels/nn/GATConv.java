package org.metakernels.nn;

import org.metakernels.graph.Graph;
import org.metakernels.graph.MessagePassing;
import org.metakernels.ops.Functional;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * Graph attention convolution (GAT, Veličković et al. 2018), multi-head, as PyTorch Geometric's
 * {@code GATConv}: with x' = x·Wᵀ split into H heads of F columns,
 *
 * <pre>
 *   e_ij = leakyReLU(⟨x'_j, a_src⟩ + ⟨x'_i, a_dst⟩),  α_ij = softmax over i's in-edges j → i,
 *   out_i = ∥_h Σ_j α_ij^h x'_j^h  (concat: [N, H·F])   or   mean_h (…)  ([N, F]),   + bias
 * </pre>
 *
 * <p>The aggregation is the fused kernel {@link MessagePassing#gatAggregate}; everything is
 * differentiable to any order, so the layer runs inside unrolled inner loops with substituted
 * weights ({@code forward(graph, x, Weights.of(fast))}). Parameters: {@code weight} [H·F, in],
 * {@code attSrc} and {@code attDst} [H, F], {@code bias} [H·F] (concat) or [F] (mean).
 *
 * <p>A layer of a graph network needs the graph, so it is called as {@link #forward(Graph, Tensor,
 * Weights)}; the graph-less {@link #forward(Tensor, Weights)} of {@link Module} refuses. With
 * {@code selfLoops} the layer aggregates over the graph without its self-loops plus one loop per
 * node (as PyG does); that graph is built on the host (O(E)) once per input graph object and
 * owned by the layer, which keeps it while the input graph is open (a backward recorded through it
 * may run later, on any thread) and frees it at the first call after that graph closed, or on
 * {@link #close()}; pass {@code selfLoops = false} and a graph that already has its loops to build
 * it once yourself.
 *
 * <pre>{@code
 * try (GATConv conv = new GATConv(16, 8, 4, DType.F32, Device.CPU, 7L)) {   // 4 heads of 8, concat
 *   Tensor h = conv.forward(graph, x);                                       // x [N, 16]: [N, 32]
 * }
 * }</pre>
 */
public final class GATConv extends Module {
  private final long in;
  private final long out;
  private final long heads;
  private final boolean concat;
  private final double negativeSlope;
  private final boolean selfLoops;
  private final boolean bias;
  private final DerivedGraphs looped = new DerivedGraphs();

  /**
   * PyG's defaults: concatenated heads, slope 0.2, self-loops, a bias.
   * {@code new GATConv(16, 8, 4, DType.F32, Device.CPU, 7L)} maps [N, 16] to [N, 32].
   *
   * @param in input features per node
   * @param out output features per head (F)
   * @param heads attention heads (H)
   * @param dtype the parameters' dtype
   * @param device the parameters' device
   * @param seed the initialisation's seed
   */
  public GATConv(long in, long out, long heads, DType dtype, Device device, long seed) {
    this(in, out, heads, true, 0.2, true, true, dtype, device, seed);
  }

  /**
   * The full form. {@code new GATConv(16, 8, 4, false, 0.2, true, true, DType.F64, Device.CPU, 1L)}
   * maps [N, 16] to [N, 8] (the heads averaged).
   *
   * @param in input features per node
   * @param out output features per head (F)
   * @param heads attention heads (H)
   * @param concat concatenate the heads ([N, H·F]), else average them ([N, F])
   * @param negativeSlope leakyReLU's slope for negative scores (finite)
   * @param selfLoops aggregate over the graph without its self-loops plus one loop per node
   * @param bias add a learned bias
   * @param dtype the parameters' dtype (F32 or F64)
   * @param device the parameters' device
   * @param seed the initialisation's seed (Glorot-uniform weights and attention vectors, zero bias)
   */
  public GATConv(long in, long out, long heads, boolean concat, double negativeSlope, boolean selfLoops, boolean bias,
      DType dtype, Device device, long seed) {
    if (in < 1 || out < 1 || heads < 1)
      throw new MetakernelsException(
          "GATConv: in, out and heads must be >= 1, got in = " + in + ", out = " + out + ", heads = " + heads);
    if (!Double.isFinite(negativeSlope))
      throw new MetakernelsException("GATConv: negativeSlope " + negativeSlope + " is not finite");
    this.in = in;
    this.out = out;
    this.heads = heads;
    this.concat = concat;
    this.negativeSlope = negativeSlope;
    this.selfLoops = selfLoops;
    this.bias = bias;
    double bw = Math.sqrt(6.0 / (in + heads * out));
    double ba = Math.sqrt(6.0 / (1 + out));
    register("weight", Tensor.uniform(new long[] {heads * out, in}, -bw, bw, dtype, device, seed));
    register("attSrc", Tensor.uniform(new long[] {heads, out}, -ba, ba, dtype, device, seed + 1));
    register("attDst", Tensor.uniform(new long[] {heads, out}, -ba, ba, dtype, device, seed + 2));
    if (bias) register("bias", Tensor.zeros(new long[] {concat ? heads * out : out}, dtype, device));
  }

  /**
   * Refuses: a GAT layer needs its graph; call {@link #forward(Graph, Tensor, Weights)}.
   *
   * @param x the input
   * @param w substituted weights
   * @return never
   * @throws MetakernelsException always
   */
  @Override
  public Tensor forward(Tensor x, Weights w) {
    throw new MetakernelsException("GATConv: needs a graph: call forward(graph, x) or forward(graph, x, weights)");
  }

  /**
   * The layer on graph {@code g} with its own parameters: {@code conv.forward(g, x)} of x [N, in]
   * is [N, H·F] (concat) or [N, F].
   *
   * @param g the graph (N nodes), on the parameters' device
   * @param x [N, in]
   * @return the node features
   */
  public Tensor forward(Graph g, Tensor x) {
    return forward(g, x, Weights.none());
  }

  /**
   * The layer on graph {@code g} with parameters looked up in {@code w} first ("weight",
   * "attSrc", "attDst", "bias"), for inner loops: {@code conv.forward(g, x, Weights.of(fast))} of
   * x [N, in] is [N, H·F] (concat) or [N, F].
   *
   * @param g the graph (N nodes), on the parameters' device
   * @param x [N, in]
   * @param w substituted weights ({@link Weights#none()} for none)
   * @return the node features
   * @throws MetakernelsException when x does not fit (rank, in, rows, dtype, device)
   */
  public Tensor forward(Graph g, Tensor x, Weights w) {
    if (g == null) throw new MetakernelsException("GATConv: graph is null");
    if (x.rank() != 2 || x.size(1) != in || x.size(0) != g.numNodes())
      throw new MetakernelsException(
          "GATConv: expected x [" + g.numNodes() + ", " + in + "] for " + g.describe() + ", got " + x.describe());
    long n = x.size(0);
    Tensor xh = Functional.linear(x, p("weight", w), null).reshape(n, heads, out); // [N, H, F]
    Tensor sSrc = xh.mul(pExact("attSrc", w, "GATConv.forward").reshape(1, heads, out)).sum(2, false); // [N, H]
    Tensor sDst = xh.mul(pExact("attDst", w, "GATConv.forward").reshape(1, heads, out)).sum(2, false);
    Tensor agg = MessagePassing.gatAggregate(propagationGraph(g), xh, sSrc, sDst, negativeSlope);
    Tensor y = concat ? agg.reshape(n, heads * out) : agg.mean(1, false);
    return bias ? y.add(pExact("bias", w, "GATConv.forward")) : y;
  }

  /** The graph the layer aggregates over: g, or g without self-loops plus one per node (cached). */
  private Graph propagationGraph(Graph g) {
    if (!selfLoops) return g;
    g.checkIntact("GATConv.forward");
    return looped.get(g, Boolean.TRUE, () -> {
      try (Graph without = g.removeSelfLoops()) {
        return without.addSelfLoops();
      }
    });
  }

  /** Frees the parameters and the cached self-loop graphs. */
  @Override
  public void close() {
    looped.close();
    super.close();
  }

  /**
   * Input features per node.
   *
   * @return in
   */
  public long in() {
    return in;
  }

  /**
   * Output features per node: H·F with concatenated heads, else F.
   *
   * @return the width of {@link #forward(Graph, Tensor)}'s result
   */
  public long outWidth() {
    return concat ? heads * out : out;
  }

  /**
   * Attention heads.
   *
   * @return H
   */
  public long heads() {
    return heads;
  }
}
