package org.metakernels.bench;

import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.Graph;
import org.metakernels.graph.Graphs;
import org.metakernels.graph.MessagePassing;
import org.metakernels.graph.Reduce;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Graph message passing, F32 on the CPU: weighted aggregation out[i] = ⊕_{k: dst_k = i} w_k x[src_k]
 * (⊕ sum or mean) over a seeded R-MAT power-law graph ({@link Graphs#rmat}, Graph500
 * probabilities) of {@code nodes} nodes and {@code edges} edges, x [nodes, features], one weight
 * per edge.
 * <ul>
 *   <li>{@code forward}: the aggregation;
 *   <li>{@code forwardBackward}: the aggregation, then the gradients of x and of the edge weights
 *       for a random dOut;
 *   <li>{@code copy}: a copy of 2^26 floats (256 MiB read, 256 MiB written), the machine's copy
 *       bandwidth in the same run, against which the set-up's note of the bytes each aggregation
 *       moves gives a share of copy bandwidth.
 * </ul>
 * Vendors: {@code metakernels} ({@link MessagePassing#aggregate}: CSR SpMM, no E x F buffer, the
 * backward a CSC SpMM and an SDDMM); {@code libtorch-index_add}: zeros.index_add(0, dst,
 * x.index_select(0, src) · w) (PyG's scatter form, an [E, F] message buffer; mean divides by the
 * in-degree); {@code libtorch-csr}: torch.mm of a sparse CSR tensor (crow = the graph's row
 * pointer, col = sources, values = w) with x, its x-gradient by autograd and its weight gradient by
 * torch.sparse_sampled_addmm (libtorch's sparse_csr_tensor does not pass gradients to its values). The graph is built
 * once per trial for every vendor (the CSR sort is not timed; neither is libtorch's index or CSR construction). Every
 * set-up checks its vendor's result against metakernels' on the timed quantity first.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class GraphBench {
  static final long SEED = 2026L;

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"1000000", "10000000"}) public long edges;

    @Param({"16", "64", "256"}) public int features;

    @Param({"100000"}) public long nodes;

    @Param({"sum", "mean", "max"}) public String reduce;

    // "vendor" sorts after the other parameters: JMH orders parameters by name, so each shape
    // runs metakernels and its peers back to back and their ratio sees the same machine state.
    @Param({"metakernels", "libtorch-index_add", "libtorch-csr"}) public String vendor;

    Scope scope;
    Graph g;
    Tensor x, w, dOut, xl, wl;
    Reduce red;
    TorchGraph t;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      init(params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1));
    }

    /** The set-up for benchmark method {@code mode} ("forward", "forwardBackward", "copy"). */
    void init(String mode) {
      Torch.configure(vendor);
      String what =
          "GraphBench." + mode + " nodes=" + nodes + " edges=" + edges + " features=" + features + " " + reduce;
      red = Reduce.valueOf(reduce.toUpperCase());
      if (vendor.equals("libtorch-index_add")) // x.index_select(0, src) and its product with w, [E, F] each
        Checks.requireMemory(
            what + " libtorch index_add messages", (mode.equals("forward") ? 2 : 4) * edges * features * 4);
      if (vendor.equals("libtorch-csr") && red == Reduce.MAX) // segment_reduce reads an [E, F] message buffer
        Checks.requireMemory(
            what + " libtorch segment_reduce messages", (mode.equals("forward") ? 2 : 4) * edges * features * 4);
      scope = Scope.open();
      try (Scope tmp = Scope.open()) {
        g = Graph.fromEdges(Graphs.rmat(nodes, edges, SEED), nodes);
      }
      x = Tensor.randn(new long[] {nodes, features}, DType.F32, Device.CPU, SEED + 1);
      w = Tensor.uniform(new long[] {edges}, 0.5, 1.5, DType.F32, Device.CPU, SEED + 2); // graph order
      dOut = Tensor.randn(new long[] {nodes, features}, DType.F32, Device.CPU, SEED + 3);
      xl = x.detach().requiresGrad(true);
      wl = w.detach().requiresGrad(true);
      if (!mode.equals("copy")) {
        if (red != Reduce.MAX) noteBytes(what, mode);
        if (!vendor.equals("metakernels")) t = new TorchGraph(this, vendor.equals("libtorch-csr"));
        check(what, mode);
        if (t != null) {
          Runnable op = mode.equals("forward") ? () -> t.forward(this) : () -> t.forwardBackward(this);
          Torch.pickBlasThreads(what, op);
          PeakMemory.noteCall(what, vendor, op);
        } else {
          PeakMemory.noteCall(what, vendor, mode.equals("forward") ? () -> mkForward(this) : () -> mkForwardBackward(this));
        }
      }
    }

    /** The bytes an aggregation must move at least, noted for the report (% of copy bandwidth). */
    void noteBytes(String what, String mode) {
      Checks.note(GraphBytes.note(what, GraphBytes.spmm(nodes, edges, features, !mode.equals("forward"))));
    }

    /** The vendor's result against metakernels' on the timed quantity. */
    void check(String what, String mode) {
      if (red == Reduce.MAX && t == null) {
        checkMaxNaive(what, mode);
        return;
      }
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] mine = mode.equals("forward") ? new Tensor[] {mkForward(this)} : mkForwardBackward(this);
        // the metakernels fork checks against the CSR peer (no [E, F] buffer, so it fits at every shape)
        TorchGraph peer = t != null ? t : new TorchGraph(this, true);
        try {
          org.bytedeco.pytorch.Tensor[] theirs = mode.equals("forward")
              ? new org.bytedeco.pytorch.Tensor[] {peer.forward(this)}
              : peer.forwardBackward(this);
          String[] names = mode.equals("forward") ? new String[] {"out"} : new String[] {"dx", "dw"};
          String against = t != null ? vendor : "libtorch-csr";
          for (int i = 0; i < mine.length; i++)
            Checks.assertClose(what + " " + names[i] + " metakernels vs " + against, mine[i].toFloatArray(),
                Torch.toFloats(theirs[i]), 1e-4, 1e-3);
        } finally {
          if (peer != t) peer.close();
        }
      }
    }

    /**
     * The metakernels fork of max: against a naive loop over the CSR here (libtorch's max forms need
     * an [E, F] buffer, which the largest shapes do not fit): out[i, c] = max_k w_k x[src_k, c]
     * (0 without in-edges; the first of equal maxima), dx and dw by routing dOut[i, c] to that edge.
     */
    void checkMaxNaive(String what, String mode) {
      try (Scope s = Scope.open()) {
        Tensor[] mine = mode.equals("forward") ? new Tensor[] {mkForward(this)} : mkForwardBackward(this);
        long[] ptr = g.rowPtr().toLongArray(), col = g.sources().toLongArray();
        float[] xv = x.toFloatArray(), wv = w.toFloatArray(), gv = dOut.toFloatArray();
        int n = (int) nodes, f = features;
        float[] out = new float[n * f], dx = new float[n * f], dw = new float[(int) edges];
        int[] best = new int[f];
        float[] m = new float[f];
        for (int i = 0; i < n; i++) {
          java.util.Arrays.fill(best, -1);
          for (int k = (int) ptr[i]; k < ptr[i + 1]; k++) { // CSR order: the first of equal maxima stays
            int row = (int) col[k] * f;
            for (int c = 0; c < f; c++) {
              float v = wv[k] * xv[row + c];
              if (best[c] < 0 || v > m[c]) {
                m[c] = v;
                best[c] = k;
              }
            }
          }
          for (int c = 0; c < f; c++) {
            if (best[c] < 0) continue; // no in-edges: out 0, no gradient
            int k = best[c], src = (int) col[k];
            out[i * f + c] = m[c];
            dx[src * f + c] += gv[i * f + c] * wv[k];
            dw[k] += gv[i * f + c] * xv[src * f + c];
          }
        }
        float[][] ref = mode.equals("forward") ? new float[][] {out} : new float[][] {dx, dw};
        String[] names = mode.equals("forward") ? new String[] {"out"} : new String[] {"dx", "dw"};
        for (int i = 0; i < mine.length; i++)
          Checks.assertClose(
              what + " " + names[i] + " metakernels vs a naive loop", mine[i].toFloatArray(), ref[i], 1e-4, 1e-3);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (t != null) t.close();
      if (g != null) g.close();
      if (scope != null) scope.close();
    }
  }

  /** libtorch copies of the graph (COO in graph order, CSR) and of the features. */
  static final class TorchGraph {
    final org.bytedeco.pytorch.Tensor src, dst, crow, col, x, w, dOut, invDeg, xl, wl, noIn;
    final boolean csr;

    TorchGraph(Inputs in, boolean csr) {
      this.csr = csr;
      long[] ei = in.g.edgeIndex().toLongArray();
      int e = (int) in.edges;
      src = longs(java.util.Arrays.copyOfRange(ei, 0, e));
      dst = longs(java.util.Arrays.copyOfRange(ei, e, 2 * e));
      crow = longs(in.g.rowPtr().toLongArray());
      col = longs(in.g.sources().toLongArray());
      x = Torch.copyOf(in.x);
      w = Torch.copyOf(in.w);
      dOut = Torch.copyOf(in.dOut);
      long[] deg = in.g.inDegrees().toLongArray();
      float[] inv = new float[deg.length];
      for (int i = 0; i < deg.length; i++) inv[i] = 1.0f / Math.max(deg[i], 1);
      invDeg = Torch.fromFloats(inv, deg.length, 1);
      float[] none = new float[deg.length];
      for (int i = 0; i < deg.length; i++) none[i] = deg[i] == 0 ? 1f : 0f;
      noIn = Torch.fromFloats(none, deg.length, 1).gt(new Scalar(0.5f)); // nodes without in-edges, [N, 1] bool
      xl = Torch.leaf(x);
      wl = Torch.leaf(w);
    }

    static org.bytedeco.pytorch.Tensor longs(long[] v) {
      try (LongPointer p = new LongPointer(v)) {
        org.bytedeco.pytorch.Tensor view =
            torch.from_blob(p, new long[] {v.length}, new TensorOptions(torch.ScalarType.Long));
        org.bytedeco.pytorch.Tensor owned = view.clone();
        view.close();
        return owned;
      }
    }

    org.bytedeco.pytorch.Tensor aggregate(Inputs in, org.bytedeco.pytorch.Tensor xv, org.bytedeco.pytorch.Tensor wv) {
      org.bytedeco.pytorch.Tensor out;
      if (in.red == Reduce.MAX) {
        // the messages w_k x[src_k] in graph (= CSR) order, [E, F]; their per-destination maximum by
        // index_reduce "amax" without the zeros it starts from (PyG's scatter max), or by
        // segment_reduce over the CSR offsets, whose empty segments are set to 0 here
        org.bytedeco.pytorch.Tensor msg = torch.index_select(xv, 0, src).mul(wv.unsqueeze(1));
        if (!csr)
          return torch.zeros(new long[] {in.nodes, in.features}, new TensorOptions(torch.ScalarType.Float))
              .index_reduce(0, dst, msg, "amax", false);
        out = torch.segment_reduce(msg, "max", new TensorOptional(), new TensorOptional(), new TensorOptional(crow), 0,
            true, new ScalarOptional());
        return out.masked_fill(noIn, new Scalar(0.0f));
      }
      if (csr) {
        org.bytedeco.pytorch.Tensor a = torch.sparse_csr_tensor(
            crow, col, wv, new long[] {in.nodes, in.nodes}, new TensorOptions(torch.ScalarType.Float));
        out = torch.mm(a, xv);
      } else {
        org.bytedeco.pytorch.Tensor msg = torch.index_select(xv, 0, src).mul(wv.unsqueeze(1));
        out = torch.zeros(new long[] {in.nodes, in.features}, new TensorOptions(torch.ScalarType.Float))
                  .index_add(0, dst, msg);
      }
      return in.red == Reduce.MEAN ? out.mul(invDeg) : out;
    }

    org.bytedeco.pytorch.Tensor forward(Inputs in) {
      return aggregate(in, x, w);
    }

    org.bytedeco.pytorch.Tensor[] forwardBackward(Inputs in) {
      if (!csr || in.red == Reduce.MAX) {
        org.bytedeco.pytorch.Tensor out = aggregate(in, xl, wl);
        TensorVector g = Torch.grad(new TensorVector(out), new TensorVector(xl, wl), new TensorVector(dOut), false);
        return new org.bytedeco.pytorch.Tensor[] {g.get(0), g.get(1)};
      }
      // libtorch's sparse_csr_tensor does not pass gradients on to its values: dx by autograd
      // through mm (Aᵀ dOut), dw by the sampled product (dOut xᵀ at A's non-zeros, an SDDMM)
      org.bytedeco.pytorch.Tensor out = aggregate(in, xl, w);
      TensorVector g = Torch.grad(new TensorVector(out), new TensorVector(xl), new TensorVector(dOut), false);
      org.bytedeco.pytorch.Tensor a = torch.sparse_csr_tensor(
          crow, col, w, new long[] {in.nodes, in.nodes}, new TensorOptions(torch.ScalarType.Float));
      org.bytedeco.pytorch.Tensor gOut = in.red == Reduce.MEAN ? dOut.mul(invDeg) : dOut;
      org.bytedeco.pytorch.Tensor dw =
          torch.sparse_sampled_addmm(a, gOut, x.t(), new Scalar(0.0), new Scalar(1.0)).values();
      return new org.bytedeco.pytorch.Tensor[] {g.get(0), dw};
    }

    void close() {
      for (org.bytedeco.pytorch.Tensor z :
          new org.bytedeco.pytorch.Tensor[] {src, dst, crow, col, x, w, dOut, invDeg, xl, wl, noIn})
        z.close();
    }
  }

  static Tensor mkForward(Inputs in) {
    return MessagePassing.aggregate(in.g, in.x, in.w, in.red);
  }

  static Tensor[] mkForwardBackward(Inputs in) {
    Tensor out = MessagePassing.aggregate(in.g, in.xl, in.wl, in.red);
    return Autograd.grad(List.of(out), List.of(in.xl, in.wl), List.of(in.dOut), false).toArray(new Tensor[0]);
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mkForward(in));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(in.t.forward(in));
      }
    }
  }

  @Benchmark
  public void forwardBackward(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mkForwardBackward(in));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(in.t.forwardBackward(in));
      }
    }
  }

  /** The copy bandwidth of this machine in the same run: 2^26 floats, read and written. */
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class CopyState {
    Scope scope;
    Tensor src;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure("metakernels");
      scope = Scope.open();
      src = Tensor.randn(new long[] {1L << 26}, DType.F32, Device.CPU, 1L);
      Checks.note("GraphBench.copy: 2^26 floats, 536.9 MB moved per call (268.4 MB read, 268.4 MB written)");
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      scope.close();
    }
  }

  @Benchmark
  public void copy(CopyState s, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(s.src.copyContiguous());
    }
  }

  // ---- GAT layer: scores, edge softmax and aggregation, forward and backward ---------------------

  /**
   * The attention part of a GAT layer (PyG's GATConv after its linear map), F32 on the CPU, over
   * the R-MAT graph: xh [nodes, H, F], attention vectors aSrc, aDst [H, F];
   * sSrc = Σ_f xh·aSrc, sDst = Σ_f xh·aDst, e = leakyReLU(sSrc[src] + sDst[dst], 0.2), α = softmax
   * of e over each node's in-edges, out[i] = Σ_j α_ij xh[j]; the gradients of xh, aSrc and aDst
   * for a random dOut ({@code gatForwardBackward}). Vendors: {@code metakernels}
   * ({@link MessagePassing#gatAggregate}: one fused pass per node, only the row log-sum-exp [N, H]
   * kept; the backward fused, a pass over the CSR and one over the CSC, no [E, H] buffer); {@code libtorch}: the
   * composed form a PyTorch user writes (PyG's softmax): index_select of the scores, leaky_relu,
   * scatter_reduce amax of the detached scores, exp, index_add of the sums, the division, then
   * index_add of xh[src]·α (an [E, H, F] message buffer), backward by autograd. The set-up checks
   * out, dxh, daSrc and daDst of the two against each other.
   */
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class GatInputs {
    @Param({"1000000", "10000000"}) public long edges;

    @Param({"100000"}) public long nodes;

    /** heads x features per head. */
    @Param({"4x16", "8x8"}) public String shape;

    @Param({"metakernels", "libtorch"}) public String vendor;

    int heads, width;
    Scope scope;
    Graph g;
    Tensor xh, aSrc, aDst, dOut;
    org.bytedeco.pytorch.Tensor src, dst, dstH, txh, taSrc, taDst, tdOut;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      heads = Integer.parseInt(shape.substring(0, shape.indexOf('x')));
      width = Integer.parseInt(shape.substring(shape.indexOf('x') + 1));
      String what = "GraphBench.gatForwardBackward nodes=" + nodes + " edges=" + edges + " " + shape;
      if (vendor.equals("libtorch")) // xh[src], its product with α and their gradients: [E, H, F] each
        Checks.requireMemory(what + " libtorch messages", 4 * edges * heads * width * 4);
      scope = Scope.open();
      try (Scope tmp = Scope.open()) {
        g = Graph.fromEdges(Graphs.rmat(nodes, edges, SEED), nodes);
      }
      xh = Tensor.randn(new long[] {nodes, heads, width}, DType.F32, Device.CPU, SEED + 11).requiresGrad(true);
      aSrc = Tensor.randn(new long[] {heads, width}, DType.F32, Device.CPU, SEED + 12).mul(0.3).detach()
                 .requiresGrad(true);
      aDst = Tensor.randn(new long[] {heads, width}, DType.F32, Device.CPU, SEED + 13).mul(0.3).detach()
                 .requiresGrad(true);
      dOut = Tensor.randn(new long[] {nodes, heads, width}, DType.F32, Device.CPU, SEED + 14);
      long[] ei = g.edgeIndex().toLongArray();
      int e = (int) edges;
      src = TorchGraph.longs(java.util.Arrays.copyOfRange(ei, 0, e));
      dst = TorchGraph.longs(java.util.Arrays.copyOfRange(ei, e, 2 * e));
      dstH = dst.unsqueeze(1).expand(edges, heads).contiguous();
      txh = Torch.leaf(Torch.copyOf(xh.detach()));
      taSrc = Torch.leaf(Torch.copyOf(aSrc.detach()));
      taDst = Torch.leaf(Torch.copyOf(aDst.detach()));
      tdOut = Torch.copyOf(dOut);
      // where libtorch's [E, H, F] buffers for all heads do not fit (10M edges), check() compares head 0
      check(what);
      if (vendor.equals("libtorch")) Torch.pickBlasThreads(what, () -> torchForwardBackward());
      PeakMemory.noteCall(what, vendor, vendor.equals("metakernels") ? this::mk : this::torchForwardBackward);
    }

    Tensor[] mk() {
      Tensor sSrc = xh.mul(aSrc.reshape(1, heads, width)).sum(2, false);
      Tensor sDst = xh.mul(aDst.reshape(1, heads, width)).sum(2, false);
      Tensor out = MessagePassing.gatAggregate(g, xh, sSrc, sDst, 0.2);
      List<Tensor> gr = Autograd.grad(List.of(out), List.of(xh, aSrc, aDst), List.of(dOut), false);
      return new Tensor[] {out, gr.get(0), gr.get(1), gr.get(2)};
    }

    org.bytedeco.pytorch.Tensor[] torchForwardBackward() {
      return torchGat(txh, taSrc, taDst, tdOut, heads, dstH);
    }

    /** libtorch's GAT layer and its gradients on txh [N, h, width] (h = heads, or 1 for head 0 alone). */
    org.bytedeco.pytorch.Tensor[] torchGat(org.bytedeco.pytorch.Tensor txh, org.bytedeco.pytorch.Tensor taSrc,
        org.bytedeco.pytorch.Tensor taDst, org.bytedeco.pytorch.Tensor tdOut, int heads,
        org.bytedeco.pytorch.Tensor dstH) {
      org.bytedeco.pytorch.Tensor sSrc = txh.mul(taSrc.unsqueeze(0)).sum(2);
      org.bytedeco.pytorch.Tensor sDst = txh.mul(taDst.unsqueeze(0)).sum(2);
      org.bytedeco.pytorch.Tensor z = torch.index_select(sSrc, 0, src).add(torch.index_select(sDst, 0, dst));
      org.bytedeco.pytorch.Tensor e = torch.leaky_relu(z, new Scalar(0.2));
      TensorOptions f32 = new TensorOptions(torch.ScalarType.Float);
      org.bytedeco.pytorch.Tensor max = torch.zeros(new long[] {nodes, heads}, f32)
                                            .scatter_reduce(0, dstH, e.detach(), "amax", false);
      org.bytedeco.pytorch.Tensor p = e.sub(torch.index_select(max, 0, dst)).exp();
      org.bytedeco.pytorch.Tensor sum = torch.zeros(new long[] {nodes, heads}, f32).index_add(0, dst, p);
      org.bytedeco.pytorch.Tensor alpha = p.div(torch.index_select(sum, 0, dst));
      org.bytedeco.pytorch.Tensor msg = torch.index_select(txh, 0, src).mul(alpha.unsqueeze(2));
      org.bytedeco.pytorch.Tensor out = torch.zeros(new long[] {nodes, heads, width}, f32).index_add(0, dst, msg);
      TensorVector gr =
          Torch.grad(new TensorVector(out), new TensorVector(txh, taSrc, taDst), new TensorVector(tdOut), false);
      return new org.bytedeco.pytorch.Tensor[] {out, gr.get(0), gr.get(1), gr.get(2)};
    }

    /**
     * The vendor's results against metakernels'; for the metakernels fork, when libtorch's messages
     * for all heads would not fit (-Dbench.maxPeerGB, MemAvailable), head 0 alone against libtorch
     * run on head 0 (the heads are independent, so its results are head 0 of the full ones).
     */
    void check(String what) {
      boolean whole = vendor.equals("libtorch") || Checks.fitsMemory(4 * edges * heads * width * 4);
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] mine = mk();
        org.bytedeco.pytorch.Tensor[] theirs;
        if (whole) {
          theirs = torchForwardBackward();
        } else {
          mine = new Tensor[] {mine[0].narrow(1, 0, 1).contiguous(), mine[1].narrow(1, 0, 1).contiguous(),
              mine[2].narrow(0, 0, 1).contiguous(), mine[3].narrow(0, 0, 1).contiguous()};
          org.bytedeco.pytorch.Tensor x0 = Torch.leaf(Torch.copyOf(xh.detach().narrow(1, 0, 1).contiguous()));
          org.bytedeco.pytorch.Tensor s0 = Torch.leaf(Torch.copyOf(aSrc.detach().narrow(0, 0, 1).contiguous()));
          org.bytedeco.pytorch.Tensor d0 = Torch.leaf(Torch.copyOf(aDst.detach().narrow(0, 0, 1).contiguous()));
          org.bytedeco.pytorch.Tensor o0 = Torch.copyOf(dOut.narrow(1, 0, 1).contiguous());
          theirs = torchGat(x0, s0, d0, o0, 1, dst.unsqueeze(1).contiguous());
        }
        String[] names = {"out", "dxh", "daSrc", "daDst"};
        for (int i = 0; i < mine.length; i++)
          Checks.assertClose(what + " " + names[i] + " metakernels vs libtorch" + (whole ? "" : " (head 0)"),
              mine[i].toFloatArray(), Torch.toFloats(theirs[i]), 1e-4, 1e-3);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor z : new org.bytedeco.pytorch.Tensor[] {src, dst, dstH, txh, taSrc, taDst, tdOut})
        if (z != null) z.close();
      if (g != null) g.close();
      if (scope != null) scope.close();
    }
  }

  @Benchmark
  public void gatForwardBackward(GatInputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(in.mk());
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(in.torchForwardBackward());
      }
    }
  }

  // ---- SDDMM: per-edge dot products of two node tensors, forward and backward ------------------

  /**
   * The sampled dense-dense product, F32 on the CPU, over the R-MAT graph: e_k = ⟨a[dst_k], b[src_k]⟩
   * for a, b [nodes, features] ({@code heads} = 1, e [E]) or [nodes, heads, features / heads] (e
   * [E, heads]), e in graph order; {@code sddmmForwardBackward} adds the gradients of a and b for a
   * random dE. Vendors: {@code metakernels} ({@link MessagePassing#sddmm}: one pass over the CSR, no
   * E x F buffer; its backward two SpMMs, over the CSR and the CSC); {@code libtorch-index_select}:
   * (a[dst] · b[src]).sum(-1) with index_select (two [E, F] gathers and their product), backward by
   * autograd; {@code libtorch-sampled_addmm}: torch.sparse_sampled_addmm of a CSR pattern (values
   * ones) with a and bᵀ (heads = 1 only: it multiplies matrices), its backward written out as
   * libtorch's own would be, da = torch.mm(CSR(dE), b) and db = torch.mm(CSR of the transpose with dE
   * permuted to CSC order, a) (the CSC pattern built once, not timed). Every set-up checks the
   * vendor's result (and gradients) against metakernels' first.
   */
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class SddmmInputs {
    @Param({"1000000", "10000000"}) public long edges;

    @Param({"16", "64", "256"}) public int features;

    @Param({"100000"}) public long nodes;

    /** 1: a, b [nodes, features]; H > 1: [nodes, H, features / H]. */
    @Param({"1"}) public int heads;

    @Param({"metakernels", "libtorch-index_select", "libtorch-sampled_addmm"}) public String vendor;

    Scope scope;
    Graph g;
    Tensor a, b, al, bl, dE;
    org.bytedeco.pytorch.Tensor src, dst, crow, col, ccol, crowT, toCsc, ones, ta, tb, tal, tbl, tdE;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      init(params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1));
    }

    /** The set-up for benchmark method {@code mode} ("sddmmForward" or "sddmmForwardBackward"). */
    void init(String mode) {
      Torch.configure(vendor);
      String what = "GraphBench." + mode + " nodes=" + nodes + " edges=" + edges + " features=" + features
          + " heads=" + heads;
      if (heads < 1 || features % heads != 0)
        throw new IllegalStateException(what + ": heads must divide features");
      if (vendor.equals("libtorch-sampled_addmm") && heads != 1) {
        Checks.note("SKIPPED " + what + " libtorch-sampled_addmm: multiplies matrices, heads = 1 only");
        throw new IllegalStateException(what + ": libtorch-sampled_addmm takes heads = 1 only");
      }
      boolean fwd = mode.equals("sddmmForward");
      if (vendor.equals("libtorch-index_select")) // a[dst], b[src], their product (and its gradients): [E, F]
        Checks.requireMemory(what + " libtorch index_select gathers", (fwd ? 3 : 6) * edges * features * 4);
      scope = Scope.open();
      try (Scope tmp = Scope.open()) {
        g = Graph.fromEdges(Graphs.rmat(nodes, edges, SEED), nodes);
      }
      long[] shape = heads == 1 ? new long[] {nodes, features} : new long[] {nodes, heads, features / heads};
      a = Tensor.randn(shape, DType.F32, Device.CPU, SEED + 21);
      b = Tensor.randn(shape, DType.F32, Device.CPU, SEED + 22);
      al = a.detach().requiresGrad(true);
      bl = b.detach().requiresGrad(true);
      dE = Tensor.randn(heads == 1 ? new long[] {edges} : new long[] {edges, heads}, DType.F32, Device.CPU, SEED + 23);
      long[] ei = g.edgeIndex().toLongArray();
      int e = (int) edges;
      src = TorchGraph.longs(java.util.Arrays.copyOfRange(ei, 0, e));
      dst = TorchGraph.longs(java.util.Arrays.copyOfRange(ei, e, 2 * e));
      crow = TorchGraph.longs(g.rowPtr().toLongArray());
      col = TorchGraph.longs(g.sources().toLongArray());
      crowT = TorchGraph.longs(g.colPtr().toLongArray());
      ccol = TorchGraph.longs(g.cscDestinations().toLongArray());
      toCsc = TorchGraph.longs(g.cscToGraph().toLongArray());
      ones = torch.ones(new long[] {edges}, new TensorOptions(torch.ScalarType.Float));
      ta = Torch.copyOf(a);
      tb = Torch.copyOf(b);
      tal = Torch.leaf(ta);
      tbl = Torch.leaf(tb);
      tdE = Torch.copyOf(dE);
      Checks.note(GraphBytes.note(what, GraphBytes.sddmm(nodes, edges, features, !fwd)));
      check(what, fwd);
      if (!vendor.equals("metakernels")) {
        Runnable op = fwd ? this::torchForward : this::torchForwardBackward;
        Torch.pickBlasThreads(what, op);
        PeakMemory.noteCall(what, vendor, op);
      } else {
        PeakMemory.noteCall(what, vendor, fwd ? this::mkForward : this::mkForwardBackward);
      }
    }

    Tensor mkForward() {
      return MessagePassing.sddmm(g, a, b);
    }

    Tensor[] mkForwardBackward() {
      Tensor e = MessagePassing.sddmm(g, al, bl);
      return Autograd.grad(List.of(e), List.of(al, bl), List.of(dE), false).toArray(new Tensor[0]);
    }

    boolean sampled() {
      return vendor.equals("libtorch-sampled_addmm") || (vendor.equals("metakernels") && heads == 1);
    }

    org.bytedeco.pytorch.Tensor torchForward() {
      if (sampled()) {
        org.bytedeco.pytorch.Tensor pattern = torch.sparse_csr_tensor(
            crow, col, ones, new long[] {nodes, nodes}, new TensorOptions(torch.ScalarType.Float));
        return torch.sparse_sampled_addmm(pattern, ta, tb.t(), new Scalar(0.0), new Scalar(1.0)).values();
      }
      return torch.index_select(ta, 0, dst).mul(torch.index_select(tb, 0, src)).sum(-1);
    }

    org.bytedeco.pytorch.Tensor[] torchForwardBackward() {
      if (sampled()) {
        org.bytedeco.pytorch.Tensor pattern = torch.sparse_csr_tensor(
            crow, col, ones, new long[] {nodes, nodes}, new TensorOptions(torch.ScalarType.Float));
        org.bytedeco.pytorch.Tensor e =
            torch.sparse_sampled_addmm(pattern, ta, tb.t(), new Scalar(0.0), new Scalar(1.0)).values();
        org.bytedeco.pytorch.Tensor gd = torch.sparse_csr_tensor(
            crow, col, tdE, new long[] {nodes, nodes}, new TensorOptions(torch.ScalarType.Float));
        org.bytedeco.pytorch.Tensor gt = torch.sparse_csr_tensor(crowT, ccol, torch.index_select(tdE, 0, toCsc),
            new long[] {nodes, nodes}, new TensorOptions(torch.ScalarType.Float));
        return new org.bytedeco.pytorch.Tensor[] {e, torch.mm(gd, tb), torch.mm(gt, ta)};
      }
      org.bytedeco.pytorch.Tensor e = torch.index_select(tal, 0, dst).mul(torch.index_select(tbl, 0, src)).sum(-1);
      TensorVector gr = Torch.grad(new TensorVector(e), new TensorVector(tal, tbl), new TensorVector(tdE), false);
      return new org.bytedeco.pytorch.Tensor[] {e, gr.get(0), gr.get(1)};
    }

    /** The vendor's result against metakernels' (the metakernels fork: against sampled_addmm, or index_select with heads). */
    void check(String what, boolean fwd) {
      String against = vendor.equals("metakernels") ? (sampled() ? "libtorch-sampled_addmm" : "libtorch-index_select")
                                                    : vendor;
      if (vendor.equals("metakernels") && !sampled())
        Checks.requireMemory(what + " check against libtorch-index_select", (fwd ? 3 : 6) * edges * features * 4);
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] mine;
        org.bytedeco.pytorch.Tensor[] theirs;
        String[] names;
        if (fwd) {
          mine = new Tensor[] {mkForward()};
          theirs = new org.bytedeco.pytorch.Tensor[] {torchForward()};
          names = new String[] {"e"};
        } else {
          Tensor e = MessagePassing.sddmm(g, a, b);
          Tensor[] gr = mkForwardBackward();
          mine = new Tensor[] {e, gr[0], gr[1]};
          theirs = torchForwardBackward();
          names = new String[] {"e", "da", "db"};
        }
        for (int i = 0; i < mine.length; i++)
          Checks.assertClose(what + " " + names[i] + " metakernels vs " + against, mine[i].toFloatArray(),
              Torch.toFloats(theirs[i]), 1e-4, 1e-3);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor z : new org.bytedeco.pytorch.Tensor[] {
               src, dst, crow, col, ccol, crowT, toCsc, ones, ta, tb, tal, tbl, tdE})
        if (z != null) z.close();
      if (g != null) g.close();
      if (scope != null) scope.close();
    }
  }

  /** One timed call of the vendor's side, in a scope of its library (freed before the next call). */
  static void timed(String vendor, Supplier<Object> mine, Supplier<Object> theirs, Blackhole bh) {
    if (vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mine.get());
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(theirs.get());
      }
    }
  }

  @Benchmark
  public void sddmmForward(SddmmInputs in, Blackhole bh) {
    timed(in.vendor, in::mkForward, in::torchForward, bh);
  }

  @Benchmark
  public void sddmmForwardBackward(SddmmInputs in, Blackhole bh) {
    timed(in.vendor, in::mkForwardBackward, in::torchForwardBackward, bh);
  }

  // ---- a second-order step through a two-layer GCN -----------------------------------------------

  /**
   * What a MAML-style inner loop on a GNN differentiates, F32 on the CPU, over the R-MAT graph:
   * out = GCN2(tanh(GCN1(x))) (GCNConv with self-loops and symmetric normalisation Â, bias, features
   * → features → features), loss = mean((out − y)²), g = ∂loss/∂(W1, b1, W2, b2) with createGraph =
   * true, then the gradient of ‖g‖² in the same weights (a Hessian-vector product with v = 2g): the
   * four tensors are what {@code gcnSecondOrder} returns. Vendors: {@code metakernels}
   * ({@link GCNConv} with substituted weights; every graph op's backward is again graph ops);
   * {@code libtorch-index_add}: the same layers in PyG's scatter form, h ↦ zeros.index_add(0, dst,
   * h[src] · ŵ) with Â's edges and weights (taken from metakernels' normalised graph, not timed), both
   * gradients by torch::autograd::grad, the first with create_graph = true; {@code libtorch-csr}: Â as
   * a sparse CSR tensor and torch.mm (its double backward goes through mm of the transpose). The
   * set-up checks the four second-order gradients of the vendor against metakernels'.
   */
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Gcn2Inputs {
    @Param({"1000000", "10000000"}) public long edges;

    @Param({"16", "64"}) public int features;

    @Param({"100000"}) public long nodes;

    @Param({"metakernels", "libtorch-index_add", "libtorch-csr"}) public String vendor;

    Scope scope;
    Graph g;
    org.metakernels.nn.GCNConv c1, c2;
    Tensor x, y, w1, b1, w2, b2;
    boolean checkCsr; // the metakernels fork checks against libtorch-csr (index_add would not fit)
    org.bytedeco.pytorch.Tensor src, dst, ew, crow, col, tx, ty, tw1, tb1, tw2, tb2;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      String what = "GraphBench.gcnSecondOrder nodes=" + nodes + " edges=" + edges + " features=" + features;
      if (vendor.equals("libtorch-index_add")) // h[src], its product with ŵ, for each layer and each order
        Checks.requireMemory(what + " libtorch index_add messages", 8 * edges * features * 4);
      scope = Scope.open();
      try (Scope tmp = Scope.open()) {
        g = Graph.fromEdges(Graphs.rmat(nodes, edges, SEED), nodes);
      }
      c1 = new org.metakernels.nn.GCNConv(features, features, true, true, DType.F32, Device.CPU, SEED + 31);
      c2 = new org.metakernels.nn.GCNConv(features, features, true, true, DType.F32, Device.CPU, SEED + 32);
      x = Tensor.randn(new long[] {nodes, features}, DType.F32, Device.CPU, SEED + 33);
      y = Tensor.randn(new long[] {nodes, features}, DType.F32, Device.CPU, SEED + 34);
      double bound = Math.sqrt(6.0 / (2 * features));
      w1 = Tensor.uniform(new long[] {features, features}, -bound, bound, DType.F32, Device.CPU, SEED + 35)
               .requiresGrad(true);
      w2 = Tensor.uniform(new long[] {features, features}, -bound, bound, DType.F32, Device.CPU, SEED + 36)
               .requiresGrad(true);
      b1 = Tensor.uniform(new long[] {features}, -0.1, 0.1, DType.F32, Device.CPU, SEED + 37).requiresGrad(true);
      b2 = Tensor.uniform(new long[] {features}, -0.1, 0.1, DType.F32, Device.CPU, SEED + 38).requiresGrad(true);
      Graph norm = c1.normalized(g, DType.F32);
      c2.normalized(g, DType.F32);
      long[] ei = norm.edgeIndex().toLongArray();
      int e = (int) norm.numEdges();
      src = TorchGraph.longs(java.util.Arrays.copyOfRange(ei, 0, e));
      dst = TorchGraph.longs(java.util.Arrays.copyOfRange(ei, e, 2 * e));
      ew = Torch.copyOf(norm.edgeWeight());
      crow = TorchGraph.longs(norm.rowPtr().toLongArray());
      col = TorchGraph.longs(norm.sources().toLongArray());
      tx = Torch.copyOf(x);
      ty = Torch.copyOf(y);
      tw1 = Torch.leaf(Torch.copyOf(w1.detach()));
      tw2 = Torch.leaf(Torch.copyOf(w2.detach()));
      tb1 = Torch.leaf(Torch.copyOf(b1.detach()));
      tb2 = Torch.leaf(Torch.copyOf(b2.detach()));
      check(what);
      if (!vendor.equals("metakernels")) Torch.pickBlasThreads(what, this::torchStep);
      PeakMemory.noteCall(what, vendor, vendor.equals("metakernels") ? this::mkStep : this::torchStep);
    }

    Tensor[] mkStep() {
      org.metakernels.nn.Weights p1 = org.metakernels.nn.Weights.of(java.util.Map.of("weight", w1, "bias", b1));
      org.metakernels.nn.Weights p2 = org.metakernels.nn.Weights.of(java.util.Map.of("weight", w2, "bias", b2));
      Tensor out = c2.forward(g, c1.forward(g, x, p1).tanh(), p2);
      Tensor loss = out.sub(y).square().mean();
      List<Tensor> params = List.of(w1, b1, w2, b2);
      List<Tensor> gr = Autograd.grad(loss, params, true);
      Tensor norm2 = gr.get(0).square().sum();
      for (int i = 1; i < gr.size(); i++) norm2 = norm2.add(gr.get(i).square().sum());
      return Autograd.grad(norm2, params, false).toArray(new Tensor[0]);
    }

    org.bytedeco.pytorch.Tensor propagate(org.bytedeco.pytorch.Tensor h) {
      if (vendor.equals("libtorch-csr") || (vendor.equals("metakernels") && checkCsr)) {
        org.bytedeco.pytorch.Tensor a = torch.sparse_csr_tensor(
            crow, col, ew, new long[] {nodes, nodes}, new TensorOptions(torch.ScalarType.Float));
        return torch.mm(a, h);
      }
      org.bytedeco.pytorch.Tensor msg = torch.index_select(h, 0, src).mul(ew.unsqueeze(1));
      return torch.zeros(new long[] {nodes, features}, new TensorOptions(torch.ScalarType.Float)).index_add(0, dst, msg);
    }

    org.bytedeco.pytorch.Tensor[] torchStep() {
      org.bytedeco.pytorch.Tensor h = propagate(torch.mm(tx, tw1.t())).add(tb1).tanh();
      org.bytedeco.pytorch.Tensor out = propagate(torch.mm(h, tw2.t())).add(tb2);
      org.bytedeco.pytorch.Tensor loss = out.sub(ty).square().mean();
      TensorVector params = new TensorVector(tw1, tb1, tw2, tb2);
      TensorVector gr = Torch.grad(new TensorVector(loss), params, new TensorVector(), true);
      org.bytedeco.pytorch.Tensor norm2 = gr.get(0).square().sum();
      for (int i = 1; i < 4; i++) norm2 = norm2.add(gr.get(i).square().sum());
      TensorVector hv = Torch.grad(new TensorVector(norm2), params, new TensorVector(), false);
      return new org.bytedeco.pytorch.Tensor[] {hv.get(0), hv.get(1), hv.get(2), hv.get(3)};
    }

    /**
     * The vendor's four second-order gradients against metakernels' (the metakernels fork: against
     * libtorch-index_add, or libtorch-csr where index_add's [E, F] buffers would not fit).
     */
    void check(String what) {
      checkCsr = vendor.equals("metakernels") && !Checks.fitsMemory(8 * edges * features * 4);
      String against = vendor.equals("metakernels") ? (checkCsr ? "libtorch-csr" : "libtorch-index_add") : vendor;
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] mine = mkStep();
        org.bytedeco.pytorch.Tensor[] theirs = torchStep();
        String[] names = {"d|g|²/dW1", "d|g|²/db1", "d|g|²/dW2", "d|g|²/db2"};
        for (int i = 0; i < mine.length; i++)
          Checks.assertClose(what + " " + names[i] + " metakernels vs " + against, mine[i].toFloatArray(),
              Torch.toFloats(theirs[i]), 1e-7, 1e-3); // the gradients are ~1e-3: a relative tolerance
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor z :
          new org.bytedeco.pytorch.Tensor[] {src, dst, ew, crow, col, tx, ty, tw1, tb1, tw2, tb2})
        if (z != null) z.close();
      if (c1 != null) c1.close();
      if (c2 != null) c2.close();
      if (g != null) g.close();
      if (scope != null) scope.close();
    }
  }

  @Benchmark
  public void gcnSecondOrder(Gcn2Inputs in, Blackhole bh) {
    timed(in.vendor, in::mkStep, in::torchStep, bh);
  }
}
