package org.metakernels.graph;

import java.util.ArrayList;
import java.util.List;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Aggregation over a meta-path: the operator x ↦ N(M) · x where M = R_1 · R_2 ⋯ R_k is the product
 * of the relation matrices along the path (M[i, j] = the number of path instances from target node
 * i to target node j, e.g. P–A–P: the co-authors shared by two papers) and N a normalisation. It
 * runs either on the <b>materialised</b> graph of M (one SpMM over nnz(M) edges) or as the
 * <b>factorised chain</b> R_1 · (R_2 · (⋯ (R_k · x))) of one SpMM per relation, never forming M.
 * Both are differentiable in x to any order (chains of {@link MessagePassing#aggregate} calls,
 * zero padding and row scalings), and the same up to rounding.
 *
 * <p><b>Cost model ({@link Strategy#AUTO}).</b> One application costs F multiply-adds per stored
 * non-zero: nnz(M) (+ N for the self-loops of {@link Normalization#GCN}) materialised, Σ_h (nnz(R_h)
 * + max(rows_h, cols_h)) chained (the second term: each hop runs on a square graph of max(rows,
 * cols) nodes with the input zero-padded). AUTO takes the smaller; nnz(M) comes from the symbolic
 * pass of the SpGEMM ({@link SparseMatrix#productNnz}), so a dense path is never materialised to
 * find out it is dense. ACM's P–S–P: nnz(M) = 4.34 M against 2 · 4019 + 2 · 4019 = 16 k for the
 * chain, which AUTO therefore takes; P–A–P: 57,853 against 2 · 13,407 + 2 · 7,167 = 41 k: the chain
 * again, by a small margin.
 *
 * <p><b>Counts or binary.</b> The weights are <em>path counts</em> unless the meta-path is built
 * binary ({@code binary = true}: 1 wherever a path exists, as the published ACM/DBLP/IMDB meta-path
 * files store them). A chain computes counts; it is binary only when the counts are at most 1 by
 * construction, which is checked for a two-relation path whose first relation gives every row at
 * most one entry of value 1 and whose second is 0/1 (ACM P–S–P: a paper has one subject); otherwise a
 * binary meta-path is materialised (and {@link Strategy#CHAIN} refused). {@link #describe()} says
 * which the caller got.
 *
 * <pre>{@code
 * try (MetaPath psp = hetero.metaPath(List.of("paper", "subject", "paper"),
 *          MetaPath.Normalization.GCN, false, MetaPath.Strategy.AUTO, DType.F32, Device.CPU)) {
 *   Tensor h = psp.apply(x);                                          // x [4019, F]: [4019, F]
 * }
 * }</pre>
 */
public final class MetaPath implements AutoCloseable {
  /** How the path matrix M is normalised before it multiplies x. */
  public enum Normalization {
    /** M itself: sums of path counts (or of 1s when binary). */
    NONE,
    /** D^-1 M, D the row sums of M: the mean over path instances; rows without paths give 0. */
    ROW,
    /**
     * GCN's D^-1/2 (M + I) D^-1/2 with D the row sums of M + I (Kipf and Welling), as
     * {@link Graph#gcnNormalized(DType)}.
     */
    GCN
  }

  /** Whether to form M or chain the relations. */
  public enum Strategy {
    /** The cheaper of the two by the cost model of the class comment. */
    AUTO,
    /** Form M by SpGEMM and aggregate over its graph. */
    MATERIALIZED,
    /** Aggregate relation by relation, never forming M. */
    CHAIN
  }

  private final String name;
  private final List<SparseMatrix> factors;
  private final Normalization norm;
  private final boolean binary;
  private final DType dtype;
  private final Device device;
  private final long materializedCost;
  private final long chainCost;
  private final boolean chained;
  private final Graph graph; // materialised, normalised weights; or null
  private final List<SparseOperator> hops; // chained: applied last factor first; or empty
  private final Tensor leftScale; // chained: [N, 1] or null
  private final Tensor rightScale; // chained: [N, 1] or null
  private final Tensor loopScale; // chained GCN: [N, 1] (D^-1) or null

  private MetaPath(String name, List<SparseMatrix> factors, Normalization norm, boolean binary, Strategy strategy,
      DType dtype, Device device) {
    String op = "MetaPath";
    if (factors.isEmpty()) throw new MetakernelsException(op + " " + name + ": no relations");
    for (int i = 0; i + 1 < factors.size(); i++)
      if (factors.get(i).cols() != factors.get(i + 1).rows())
        throw new MetakernelsException(op + " " + name + ": relation " + i + " " + factors.get(i).describe()
            + " does not chain with relation " + (i + 1) + " " + factors.get(i + 1).describe());
    int n = factors.get(0).rows();
    if (factors.get(factors.size() - 1).cols() != n)
      throw new MetakernelsException(op + " " + name + ": the path must end on its start type: " + n + " rows, "
          + factors.get(factors.size() - 1).cols() + " columns");
    if (!dtype.isFloating())
      throw new MetakernelsException(op + " " + name + ": dtype must be F32 or F64, got " + dtype);
    this.name = name;
    this.factors = List.copyOf(factors);
    this.norm = norm;
    this.binary = binary;
    this.dtype = dtype;
    this.device = device;
    long chainNnz = 0;
    for (SparseMatrix r : factors) chainNnz += r.nnz() + Math.max(r.rows(), r.cols());
    this.chainCost = chainNnz + (norm == Normalization.GCN ? n : 0);
    long m = factors.size() == 1 ? factors.get(0).nnz() : productNnz(factors);
    this.materializedCost = m + (norm == Normalization.GCN ? n : 0);
    boolean chainExact = !binary || binaryByConstruction(factors);
    if (strategy == Strategy.CHAIN && !chainExact)
      throw new MetakernelsException(op + " " + name
          + ": a binary meta-path cannot be chained unless its path counts are"
          + " at most 1 by construction; use Strategy.MATERIALIZED or AUTO");
    this.chained =
        strategy == Strategy.CHAIN || (strategy == Strategy.AUTO && chainExact && chainCost < materializedCost);
    Graph g = null;
    List<SparseOperator> hs = new ArrayList<>();
    Tensor ls = null, rs = null, lp = null;
    try (Scope tmp = Scope.open()) {
      if (!chained) {
        SparseMatrix mat = materialize();
        if (norm == Normalization.ROW) mat = mat.rowNormalized();
        if (norm == Normalization.GCN) {
          try (Graph raw = mat.toGraph(device, DType.F64)) {
            Graph gn = raw.gcnNormalized(DType.F64);
            g = dtype == DType.F64 ? gn : recast(gn);
          }
        } else {
          g = mat.toGraph(device, dtype);
        }
      } else {
        for (SparseMatrix r : factors) hs.add(SparseOperator.of(r, dtype, device));
        if (norm != Normalization.NONE) {
          double[] deg = rowSumsOfProduct(factors);
          double[] left = new double[n], right = new double[n], loop = new double[n];
          for (int i = 0; i < n; i++) {
            if (norm == Normalization.ROW) {
              left[i] = deg[i] == 0 ? 0.0 : 1.0 / deg[i];
              right[i] = 1.0;
            } else {
              double inv = 1.0 / Math.sqrt(deg[i] + 1.0);
              left[i] = inv;
              right[i] = inv;
              loop[i] = inv * inv;
            }
          }
          ls = tmp.keep(column(left));
          rs = norm == Normalization.GCN ? tmp.keep(column(right)) : null;
          lp = norm == Normalization.GCN ? tmp.keep(column(loop)) : null;
        }
      }
    }
    this.graph = g;
    this.hops = List.copyOf(hs);
    this.leftScale = ls;
    this.rightScale = rs;
    this.loopScale = lp;
    for (Tensor t : new Tensor[] {ls, rs, lp})
      if (t != null) Scope.transfer(t.storage(), null);
  }

  private Graph recast(Graph gn) {
    // the GCN weights computed in float64, stored in the requested type: rebuild from the edges
    try (Scope tmp = Scope.open(); gn) {
      Tensor edges = gn.edgeIndex(); // graph order, as the stored weights
      return Graph.fromEdges(edges, gn.numNodes(), gn.edgeWeight().castTo(dtype));
    }
  }

  private Tensor column(double[] v) {
    Tensor t = Tensor.of(v, v.length, 1);
    if (dtype != DType.F64) t = t.castTo(dtype);
    return device == Device.CPU ? t : t.to(device);
  }

  private static long productNnz(List<SparseMatrix> factors) {
    // nnz of the full product: multiply all but the last pair, then count the last product symbolically
    SparseMatrix acc = factors.get(0);
    for (int i = 1; i + 1 < factors.size(); i++) acc = acc.multiply(factors.get(i));
    return acc.productNnz(factors.get(factors.size() - 1));
  }

  /** M · 1 through the chain, in float64. */
  private static double[] rowSumsOfProduct(List<SparseMatrix> factors) {
    double[] v = new double[factors.get(factors.size() - 1).cols()];
    java.util.Arrays.fill(v, 1.0);
    for (int h = factors.size() - 1; h >= 0; h--) {
      SparseMatrix r = factors.get(h);
      long[] ptr = r.rowPtr();
      int[] ci = r.colIndices();
      double[] val = r.values();
      double[] out = new double[r.rows()];
      for (int i = 0; i < r.rows(); i++)
        for (long k = ptr[i]; k < ptr[i + 1]; k++) out[i] += val[(int) k] * v[ci[(int) k]];
      v = out;
    }
    return v;
  }

  /** A two-relation path R·S whose counts are 0/1: R has at most one entry 1 per row and S is 0/1. */
  private static boolean binaryByConstruction(List<SparseMatrix> f) {
    if (f.size() != 2) return false;
    SparseMatrix r = f.get(0), s = f.get(1);
    long[] ptr = r.rowPtr();
    double[] rv = r.values();
    for (int i = 0; i < r.rows(); i++)
      if (ptr[i + 1] - ptr[i] > 1 || (ptr[i + 1] > ptr[i] && rv[(int) ptr[i]] != 1.0)) return false;
    for (double v : s.values())
      if (v != 1.0) return false;
    return true;
  }

  /**
   * The meta-path over the relation matrices {@code factors} (R_1 [N, T_1], R_2 [T_1, T_2], …,
   * R_k [T_{k-1}, N]); {@link HeteroGraph#metaPath} builds it from type names.
   * {@code MetaPath.of("PSP", List.of(ps, ps.transpose()), Normalization.GCN, false, Strategy.AUTO,
   * DType.F32, Device.CPU)}.
   *
   * @param name a label for messages ("PSP")
   * @param factors the relations along the path, at least one
   * @param norm the normalisation
   * @param binary true for a 0/1 path graph, false for path counts
   * @param strategy materialised, chained, or the cheaper
   * @param dtype F32 or F64, the type of the features it will multiply
   * @param device where they live
   * @return the operator (close it: it owns its graphs)
   * @throws MetakernelsException when the relations do not chain into a square path, or CHAIN is
   *     asked for a binary path whose counts may exceed 1
   */
  public static MetaPath of(String name, List<SparseMatrix> factors, Normalization norm, boolean binary,
      Strategy strategy, DType dtype, Device device) {
    return new MetaPath(name, factors, norm, binary, strategy, dtype, device);
  }

  /**
   * The path matrix M (path counts, or 0/1 when binary), unnormalised, by SpGEMM (deterministic,
   * see {@link SparseMatrix#multiply}). {@code pap.materialize().nnz()}.
   *
   * @return M, [N, N]
   */
  public SparseMatrix materialize() {
    SparseMatrix acc = factors.get(0);
    for (int i = 1; i < factors.size(); i++) acc = acc.multiply(factors.get(i));
    return binary ? acc.binarized() : acc;
  }

  /**
   * N(M) · x, differentiable in x to any order. {@code psp.apply(x)} of x [N, F] is [N, F].
   *
   * @param x [N, F] of this meta-path's dtype and device
   * @return [N, F]
   * @throws MetakernelsException when x does not fit (rows, dtype, device)
   */
  public Tensor apply(Tensor x) {
    String op = "MetaPath.apply";
    x.address(op);
    int n = factors.get(0).rows();
    if (x.rank() < 1 || x.size(0) != n || x.dtype() != dtype || x.device() != device)
      throw new MetakernelsException(
          op + ": " + describe() + " expects " + dtype + " [" + n + ", ...] on " + device + ", got " + x.describe());
    if (!chained) return MessagePassing.aggregate(graph, x, graph.edgeWeight(), Reduce.SUM);
    // the scales are [N, 1] columns: x as [N, F] (a [N] or [N, H, F] x broadcast against them
    // wrongly: a [N, N] result or a refusal, where the materialised form took any [N, ...])
    Tensor x2 = x.rank() == 2 ? x : x.reshape(n, -1);
    Tensor h = rightScale != null ? x2.mul(rightScale) : x2;
    Tensor in = h;
    for (int k = hops.size() - 1; k >= 0; k--) h = hops.get(k).apply(h);
    if (leftScale != null) h = h.mul(leftScale);
    if (loopScale != null) h = h.add(in.mul(leftScale));
    return x.rank() == 2 ? h : h.reshape(x.shape());
  }

  /**
   * Whether this operator runs as the factorised chain.
   *
   * @return true when chained, false when materialised
   */
  public boolean isChained() {
    return chained;
  }

  /**
   * The cost estimate of the materialised form: non-zeros touched per feature column.
   *
   * @return nnz(M) (+ N for GCN's self-loops)
   */
  public long materializedCost() {
    return materializedCost;
  }

  /**
   * The cost estimate of the chain: non-zeros touched per feature column.
   *
   * @return Σ (nnz(R_h) + max(rows_h, cols_h)) (+ N for GCN's self-loops)
   */
  public long chainCost() {
    return chainCost;
  }

  /**
   * Whether the weights are 0/1 (true) or path counts (false).
   *
   * @return binary
   */
  public boolean isBinary() {
    return binary;
  }

  /**
   * The normalisation.
   *
   * @return norm
   */
  public Normalization normalization() {
    return norm;
  }

  /**
   * The target node count N.
   *
   * @return N
   */
  public int numNodes() {
    return factors.get(0).rows();
  }

  /** Frees the graphs and scalings this operator owns (idempotent). */
  @Override
  public void close() {
    if (graph != null) graph.close();
    for (SparseOperator h : hops) h.close();
    for (Tensor t : new Tensor[] {leftScale, rightScale, loopScale})
      if (t != null) t.close();
  }

  /**
   * Name, form, weights and costs: "MetaPath PSP (chain of 2 relations, path counts, GCN;
   * cost 16076 vs 4338213 materialised)".
   *
   * @return the description
   */
  public String describe() {
    return "MetaPath " + name + " (" + (chained ? "chain of " + factors.size() + " relations" : "materialised") + ", "
        + (binary ? "binary" : "path counts") + ", " + norm + "; cost " + (chained ? chainCost : materializedCost)
        + " vs " + (chained ? materializedCost + " materialised" : chainCost + " chained") + ")";
  }

  @Override
  public String toString() {
    return describe();
  }
}
