package org.metakernels.graph;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * A directed graph of {@code numNodes} nodes in the two compressed forms message passing needs,
 * built once from a COO edge index: the CSR by destination (row i lists the in-edges of node i,
 * the edges whose messages node i aggregates) and its transpose, the CSC by source (row j lists
 * the out-edges of node j, which the backward walks). Messages flow from source to destination.
 *
 * <p><b>Edge order.</b> The edges are sorted once, stably, by destination and then by source:
 * that is the <em>graph order</em> in which every per-edge tensor of this package is laid out
 * (edge weights, {@link MessagePassing#sddmm} scores, {@link #edgeIndex()}). The <em>input
 * order</em> is that of the edge index's columns; {@link #toGraphOrder(Tensor)} gathers a tensor
 * given in input order into graph order, differentiably, and {@link #edgePermutation()} is the
 * permutation itself. Unsorted input is fine and the result does not depend on the input order
 * of distinct edges.
 *
 * <p><b>Duplicates and self-loops.</b> A repeated (source, destination) pair is kept as separate
 * edges, so a sum counts it as often as it appears (a mean too; a max sees the same value twice).
 * Self-loops are ordinary edges; {@link #addSelfLoops()} and {@link #removeSelfLoops()} make new
 * graphs with one loop per node added or every loop removed.
 *
 * <p><b>Memory.</b> A graph owns its index tensors (and stored weights), as a module owns its
 * parameters: they belong to no scope and are freed by {@link #close()}; {@link #ownedBy(Scope)}
 * hands them to a scope instead (a graph built per batch inside a training step). The accessors
 * return the graph's own tensors: do not edit them in place. A graph is immutable, so any number
 * of threads may use one at once. Ops check that its tensors were not edited in place since it
 * was built, and a recorded backward that reads a graph refuses to run once any of its tensors was
 * edited or freed.
 *
 * <pre>{@code
 * Tensor edges = Tensor.ofIndices(new long[] {0, 1, 2, 2,   1, 2, 0, 1}, 2, 4);  // sources; destinations
 * try (Graph g = Graph.fromEdges(edges, 3)) {
 *   Tensor h = MessagePassing.aggregate(g, x, Reduce.MEAN);                     // x [3, F]: [3, F]
 * }
 * }</pre>
 */
public final class Graph implements AutoCloseable {
  private static final int MAX_EDGES = Integer.MAX_VALUE - 8;

  private final long numNodes;
  private final long numEdges;
  private final Device device;
  // CSR by destination, graph order
  private final Tensor rowPtr; // I64 [N + 1]
  private final Tensor sources; // I64 [E]: source of graph edge k
  private final Tensor edgeIds; // I64 [E]: input position of graph edge k
  // CSC by source: the transpose, each source's out-edges by destination
  private final Tensor colPtr; // I64 [N + 1]
  private final Tensor destinations; // I64 [E]: destination of CSC edge p
  private final Tensor cscToGraph; // I64 [E]: graph position of CSC edge p
  private final Tensor inDegree; // I64 [N]
  private final Tensor outDegree; // I64 [N]
  private final Tensor weight; // [E] in graph order, or null
  private final Tensor[] owned;
  private final int[] versions;

  private Graph(long numNodes, long numEdges, Device device, Tensor[] t, Tensor weight) {
    this.numNodes = numNodes;
    this.numEdges = numEdges;
    this.device = device;
    rowPtr = t[0];
    sources = t[1];
    edgeIds = t[2];
    colPtr = t[3];
    destinations = t[4];
    cscToGraph = t[5];
    inDegree = t[6];
    outDegree = t[7];
    this.weight = weight;
    List<Tensor> all = new ArrayList<>(Arrays.asList(t));
    if (weight != null) all.add(weight);
    owned = all.toArray(new Tensor[0]);
    versions = new int[owned.length];
    for (int i = 0; i < owned.length; i++) {
      Scope.transfer(owned[i].storage(), null);
      versions[i] = owned[i].storage().version();
    }
  }

  // ------------------------------------------------------------------------------------------
  // construction

  /**
   * The graph of a COO edge index without weights: column e of {@code edgeIndex} is the edge from
   * node {@code edgeIndex[0, e]} (source) to node {@code edgeIndex[1, e]} (destination).
   * {@code Graph.fromEdges(Tensor.ofIndices(new long[] {0, 1, 1, 2}, 2, 2), 3)}: edges 0 → 1 and
   * 1 → 2 on 3 nodes.
   *
   * @param edgeIndex I64 [2, E], on the device the graph will live on
   * @param numNodes N; every index must lie in [0, N)
   * @return the graph, owning its tensors (close it)
   * @throws MetakernelsException for a wrong dtype or shape or an index outside [0, N), naming the
   *     shapes and the first bad edge
   */
  public static Graph fromEdges(Tensor edgeIndex, long numNodes) {
    return fromEdges(edgeIndex, numNodes, null);
  }

  /**
   * The graph of a COO edge index with a weight per edge, kept in graph order (see
   * {@link #edgeWeight()}): {@code Graph.fromEdges(edges, n, w)} for edges I64 [2, E] and w [E].
   * The stored weights are data (a copy, never differentiated); weights to be learned are passed to
   * {@link MessagePassing#aggregate(Graph, Tensor, Tensor, Reduce)} instead.
   *
   * @param edgeIndex I64 [2, E]: sources in row 0, destinations in row 1
   * @param numNodes N; every index must lie in [0, N)
   * @param edgeWeight F32 or F64 [E] in input order, on edgeIndex's device; or null
   * @return the graph, owning its tensors (close it)
   * @throws MetakernelsException for a wrong dtype, shape or device or an index outside [0, N)
   */
  public static Graph fromEdges(Tensor edgeIndex, long numNodes, Tensor edgeWeight) {
    String op = "Graph.fromEdges";
    edgeIndex.address(op);
    if (edgeIndex.dtype() != DType.I64 || edgeIndex.rank() != 2 || edgeIndex.size(0) != 2)
      throw new MetakernelsException(
          op + ": expected an I64 [2, E] edge index (sources; destinations), got " + edgeIndex.describe());
    long e = edgeIndex.size(1);
    if (e > MAX_EDGES) throw new MetakernelsException(op + ": " + e + " edges, at most " + MAX_EDGES + " supported");
    if (edgeWeight != null) {
      edgeWeight.address(op);
      if (!edgeWeight.dtype().isFloating() || edgeWeight.rank() != 1 || edgeWeight.size(0) != e)
        throw new MetakernelsException(op + ": edge weights must be F32 or F64 [" + e + "] for edge index "
            + edgeIndex.describe() + ", got " + edgeWeight.describe());
      if (edgeWeight.device() != edgeIndex.device())
        throw new MetakernelsException(
            op + ": device mismatch: edge index " + edgeIndex.describe() + ", weights " + edgeWeight.describe());
    }
    long[] both = edgeIndex.toLongArray();
    int n = (int) e;
    long[] src = Arrays.copyOfRange(both, 0, n);
    long[] dst = Arrays.copyOfRange(both, n, 2 * n);
    return build(op, src, dst, numNodes, edgeWeight, edgeIndex.device(), "edge index " + edgeIndex.describe());
  }

  /**
   * The graph of the edges src[e] → dst[e] on the CPU, from Java arrays:
   * {@code Graph.fromEdges(new long[] {0, 1}, new long[] {1, 2}, 3)}.
   *
   * @param src the source of each edge
   * @param dst the destination of each edge, as many as src
   * @param numNodes N; every index must lie in [0, N)
   * @return the graph, owning its tensors (close it)
   * @throws MetakernelsException for arrays of different lengths or an index outside [0, N)
   */
  public static Graph fromEdges(long[] src, long[] dst, long numNodes) {
    String op = "Graph.fromEdges";
    if (src.length != dst.length)
      throw new MetakernelsException(op + ": " + src.length + " sources but " + dst.length + " destinations");
    return build(op, src.clone(), dst.clone(), numNodes, null, Device.CPU, "edges [" + src.length + "]");
  }

  /**
   * Sorts, validates and uploads. src/dst are in input order; weights (input order) may be null.
   */
  private static Graph build(
      String op, long[] src, long[] dst, long numNodes, Tensor weightIn, Device device, String what) {
    if (numNodes < 0 || numNodes > MAX_EDGES)
      throw new MetakernelsException(
          op + ": numNodes = " + numNodes + " outside [0, " + MAX_EDGES + "] (" + what + ")");
    int n = (int) numNodes;
    int e = src.length;
    for (int i = 0; i < e; i++) {
      if (src[i] < 0 || src[i] >= numNodes || dst[i] < 0 || dst[i] >= numNodes) {
        int bad = 0;
        for (int j = 0; j < e; j++)
          if (src[j] < 0 || src[j] >= numNodes || dst[j] < 0 || dst[j] >= numNodes) bad++;
        boolean s = src[i] < 0 || src[i] >= numNodes;
        throw new MetakernelsException(op + ": " + what + " for " + numNodes + " nodes: " + bad + " edge(s) with a node"
            + " outside [0, " + numNodes + "), the first is edge " + i + " (" + src[i] + " -> " + dst[i] + "), whose "
            + (s ? "source" : "destination") + " is out of range");
      }
    }
    // graph order: a stable counting sort by source, then a stable one by destination, gives the
    // edges by destination, then source, then input position: O(E + N), deterministic
    int[] bySrc = countingSort(src, identity(e), n);
    int[] perm = countingSort(dst, bySrc, n); // perm[k]: input position of graph edge k
    long[] rowPtr = new long[n + 1];
    long[] colPtr = new long[n + 1];
    long[] sources = new long[e];
    long[] ids = new long[e];
    for (int k = 0; k < e; k++) {
      int i = perm[k];
      ids[k] = i;
      sources[k] = src[i];
      rowPtr[(int) dst[i] + 1]++;
      colPtr[(int) src[i] + 1]++;
    }
    long[] inDeg = new long[n];
    long[] outDeg = new long[n];
    for (int v = 0; v < n; v++) {
      inDeg[v] = rowPtr[v + 1];
      outDeg[v] = colPtr[v + 1];
      rowPtr[v + 1] += rowPtr[v];
      colPtr[v + 1] += colPtr[v];
    }
    // CSC: graph positions sorted stably by source (so by source, then destination, then input)
    int[] csc = countingSort(sources, identity(e), n);
    long[] destinations = new long[e];
    long[] cscToGraph = new long[e];
    for (int p = 0; p < e; p++) {
      cscToGraph[p] = csc[p];
      destinations[p] = dst[perm[csc[p]]];
    }
    Tensor[] t = new Tensor[8];
    Tensor w = null;
    try (Scope tmp = Scope.open()) {
      long[][] host = {rowPtr, sources, ids, colPtr, destinations, cscToGraph, inDeg, outDeg};
      for (int i = 0; i < host.length; i++) t[i] = tmp.keep(upload(host[i], device));
      if (weightIn != null) {
        try (var ng = Autograd.noGrad()) {
          w = tmp.keep(weightIn.detach().indexSelect(0, t[2])); // a copy, in graph order
        }
      }
    }
    return new Graph(numNodes, e, device, t, w);
  }

  private static int[] identity(int e) {
    int[] r = new int[e];
    for (int i = 0; i < e; i++) r[i] = i;
    return r;
  }

  /** The elements of {@code order} (indices into key), stably sorted by key[order[i]] in [0, n). */
  private static int[] countingSort(long[] key, int[] order, int n) {
    int[] start = new int[n + 1];
    for (int i : order) start[(int) key[i] + 1]++;
    for (int v = 0; v < n; v++) start[v + 1] += start[v];
    int[] out = new int[order.length];
    for (int i : order) out[start[(int) key[i]]++] = i;
    return out;
  }

  private static Tensor upload(long[] data, Device device) {
    Tensor t = Tensor.ofIndices(data, data.length);
    return device == Device.CPU ? t : t.to(device);
  }

  // ------------------------------------------------------------------------------------------
  // derived graphs

  /**
   * This graph plus one self-loop i → i per node (existing loops stay: D^-1/2 (A + I) D^-1/2
   * counts the diagonal twice where A already had it). Input order of the new graph: this graph's
   * edges in their input order, then the N loops by node; stored weights get 1 for the loops.
   * {@code g.addSelfLoops().numEdges()} is E + N.
   *
   * @return a new graph (close it too)
   */
  public Graph addSelfLoops() {
    String op = "Graph.addSelfLoops";
    Host h = host(op);
    int e = h.src.length, n = (int) numNodes;
    long[] src = Arrays.copyOf(h.src, e + n);
    long[] dst = Arrays.copyOf(h.dst, e + n);
    for (int i = 0; i < n; i++) {
      src[e + i] = i;
      dst[e + i] = i;
    }
    double[] w = h.weight == null ? null : Arrays.copyOf(h.weight, e + n);
    if (w != null) Arrays.fill(w, e, e + n, 1.0);
    return build(op, src, dst, numNodes, weights(w), device, "graph of " + numNodes + " nodes, " + e + " edges");
  }

  /**
   * This graph without its self-loops (edges i → i); the other edges keep their input order and
   * weights. {@code g.removeSelfLoops()}: a new graph (close it too).
   *
   * @return a new graph
   */
  public Graph removeSelfLoops() {
    String op = "Graph.removeSelfLoops";
    Host h = host(op);
    int e = h.src.length, m = 0;
    long[] src = new long[e];
    long[] dst = new long[e];
    double[] w = h.weight == null ? null : new double[e];
    for (int i = 0; i < e; i++) {
      if (h.src[i] == h.dst[i]) continue;
      src[m] = h.src[i];
      dst[m] = h.dst[i];
      if (w != null) w[m] = h.weight[i];
      m++;
    }
    return build(op, Arrays.copyOf(src, m), Arrays.copyOf(dst, m), numNodes,
        w == null ? null : weights(Arrays.copyOf(w, m)), device, "graph of " + numNodes + " nodes, " + e + " edges");
  }

  /**
   * The GCN propagation graph (Kipf and Welling): this graph plus one self-loop per node
   * ({@link #addSelfLoops()}), whose stored weights are the symmetric normalisation
   * D^-1/2 (A + I) D^-1/2, i.e. w_k / sqrt(deg(dst_k) · deg(src_k)) for edge k, deg(i) being the
   * weighted in-degree of node i in A + I (the stored weights, or 1 per edge, and 1 per added loop);
   * a node of degree 0 contributes 0 (as PyG's gcn_norm). Computed in float64, stored in
   * {@code dtype} (the stored weights' type if this graph has weights).
   * {@code Graph gn = g.gcnNormalized(DType.F32); MessagePassing.aggregate(gn, x, gn.edgeWeight(), Reduce.SUM)}.
   *
   * @param dtype F32 or F64, used when this graph has no weights of its own
   * @return a new graph with weights (close it too)
   */
  public Graph gcnNormalized(DType dtype) {
    String op = "Graph.gcnNormalized";
    if (!dtype.isFloating()) throw new MetakernelsException(op + ": dtype must be F32 or F64, got " + dtype);
    Host h = host(op);
    int e = h.src.length, n = (int) numNodes;
    long[] src = Arrays.copyOf(h.src, e + n);
    long[] dst = Arrays.copyOf(h.dst, e + n);
    double[] w = new double[e + n];
    for (int i = 0; i < e; i++) w[i] = h.weight == null ? 1.0 : h.weight[i];
    for (int i = 0; i < n; i++) {
      src[e + i] = i;
      dst[e + i] = i;
      w[e + i] = 1.0;
    }
    double[] deg = new double[n];
    for (int i = 0; i < e + n; i++) deg[(int) dst[i]] += w[i]; // input order: a fixed sum order
    double[] inv = new double[n];
    for (int v = 0; v < n; v++) inv[v] = deg[v] == 0 ? 0.0 : 1.0 / Math.sqrt(deg[v]);
    for (int i = 0; i < e + n; i++) w[i] = inv[(int) dst[i]] * w[i] * inv[(int) src[i]];
    DType wt = weight != null ? weight.dtype() : dtype;
    try (Scope tmp = Scope.open()) {
      Tensor wIn = Tensor.of(w, e + n);
      if (wt != DType.F64) wIn = wIn.castTo(wt);
      if (device != Device.CPU) wIn = wIn.to(device);
      return build(op, src, dst, numNodes, wIn, device, "graph of " + numNodes + " nodes, " + e + " edges");
    }
  }

  /**
   * A copy of this graph on {@code device} (this graph itself if already there). A new graph owns
   * the copies: close it too. {@code g.to(Device.CUDA)}.
   *
   * @param target the device
   * @return the graph on that device
   */
  public Graph to(Device target) {
    checkIntact("Graph.to");
    if (target == device) return this;
    Tensor[] t = new Tensor[8];
    Tensor w = null;
    Tensor[] mine = {rowPtr, sources, edgeIds, colPtr, destinations, cscToGraph, inDegree, outDegree};
    try (Scope tmp = Scope.open(); var ng = Autograd.noGrad()) {
      for (int i = 0; i < mine.length; i++) t[i] = tmp.keep(mine[i].to(target));
      if (weight != null) w = tmp.keep(weight.to(target));
    }
    return new Graph(numNodes, numEdges, target, t, w);
  }

  /** Host copies of the edges and weights in input order. */
  private record Host(long[] src, long[] dst, double[] weight) {}

  private Host host(String op) {
    checkIntact(op);
    long[] ptr = rowPtr.toLongArray();
    long[] s = sources.toLongArray();
    long[] ids = edgeIds.toLongArray();
    double[] w = weight == null ? null : weight.toDoubleArray();
    int e = s.length;
    long[] src = new long[e];
    long[] dst = new long[e];
    double[] win = w == null ? null : new double[e];
    for (int v = 0; v < numNodes; v++)
      for (long k = ptr[v]; k < ptr[v + 1]; k++) {
        int i = (int) ids[(int) k];
        src[i] = s[(int) k];
        dst[i] = v;
        if (win != null) win[i] = w[(int) k];
      }
    return new Host(src, dst, win);
  }

  private Tensor weights(double[] w) {
    if (w == null) return null;
    Tensor t = Tensor.of(w, w.length);
    if (weight.dtype() != DType.F64) t = t.castTo(weight.dtype());
    return device == Device.CPU ? t : t.to(device);
  }

  // ------------------------------------------------------------------------------------------
  // ownership

  /**
   * Hands this graph's tensors to {@code scope}, which frees them when it closes (closing the graph
   * earlier frees them too): for a graph built inside a step, {@code Graph g =
   * Graph.fromEdges(edges, n).ownedBy(Scope.current())}.
   *
   * @param scope an open scope, or null to give them back to the graph's own keeping
   * @return this graph
   */
  public Graph ownedBy(Scope scope) {
    for (Tensor t : owned) Scope.transfer(t.storage(), scope);
    return this;
  }

  /** Frees the graph's tensors (idempotent). A backward that reads the graph then refuses to run. */
  @Override
  public void close() {
    for (Tensor t : owned) t.close();
  }

  /**
   * True once {@link #close()} ran (or the scope it was handed to closed).
   *
   * @return whether the graph's memory is gone
   */
  public boolean isClosed() {
    for (Tensor t : owned)
      if (t.isClosed()) return true;
    return false;
  }

  /**
   * Throws unless every tensor of the graph is alive and unedited since the graph was built, as
   * every op on the graph does first: for layers that cache what they derive from a graph.
   * {@code g.checkIntact("MyLayer.forward")}.
   *
   * @param op the caller, for the message
   * @throws IllegalStateException naming op and the graph when it was closed or edited in place
   */
  public void checkIntact(String op) {
    for (int i = 0; i < owned.length; i++) {
      if (owned[i].isClosed())
        throw new IllegalStateException(
            op + ": the graph (" + describe() + ") was closed (its tensor " + owned[i].describe() + " was freed)");
      if (owned[i].storage().version() != versions[i])
        throw new IllegalStateException(op + ": the graph (" + describe() + ") was modified in place after it was built"
            + " (its tensor " + owned[i].describe() + "); build a new graph instead");
    }
  }

  // ------------------------------------------------------------------------------------------
  // accessors

  /**
   * N, the number of nodes.
   *
   * @return the node count
   */
  public long numNodes() {
    return numNodes;
  }

  /**
   * E, the number of edges (duplicates counted).
   *
   * @return the edge count
   */
  public long numEdges() {
    return numEdges;
  }

  /**
   * The device of the graph's tensors; ops need their features there.
   *
   * @return the device
   */
  public Device device() {
    return device;
  }

  /**
   * Whether the graph stores edge weights ({@link #edgeWeight()}).
   *
   * @return true when built with weights (or by {@link #gcnNormalized(DType)})
   */
  public boolean hasWeights() {
    return weight != null;
  }

  /**
   * The stored edge weights in graph order, F32 or F64 [E], or null (the graph's own tensor).
   *
   * @return the weights or null
   */
  public Tensor edgeWeight() {
    return weight;
  }

  /**
   * CSR row pointer by destination, I64 [N + 1]: the in-edges of node i are the graph-order edges
   * [rowPtr[i], rowPtr[i + 1]). The graph's own tensor.
   *
   * @return the row pointer
   */
  public Tensor rowPtr() {
    return rowPtr;
  }

  /**
   * The source of each edge in graph order, I64 [E] (the CSR column indices). The graph's own tensor.
   *
   * @return the sources
   */
  public Tensor sources() {
    return sources;
  }

  /**
   * CSC column pointer by source, I64 [N + 1]: the out-edges of node j are the CSC positions
   * [colPtr[j], colPtr[j + 1]) (sorted by destination). The graph's own tensor.
   *
   * @return the column pointer
   */
  public Tensor colPtr() {
    return colPtr;
  }

  /**
   * The destination of each edge in CSC order, I64 [E]. The graph's own tensor.
   *
   * @return the destinations, CSC order
   */
  public Tensor cscDestinations() {
    return destinations;
  }

  /**
   * For each CSC position p, the graph-order position of that edge, I64 [E]. The graph's own tensor.
   *
   * @return the permutation from CSC order to graph order
   */
  public Tensor cscToGraph() {
    return cscToGraph;
  }

  /**
   * For each graph-order edge k, its column in the edge index the graph was built from, I64 [E].
   * The graph's own tensor.
   *
   * @return the permutation from graph order to input order
   */
  public Tensor edgePermutation() {
    return edgeIds;
  }

  /**
   * The number of in-edges of each node (messages it receives), I64 [N]. The graph's own tensor.
   *
   * @return the in-degrees
   */
  public Tensor inDegrees() {
    return inDegree;
  }

  /**
   * The number of out-edges of each node (messages it sends), I64 [N]. The graph's own tensor.
   *
   * @return the out-degrees
   */
  public Tensor outDegrees() {
    return outDegree;
  }

  /**
   * The edges in graph order as a new I64 [2, E] tensor (sources; destinations), owned by the
   * caller's scope: {@code g.edgeIndex()}.
   *
   * @return the sorted edge index
   */
  public Tensor edgeIndex() {
    checkIntact("Graph.edgeIndex");
    long[] ptr = rowPtr.toLongArray();
    long[] s = sources.toLongArray();
    int e = s.length;
    long[] both = Arrays.copyOf(s, 2 * e);
    for (int v = 0; v < numNodes; v++)
      for (long k = ptr[v]; k < ptr[v + 1]; k++) both[e + (int) k] = v;
    Tensor t = Tensor.ofIndices(both, 2, e);
    return device == Device.CPU ? t : t.to(device);
  }

  /**
   * A per-edge tensor given in input order (the edge index's columns), gathered into graph order;
   * differentiable (the gradient is scattered back). {@code g.toGraphOrder(w)} for w [E] or
   * [E, H] keeps w's shape.
   *
   * @param perEdge [E, ...] in input order, on the graph's device
   * @return [E, ...] in graph order
   */
  public Tensor toGraphOrder(Tensor perEdge) {
    String op = "Graph.toGraphOrder";
    checkIntact(op);
    perEdge.address(op);
    if (perEdge.rank() < 1 || perEdge.size(0) != numEdges)
      throw new MetakernelsException(
          op + ": expected [" + numEdges + ", ...] for " + describe() + ", got " + perEdge.describe());
    if (perEdge.device() != device)
      throw new MetakernelsException(op + ": device mismatch: " + describe() + ", " + perEdge.describe());
    return perEdge.indexSelect(0, edgeIds);
  }

  /**
   * Nodes, edges and device, for messages: "Graph(5 nodes, 12 edges)".
   *
   * @return the description
   */
  public String describe() {
    return "Graph(" + numNodes + " nodes, " + numEdges + " edges"
        + (weight != null ? ", weighted " + weight.dtype() : "") + (device == Device.CPU ? "" : ", " + device) + ")";
  }

  @Override
  public String toString() {
    return describe();
  }
}
