package org.metakernels.bench;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
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

    @Param({"sum", "mean"}) public String reduce;

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
      Torch.configure(vendor);
      String mode = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
      String what =
          "GraphBench." + mode + " nodes=" + nodes + " edges=" + edges + " features=" + features + " " + reduce;
      red = Reduce.valueOf(reduce.toUpperCase());
      if (vendor.equals("libtorch-index_add")) // x.index_select(0, src) and its product with w, [E, F] each
        Checks.requireMemory(
            what + " libtorch index_add messages", (mode.equals("forward") ? 2 : 4) * edges * features * 4);
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
        noteBytes(what, mode);
        if (!vendor.equals("metakernels")) t = new TorchGraph(this, vendor.equals("libtorch-csr"));
        check(what, mode);
        if (t != null) {
          Runnable op = mode.equals("forward") ? () -> t.forward(this) : () -> t.forwardBackward(this);
          Torch.pickBlasThreads(what, op);
        }
      }
    }

    /** The bytes an aggregation must move at least, noted for the report (% of copy bandwidth). */
    void noteBytes(String what, String mode) {
      double n = nodes, e = edges, f = features;
      // forward: row pointer and columns read twice (structure check, kernel), weights, one x row
      // per edge (every gather counted as a miss), the output written
      double fwd = 2 * (8 * (n + 1) + 8 * e) + 4 * e + 4 * e * f + 4 * n * f;
      // backward: the CSC SpMM (its pointers twice, the weights gathered through the CSC permutation,
      // one gradient row per edge, dx written) and the SDDMM (pointers twice, a dOut row per node,
      // an x row per edge, dw written)
      double bwd = 2 * (8 * (n + 1) + 8 * e) + 8 * e + 8 * e + 4 * e * f + 4 * n * f + 2 * (8 * (n + 1) + 8 * e)
          + 4 * n * f + 4 * e * f + 4 * e;
      double bytes = mode.equals("forward") ? fwd : fwd + bwd;
      Checks.note(String.format(
          "%s: moves at least %.1f MB (%.3g bytes; every gathered row counted)", what, bytes / 1e6, bytes));
    }

    /** The vendor's result against metakernels' on the timed quantity. */
    void check(String what, String mode) {
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

    @TearDown(Level.Trial)
    public void tearDown() {
      if (t != null) t.close();
      if (g != null) g.close();
      if (scope != null) scope.close();
    }
  }

  /** libtorch copies of the graph (COO in graph order, CSR) and of the features. */
  static final class TorchGraph {
    final org.bytedeco.pytorch.Tensor src, dst, crow, col, x, w, dOut, invDeg, xl, wl;
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
      if (!csr) {
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
          new org.bytedeco.pytorch.Tensor[] {src, dst, crow, col, x, w, dOut, invDeg, xl, wl})
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
   * kept; the backward on the graph kernels with [E, H] intermediates); {@code libtorch}: the
   * composed form a PyTorch user writes (PyG's softmax): index_select of the scores, leaky_relu,
   * scatter_reduce amax of the detached scores, exp, index_add of the sums, the division, then
   * index_add of xh[src]·α (an [E, H, F] message buffer), backward by autograd. The set-up checks
   * out, dxh, daSrc and daDst of the two against each other.
   */
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class GatInputs {
    @Param({"1000000"}) public long edges;

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
      check(what);
      if (vendor.equals("libtorch")) Torch.pickBlasThreads(what, () -> torchForwardBackward());
    }

    Tensor[] mk() {
      Tensor sSrc = xh.mul(aSrc.reshape(1, heads, width)).sum(2, false);
      Tensor sDst = xh.mul(aDst.reshape(1, heads, width)).sum(2, false);
      Tensor out = MessagePassing.gatAggregate(g, xh, sSrc, sDst, 0.2);
      List<Tensor> gr = Autograd.grad(List.of(out), List.of(xh, aSrc, aDst), List.of(dOut), false);
      return new Tensor[] {out, gr.get(0), gr.get(1), gr.get(2)};
    }

    org.bytedeco.pytorch.Tensor[] torchForwardBackward() {
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

    void check(String what) {
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] mine = mk();
        org.bytedeco.pytorch.Tensor[] theirs = torchForwardBackward();
        String[] names = {"out", "dxh", "daSrc", "daDst"};
        for (int i = 0; i < mine.length; i++)
          Checks.assertClose(what + " " + names[i] + " metakernels vs libtorch", mine[i].toFloatArray(),
              Torch.toFloats(theirs[i]), 1e-4, 1e-3);
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
}
