package org.metakernels.graph;

import java.util.Arrays;
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.Forward;
import org.metakernels.autograd.GradMode;
import org.metakernels.ops.Indexing;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Message passing over a {@link Graph}: every node aggregates the messages w_k · x[src_k] of its
 * in-edges k,
 *
 * <pre>
 *   out[i] = ⊕_{k : dst_k = i} w_k · x[src_k]      ⊕ ∈ {sum, mean, max, min}   (0 without in-edges)
 * </pre>
 *
 * on fused sparse kernels (an SpMM over the graph's CSR), and the per-edge product
 * {@link #sddmm} e_k = ⟨a[dst_k], b[src_k]⟩. Features x: [N, F] (or [N, H, ...] with one weight
 * per edge and head); weights w: [E] or [E, H] in the graph's edge order, or none (all ones).
 *
 * <p>Differentiable in x and w to any order, on the same two kernels: the gradient of a sum is a
 * sum over the transposed graph (the CSC) with the same weights for x and an sddmm for w; a mean
 * scales by 1 / in-degree first; max and min route the gradient through the saved argmax edge of
 * each output element (a gather and a deterministic scatter). Every reduction runs in a fixed
 * order, without atomics: results are bitwise the same run to run and for every CPU thread count.
 *
 * <pre>{@code
 * try (Graph g = Graph.fromEdges(edgeIndex, n)) {
 *   Tensor h = MessagePassing.aggregate(g, x, Reduce.MEAN);                 // x [n, F]: [n, F]
 *   Tensor s = MessagePassing.aggregate(g, x, g.toGraphOrder(w), Reduce.SUM);  // w [E] in input order
 *   Tensor e = MessagePassing.sddmm(g, q, k);                               // q, k [n, D]: [E]
 * }
 * }</pre>
 */
public final class MessagePassing {
  private MessagePassing() {}

  /**
   * Unweighted aggregation: out[i] = ⊕_{j → i} x[j]. {@code MessagePassing.aggregate(g, x, Reduce.SUM)}
   * of x [N, F] is [N, F]; of x [N, H, D], [N, H, D].
   *
   * @param g the graph
   * @param x F32 or F64 [N, ...], on the graph's device
   * @param r how messages combine
   * @return [N, ...], x's shape
   * @throws MetakernelsException when x does not fit the graph (rows, dtype, device)
   * @throws IllegalStateException when the graph or x was freed, or the graph edited in place
   */
  public static Tensor aggregate(Graph g, Tensor x, Reduce r) {
    return aggregate(g, x, null, r);
  }

  /**
   * Weighted aggregation: out[i] = ⊕_{k : dst_k = i} w_k · x[src_k], differentiable in x and w.
   * {@code MessagePassing.aggregate(g, x, w, Reduce.MEAN)} of x [N, F] and w [E] is [N, F];
   * with w [E, H] and x [N, H, D] every head has its own weights.
   *
   * @param g the graph
   * @param x F32 or F64 [N, ...], on the graph's device
   * @param edgeWeight [E] or [E, H] (H = x.size(1)) in graph order (see {@link Graph#toGraphOrder}),
   *     x's dtype and device; or null for all ones
   * @param r how messages combine (MEAN divides by the in-degree, not by the weights' sum)
   * @return [N, ...], x's shape
   * @throws MetakernelsException when x or the weights do not fit the graph (rows, E, heads, dtype, device)
   * @throws IllegalStateException when the graph or an input was freed, or the graph edited in place
   */
  public static Tensor aggregate(Graph g, Tensor x, Tensor edgeWeight, Reduce r) {
    String op = "MessagePassing.aggregate";
    if (r == null) throw new MetakernelsException(op + ": reduce is null");
    Features f = features(op, g, x, edgeWeight);
    if (r == Reduce.SUM) return sum(g, false, edgeWeight, x, f);
    if (r == Reduce.MEAN) return mean(g, edgeWeight, x, f);
    return extreme(g, r, edgeWeight, x, f);
  }

  /**
   * The sampled dense-dense product: e_k = ⟨a[dst_k], b[src_k]⟩ for every edge k in graph order
   * (attention scores, the gradient of edge weights). Differentiable in a and b.
   * {@code MessagePassing.sddmm(g, a, b)} of [N, D] and [N, D] is [E]; of [N, H, D] and
   * [N, H, D], [E, H] (one product per head).
   *
   * @param g the graph
   * @param a F32 or F64 [N, D] or [N, H, ...]: the destination side
   * @param b a's shape, dtype and device: the source side
   * @return [E], or [E, H] when a has rank 3 or more
   * @throws MetakernelsException when a and b do not fit the graph or each other
   */
  public static Tensor sddmm(Graph g, Tensor a, Tensor b) {
    String op = "MessagePassing.sddmm";
    checkGraph(op, g);
    checkFloating(op, a);
    checkFloating(op, b);
    if (a.dtype() != b.dtype() || a.device() != b.device())
      throw new MetakernelsException(op + ": dtype or device mismatch " + a.describe() + " vs " + b.describe());
    if (!Arrays.equals(a.shape(), b.shape()) || a.rank() < 2 || a.size(0) != g.numNodes())
      throw new MetakernelsException(op + ": expected a and b of one shape [" + g.numNodes() + ", D] or ["
          + g.numNodes() + ", H, ...] for " + g.describe() + ", got " + a.describe() + " and " + b.describe());
    if (a.device() != g.device())
      throw new MetakernelsException(op + ": device mismatch: " + g.describe() + ", " + a.describe());
    return sddmmOp(g, a, b, a.rank() >= 3);
  }

  // ------------------------------------------------------------------------------------------
  // checks

  /** Heads and columns per head of x for the given weights. */
  private record Features(long heads, long width) {}

  /** Elements per node of a node-feature tensor [N, ...]. */
  private static long perRow(Tensor t) {
    long p = 1;
    for (int d = 1; d < t.rank(); d++) p *= t.size(d);
    return p;
  }

  private static void checkGraph(String op, Graph g) {
    if (g == null) throw new MetakernelsException(op + ": graph is null");
    g.checkIntact(op);
  }

  private static void checkFloating(String op, Tensor t) {
    t.address(op);
    if (!t.dtype().isFloating()) throw new MetakernelsException(op + ": expected F32 or F64, got " + t.describe());
  }

  private static Features features(String op, Graph g, Tensor x, Tensor w) {
    checkGraph(op, g);
    checkFloating(op, x);
    if (x.rank() < 1 || x.size(0) != g.numNodes())
      throw new MetakernelsException(op + ": x " + x.describe() + " must have one row per node of " + g.describe());
    if (x.device() != g.device())
      throw new MetakernelsException(op + ": device mismatch: " + g.describe() + ", x " + x.describe());
    long perRow = perRow(x);
    if (w == null) return new Features(1, perRow);
    w.address(op);
    if (w.dtype() != x.dtype() || w.device() != x.device())
      throw new MetakernelsException(
          op + ": weights " + w.describe() + " must have the dtype and device of x " + x.describe());
    boolean perEdge = w.rank() == 1 && w.size(0) == g.numEdges();
    boolean perHead = w.rank() == 2 && w.size(0) == g.numEdges() && x.rank() >= 2 && w.size(1) == x.size(1);
    if (!perEdge && !perHead)
      throw new MetakernelsException(op + ": weights " + w.describe() + " must be [" + g.numEdges() + "] or ["
          + g.numEdges() + ", H] with H = x.size(1) for x " + x.describe() + " and " + g.describe());
    if (perEdge) return new Features(1, perRow);
    long heads = w.size(1);
    return new Features(heads, heads == 0 ? 0 : perRow / heads);
  }

  // ------------------------------------------------------------------------------------------
  // the kernels

  /**
   * out = spmm over the CSR (transposed = false: rows are destinations) or the CSC (rows are
   * sources), with w in graph order; out[1] holds the argmax for MAX/MIN.
   */
  private static Tensor[] spmm(String op, Graph g, boolean transposed, int reduce, Tensor w, Tensor x, Features f) {
    long n = g.numNodes(), e = g.numEdges();
    Tensor out = Tensor.empty(x.shape(), x.dtype(), x.device());
    boolean extreme = reduce == Reduce.MAX.code || reduce == Reduce.MIN.code;
    Tensor arg = extreme ? Tensor.empty(x.shape(), DType.I64, x.device()) : null;
    try (Scope tmp = Scope.open(); var ng = Autograd.noGrad()) {
      Tensor xc = x.isContiguous() ? x : x.copyContiguous();
      Tensor wc = w == null || w.isContiguous() ? w : w.copyContiguous();
      Tensor ptr = transposed ? g.colPtr() : g.rowPtr();
      Tensor col = transposed ? g.cscDestinations() : g.sources();
      // over the CSC the kernel reads the graph-order weights through the CSC-to-graph permutation
      long wIndex = w != null && transposed ? g.cscToGraph().address(op) : 0L;
      long wAddress = wc == null ? 0L : wc.address(op);
      long argAddress = arg == null ? 0L : arg.address(op);
      int status = MkNative.mk_graph_spmm_forward(x.device().code, x.dtype().code, reduce, n, n, e, f.heads(),
          f.width(), ptr.address(op), col.address(op), wAddress, wIndex, xc.address(op), out.address(op), argAddress,
          x.launchStream());
      Native.check(
          status, op + " " + g.describe() + ", x " + x.describe() + (w == null ? "" : ", weights " + w.describe()));
    }
    return new Tensor[] {out, arg};
  }

  /** Sum over the CSR (or the CSC when transposed), w in graph order: the op every gradient reuses. */
  private static Tensor sum(Graph g, boolean transposed, Tensor w, Tensor x, Features f) {
    String op = transposed ? "aggregate(sum, transposed)" : "aggregate(sum)";
    Tensor out = spmm(op, g, transposed, Reduce.SUM.code, w, x, f)[0];
    return Autograd.record(op, out, new Tensor[] {x, w}, gr -> {
      Tensor gx = x.requiresGrad() ? sum(g, !transposed, w, gr[0], f) : null;
      Tensor gw = null;
      if (w != null && w.requiresGrad()) // per edge k: <g[row_k], x[col_k]> of this orientation
        gw = transposed ? sddmmOp(g, x, gr[0], w.rank() == 2) : sddmmOp(g, gr[0], x, w.rank() == 2);
      return new Tensor[] {gx, gw};
    }, t -> new Tensor[] {plus(t[0] == null ? null : sum(g, transposed, w, t[0], f),  // bilinear in (x, w)
        t[1] == null ? null : sum(g, transposed, t[1], x, f))});
  }

  private static Tensor mean(Graph g, Tensor w, Tensor x, Features f) {
    String op = "aggregate(mean)";
    Tensor out = spmm(op, g, false, Reduce.MEAN.code, w, x, f)[0];
    return Autograd.record(op, out, new Tensor[] {x, w}, gr -> {
      Tensor scaled = gr[0].mul(inverseInDegree(g, x)); // mean = sum / in-degree, row by row
      return new Tensor[] {x.requiresGrad() ? sum(g, true, w, scaled, f) : null,
          w != null && w.requiresGrad() ? sddmmOp(g, scaled, x, w.rank() == 2) : null};
    }, t -> new Tensor[] {plus(t[0] == null ? null : mean(g, w, t[0], f), t[1] == null ? null : mean(g, t[1], x, f))});
  }

  /** a + b of two tangents, either null (zero). */
  private static Tensor plus(Tensor a, Tensor b) {
    return a == null ? b : b == null ? a : a.add(b);
  }

  /** 1 / max(in-degree, 1) as [N, 1, ..., 1] of x's rank and dtype. */
  private static Tensor inverseInDegree(Graph g, Tensor x) {
    long[] shape = new long[x.rank()];
    Arrays.fill(shape, 1);
    shape[0] = g.numNodes();
    return g.inDegrees().castTo(x.dtype()).clampMin(1.0).reciprocal().reshape(shape);
  }

  /** 1 where a node has in-edges, else 0, as [N, 1, ..., 1] of x's rank and dtype. */
  private static Tensor hasInEdges(Graph g, Tensor x) {
    long[] shape = new long[x.rank()];
    Arrays.fill(shape, 1);
    shape[0] = g.numNodes();
    return g.inDegrees().castTo(x.dtype()).gt(0.0).reshape(shape);
  }

  /**
   * Max or min. With the argmax edge a = arg[i, ...] of every output element fixed, the op is
   * out[i, ...] = w[a] · x[src_a, ...] (0 for a node without in-edges, whose arg is E): a gather
   * of x and of the weights, whose adjoints are deterministic scatters. The rule below is that
   * composition's gradient, made of differentiable ops, so it can be differentiated again.
   */
  private static Tensor extreme(Graph g, Reduce r, Tensor w, Tensor x, Features f) {
    String op = r == Reduce.MAX ? "aggregate(max)" : "aggregate(min)";
    Tensor[] res = spmm(op, g, false, r.code, w, x, f);
    Tensor out = res[0], arg = res[1];
    return Autograd.record(op, out, new Tensor[] {x, w}, gr -> {
      Selection s = select(g, arg, f);
      Tensor masked = Tensor.where(hasInEdges(g, x), gr[0], Tensor.zerosLike(gr[0])); // no edge, no gradient
      Tensor gx = null, gw = null;
      if (x.requiresGrad()) {
        Tensor msg = w == null ? masked : masked.mul(s.fromHeads(padded(w).gather(0, s.edges()), x.shape()));
        gx = Indexing.scatterAdd(Tensor.zerosLike(x), 0, s.sources(), msg);
      }
      if (w != null && w.requiresGrad()) {
        Tensor msg = s.toHeads(masked.mul(x.gather(0, s.sources()))); // [N·rest, H]
        Tensor pad = Tensor.zeros(new long[] {g.numEdges() + 1, f.heads()}, w.dtype(), w.device());
        gw = Indexing.scatterAdd(pad, 0, s.edges(), msg).narrow(0, 0, g.numEdges()).reshape(w.shape());
      }
      return new Tensor[] {gx, gw};
    });
  }

  /** w [E] or [E, H] with a zero row appended: [E + 1, H] (row E is what nodes without in-edges select). */
  private static Tensor padded(Tensor w) {
    Tensor w2 = w.rank() == 1 ? w.reshape(w.size(0), 1) : w;
    return Tensor.concat(List.of(w2, Tensor.zeros(new long[] {1, w2.size(1)}, w.dtype(), w.device())), 0);
  }

  /**
   * The selection of max/min as index tensors: sources [N, ...] (x's shape: the source node of
   * each element's argmax edge, 0 where none) and edges [N·rest, H] (the argmax edge of each
   * element, arranged with the heads last, E where none), with the two rearrangements between x's
   * layout and [N·rest, H].
   */
  private record Selection(Tensor sources, Tensor edges, long n, long heads, long rest) {
    /** [N, H, rest] → [N·rest, H]. */
    Tensor toHeads(Tensor t) {
      return t.reshape(n, heads, rest).transpose(1, 2).reshape(n * rest, heads);
    }

    /** [N·rest, H] → x's shape. */
    Tensor fromHeads(Tensor t, long[] shape) {
      return t.reshape(n, rest, heads).transpose(1, 2).reshape(shape);
    }
  }

  private static Selection select(Graph g, Tensor arg, Features f) {
    long n = g.numNodes();
    Tensor zero = Tensor.zeros(new long[] {1}, DType.I64, arg.device());
    Tensor srcPad = Tensor.concat(List.of(g.sources(), zero), 0); // [E + 1]: row E (no edge) reads node 0
    Tensor flat = arg.reshape(arg.numel());
    Tensor sources = srcPad.indexSelect(0, flat).reshape(arg.shape());
    Selection s0 = new Selection(sources, null, n, f.heads(), f.width());
    Tensor edges = s0.toHeads(arg);
    return new Selection(sources, edges, n, f.heads(), f.width());
  }

  /** e_k = ⟨a[dst_k], b[src_k]⟩ per head (multiHead: a [N, H, ...] gives [E, H]; else [E]). */
  private static Tensor sddmmOp(Graph g, Tensor a, Tensor b, boolean multiHead) {
    String op = "sddmm";
    long n = g.numNodes(), e = g.numEdges();
    long perRow = perRow(a);
    long heads = multiHead ? a.size(1) : 1;
    long width = heads == 0 ? 0 : perRow / heads;
    Tensor out = Tensor.empty(multiHead ? new long[] {e, heads} : new long[] {e}, a.dtype(), a.device());
    try (Scope tmp = Scope.open()) {
      Tensor ac = a.isContiguous() ? a : a.copyContiguous();
      Tensor bc = b.isContiguous() ? b : b.copyContiguous();
      int status = MkNative.mk_graph_sddmm_forward(a.device().code, a.dtype().code, n, n, e, heads, width,
          g.rowPtr().address(op), g.sources().address(op), ac.address(op), bc.address(op), out.address(op), a.launchStream());
      Native.check(status, "MessagePassing.sddmm " + g.describe() + ", a " + a.describe() + ", b " + b.describe());
    }
    Features fb = new Features(heads, width);
    return Autograd.record(op, out, new Tensor[] {a, b}, ge -> {
      Tensor ga = a.requiresGrad() ? sum(g, false, ge[0], b, fb) : null; // Σ_{k into i} ge_k b[src_k]
      Tensor gb = b.requiresGrad() ? sum(g, true, ge[0], a, fb) : null; // Σ_{k out of j} ge_k a[dst_k]
      return new Tensor[] {ga, gb};
    }, t -> new Tensor[] {plus(t[0] == null ? null : sddmmOp(g, t[0], b, multiHead),  // bilinear in (a, b)
        t[1] == null ? null : sddmmOp(g, a, t[1], multiHead))});
  }

  // ------------------------------------------------------------------------------------------
  // edge softmax and the fused GAT aggregation (kernels/{cpu,cuda}/gat.*)

  /**
   * Softmax of edge scores over each node's in-edges: y_k = exp(s_k) / Σ_{k' : dst_k' = dst_k}
   * exp(s_k'), per head, numerically stable (the row max is subtracted), deterministic.
   * Differentiable to any order (the rule y · (g − Σ_row g·y) is made of the graph kernels).
   * {@code MessagePassing.edgeSoftmax(g, s)} of s [E] is [E]; of [E, H], [E, H].
   *
   * @param g the graph
   * @param scores F32 or F64 [E] or [E, H] in graph order, on the graph's device
   * @return the attention coefficients, scores' shape; each node's in-edges sum to 1 per head,
   *     except where all of a node's scores are -inf: those edges get 0 (PyTorch's softmax gives
   *     NaN), as the dense softmax's all -inf rows
   * @throws MetakernelsException when the scores do not fit the graph (E, rank, dtype, device)
   * @throws IllegalStateException when the graph or the scores were freed
   */
  public static Tensor edgeSoftmax(Graph g, Tensor scores) {
    String op = "MessagePassing.edgeSoftmax";
    checkGraph(op, g);
    checkFloating(op, scores);
    if (scores.device() != g.device())
      throw new MetakernelsException(op + ": device mismatch: " + g.describe() + ", scores " + scores.describe());
    boolean ok = (scores.rank() == 1 || (scores.rank() == 2 && scores.size(1) >= 1))
        && scores.size(0) == g.numEdges();
    if (!ok)
      throw new MetakernelsException(op + ": scores " + scores.describe() + " must be [" + g.numEdges() + "] or ["
          + g.numEdges() + ", H] (H >= 1) for " + g.describe());
    if (scores.rank() == 1) return edgeSoftmaxOp(g, scores.reshape(g.numEdges(), 1), null).reshape(g.numEdges());
    return edgeSoftmaxOp(g, scores, null);
  }

  /**
   * Fused graph-attention aggregation (GAT, Veličković et al. 2018) over each node's in-edges
   * j → i, per head h:
   *
   * <pre>
   *   e_ij = leakyReLU(sSrc[j, h] + sDst[i, h], negativeSlope),  α = edge softmax of e over i's in-edges,
   *   out[i, h, :] = Σ_j α_ij x[j, h, :]                                      (0 without in-edges)
   * </pre>
   *
   * <p>with sSrc = ⟨x[j, h], a_src[h]⟩ and sDst = ⟨x[i, h], a_dst[h]⟩ in GATConv. One kernel pass
   * per node (the row max from the scores, then one sweep over the source features); only the row
   * log-sum-exp [N, H] is kept for the backward, which recomputes α from it on the graph kernels
   * and is differentiable to any order in x, sSrc and sDst.
   * {@code MessagePassing.gatAggregate(g, x, sSrc, sDst, 0.2)} of x [N, H, F], sSrc and sDst
   * [N, H] is [N, H, F].
   *
   * @param g the graph
   * @param x F32 or F64 [N, H, F] (F >= 1), on the graph's device
   * @param sSrc [N, H], x's dtype and device: the score of each node as a source
   * @param sDst [N, H], x's dtype and device: the score of each node as a destination
   * @param negativeSlope leakyReLU's slope for negative arguments (finite; 0.2 in GAT)
   * @return [N, H, F]
   * @throws MetakernelsException when the inputs do not fit the graph or each other
   * @throws IllegalStateException when the graph or an input was freed
   */
  public static Tensor gatAggregate(Graph g, Tensor x, Tensor sSrc, Tensor sDst, double negativeSlope) {
    String op = "MessagePassing.gatAggregate";
    checkGraph(op, g);
    checkFloating(op, x);
    checkFloating(op, sSrc);
    checkFloating(op, sDst);
    String shapes = "x " + x.describe() + ", sSrc " + sSrc.describe() + ", sDst " + sDst.describe();
    if (x.dtype() != sSrc.dtype() || x.dtype() != sDst.dtype() || x.device() != sSrc.device()
        || x.device() != sDst.device())
      throw new MetakernelsException(op + ": dtype or device mismatch: " + shapes);
    if (x.device() != g.device())
      throw new MetakernelsException(op + ": device mismatch: " + g.describe() + ", " + shapes);
    long n = g.numNodes();
    boolean ok = x.rank() == 3 && x.size(0) == n && x.size(1) >= 1 && x.size(2) >= 1 && sSrc.rank() == 2
        && sDst.rank() == 2 && sSrc.size(0) == n && sDst.size(0) == n && sSrc.size(1) == x.size(1)
        && sDst.size(1) == x.size(1);
    if (!ok)
      throw new MetakernelsException(op + ": expected x [" + n + ", H, F] (H, F >= 1) and sSrc, sDst [" + n
          + ", H] for " + g.describe() + ", got " + shapes);
    if (!Double.isFinite(negativeSlope))
      throw new MetakernelsException(op + ": negativeSlope " + negativeSlope + " is not finite (" + shapes + ")");
    return gatOp(g, x, sSrc, sDst, negativeSlope);
  }

  /** y = edge softmax of s [E, H] (with lseIn [N, H], exp(s - lse) in one pass); differentiable in s. */
  private static Tensor edgeSoftmaxOp(Graph g, Tensor s, Tensor lseIn) {
    String op = "edgeSoftmax";
    long n = g.numNodes(), e = g.numEdges(), heads = s.size(1);
    Tensor y = Tensor.empty(s.shape(), s.dtype(), s.device());
    try (Scope tmp = Scope.open()) {
      Tensor sc = s.isContiguous() ? s : s.copyContiguous();
      int status = MkNative.mk_graph_edge_softmax_forward(s.device().code, s.dtype().code, n, n, e, heads,
          g.rowPtr().address(op), g.sources().address(op), sc.address(op), lseIn == null ? 0L : lseIn.address(op),
          y.address(op), 0L, s.launchStream());
      Native.check(status, "MessagePassing.edgeSoftmax " + g.describe() + ", scores " + s.describe());
    }
    // its Jacobian, diag(y) − y yᵀ per row, is symmetric: the backward rule is the forward rule
    return Autograd.record(op, y, new Tensor[] {s}, gy -> new Tensor[] {softmaxBackward(g, y, gy[0])},
        t -> new Tensor[] {softmaxBackward(g, y, t[0])});
  }

  /** The vector-Jacobian product of the edge softmax: y · (gy − Σ_row gy·y), all [E, H]. */
  private static Tensor softmaxBackward(Graph g, Tensor y, Tensor gy) {
    return y.mul(gy.sub(atDestinations(g, rowSums(g, false, gy.mul(y)))));
  }

  /** Σ over each node's in-edges (transposed: out-edges) of w [E, H]: [N, H]. */
  private static Tensor rowSums(Graph g, boolean transposed, Tensor w) {
    long n = g.numNodes(), heads = w.size(1);
    Tensor ones = Tensor.ones(new long[] {n, heads, 1}, w.dtype(), w.device());
    return sum(g, transposed, w, ones, new Features(heads, 1)).reshape(n, heads);
  }

  /** t [N, H] read at each edge's destination: [E, H] (an sddmm with ones, so differentiable). */
  private static Tensor atDestinations(Graph g, Tensor t) {
    long n = g.numNodes(), heads = t.size(1);
    Tensor ones = Tensor.ones(new long[] {n, heads, 1}, t.dtype(), t.device());
    return sddmmOp(g, t.reshape(n, heads, 1), ones, true);
  }

  /** t [N, H] read at each edge's source: [E, H]. */
  private static Tensor atSources(Graph g, Tensor t) {
    long n = g.numNodes(), heads = t.size(1);
    Tensor ones = Tensor.ones(new long[] {n, heads, 1}, t.dtype(), t.device());
    return sddmmOp(g, ones, t.reshape(n, heads, 1), true);
  }

  private static Tensor gatOp(Graph g, Tensor x, Tensor sSrc, Tensor sDst, double slope) {
    String op = "gatAggregate";
    long n = g.numNodes(), e = g.numEdges(), heads = x.size(1), width = x.size(2);
    Tensor out = Tensor.empty(x.shape(), x.dtype(), x.device());
    Tensor lse = Tensor.empty(new long[] {n, heads}, x.dtype(), x.device()); // kept for the backward
    try (Scope tmp = Scope.open(); var ng = Autograd.noGrad()) {
      Tensor xc = x.isContiguous() ? x : x.copyContiguous();
      Tensor ssc = sSrc.isContiguous() ? sSrc : sSrc.copyContiguous();
      Tensor sdc = sDst.isContiguous() ? sDst : sDst.copyContiguous();
      int status = MkNative.mk_graph_gat_forward(x.device().code, x.dtype().code, n, n, e, heads, width, slope,
          g.rowPtr().address(op), g.sources().address(op), xc.address(op), ssc.address(op), sdc.address(op),
          out.address(op), lse.address(op), x.launchStream());
      Native.check(status, "MessagePassing.gatAggregate " + g.describe() + ", x " + x.describe() + ", sSrc "
          + sSrc.describe() + ", sDst " + sDst.describe());
    }
    Features f = new Features(heads, width);
    return Autograd.record(op, out, new Tensor[] {x, sSrc, sDst}, gr -> {
      // without createGraph: the fused backward kernel (no [E, H] buffer); with it, or inside a
      // forward-mode level (forward over reverse: the backward's ops carry tangents, which the
      // unrecorded kernel dropped, so hvpForward was zero), the composed form below, itself
      // differentiable
      if (!GradMode.isEnabled() && !Forward.active() && gr[0].dtype() == x.dtype() && gr[0].device() == x.device())
        return gatBackwardFused(g, x, sSrc, sDst, lse, slope, gr[0]);
      // α recomputed on the graph kernels (one pass from the saved lse), as a differentiable op
      Tensor z = atSources(g, sSrc).add(atDestinations(g, sDst)); // [E, H]
      Tensor positive = z.gt(0.0); // leakyReLU's branch; e = z there, slope·z elsewhere
      Tensor alpha = edgeSoftmaxOp(g, Tensor.where(positive, z, z.mul(slope)), lse);
      Tensor gx = x.requiresGrad() ? sum(g, true, alpha, gr[0], f) : null; // Σ_{i ← j} α_ij g[i]
      Tensor gs = null, gd = null;
      if (sSrc.requiresGrad() || sDst.requiresGrad()) {
        Tensor gAlpha = sddmmOp(g, gr[0], x, true); // ⟨g[i, h], x[j, h]⟩ per edge
        Tensor ge = softmaxBackward(g, alpha, gAlpha);
        Tensor gz = Tensor.where(positive, ge, ge.mul(slope));
        gs = sSrc.requiresGrad() ? rowSums(g, true, gz) : null;
        gd = sDst.requiresGrad() ? rowSums(g, false, gz) : null;
      }
      return new Tensor[] {gx, gs, gd};
    });
  }

  /**
   * The fused GAT backward (mk_graph_gat_backward: one pass over the CSR, one over the CSC, α
   * recomputed from the saved lse, nothing of size E × H): {gx, gsSrc, gsDst}, null where the
   * input needs no gradient. Not recorded: used when the backward itself is not differentiated.
   */
  private static Tensor[] gatBackwardFused(Graph g, Tensor x, Tensor sSrc, Tensor sDst, Tensor lse, double slope,
      Tensor gout) {
    String op = "gatAggregate backward";
    long n = g.numNodes(), e = g.numEdges(), heads = x.size(1), width = x.size(2);
    boolean wantX = x.requiresGrad(), wantS = sSrc.requiresGrad(), wantD = sDst.requiresGrad();
    Tensor gx = wantX ? Tensor.empty(x.shape(), x.dtype(), x.device()) : null;
    Tensor gs = wantS ? Tensor.empty(new long[] {n, heads}, x.dtype(), x.device()) : null;
    Tensor gd = wantD ? Tensor.empty(new long[] {n, heads}, x.dtype(), x.device()) : null;
    try (Scope tmp = Scope.open()) {
      Tensor rowDot = wantS || wantD ? Tensor.empty(new long[] {n, heads}, x.dtype(), x.device()) : null;
      Tensor xc = x.isContiguous() ? x : x.copyContiguous();
      Tensor ssc = sSrc.isContiguous() ? sSrc : sSrc.copyContiguous();
      Tensor sdc = sDst.isContiguous() ? sDst : sDst.copyContiguous();
      Tensor gc = gout.isContiguous() ? gout : gout.copyContiguous();
      int status = MkNative.mk_graph_gat_backward(x.device().code, x.dtype().code, n, n, e, heads, width, slope,
          g.rowPtr().address(op), g.sources().address(op), g.colPtr().address(op), g.cscDestinations().address(op),
          xc.address(op), ssc.address(op), sdc.address(op), lse.address(op), gc.address(op),
          gx == null ? 0L : gx.address(op), gs == null ? 0L : gs.address(op), gd == null ? 0L : gd.address(op),
          rowDot == null ? 0L : rowDot.address(op), x.launchStream());
      Native.check(status, "MessagePassing.gatAggregate backward " + g.describe() + ", x " + x.describe() + ", sSrc "
          + sSrc.describe() + ", sDst " + sDst.describe() + ", grad " + gout.describe());
    }
    return new Tensor[] {gx, gs, gd};
  }
}
