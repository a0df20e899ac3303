package org.metakernels.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.Graph;
import org.metakernels.graph.MessagePassing;
import org.metakernels.graph.Reduce;
import org.metakernels.nn.GATConv;
import org.metakernels.nn.GCNConv;
import org.metakernels.nn.Weights;
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
 * The shapes of the CPU {@link GraphBench} on CUDA (issue 15), F32, metakernels alone (the
 * PyTorch / PyG peers run beside it on the same edges in benchmarks/gpu/graph_peers.py, reading the
 * files {@link GraphEdgeDump} writes): the R-MAT graph {@code Graphs.rmat(nodes, edges,
 * GraphBench.SEED)} of 100,000 nodes and 10^6 or 10^7 edges, features 16, 64, 256.
 * <ul>
 *   <li>{@code spmmForward}, {@code spmmForwardBackward}: the weighted aggregation
 *       {@link MessagePassing#aggregate} (sum, mean), then the gradients of x and the edge weights
 *       for a random dOut;
 *   <li>{@code sddmmForward}, {@code sddmmForwardBackward}: {@link MessagePassing#sddmm} of a, b
 *       [nodes, features], then the gradients of a and b for a random dE;
 *   <li>{@code gatForwardBackward}: the attention part of a GAT layer as GraphBench's (scores from
 *       xh [nodes, H, F] and aSrc, aDst, {@link MessagePassing#gatAggregate} with slope 0.2, the
 *       gradients of xh, aSrc, aDst), heads x width 4x16 and 8x8;
 *   <li>{@code gatConvForwardBackward}: the whole layer, {@link GATConv}(H·F → H heads of F,
 *       concatenated, slope 0.2, no added self-loops, bias) on x [nodes, H·F], the gradients of x
 *       and of every parameter: the row to put beside PyG's GATConv with the same settings;
 *   <li>{@code gcnSecondOrder}: GraphBench's second-order step through a two-layer GCN
 *       ({@link GCNConv} with self-loops and symmetric normalisation, features 16 and 64);
 *   <li>{@code copy}: a device copy of [4, 16, 4096, 128] F32 (268 MB moved), the copy rate of
 *       this run.
 * </ul>
 * Each set-up notes the bytes its op must move at least ({@link GraphBytes}, the CPU benchmark's
 * count) to the notes file ({@code -Dbench.notes}), from which benchmarks/gpu/graph.py computes
 * GB/s and the share of the copy rate. The device graphs are built once per JVM and shared by the
 * trials (JMH with {@code -f 0}: the host-side R-MAT generation and CSR sort of 10^7 edges take
 * seconds); they are freed when the JVM exits. With {@code -Dbench.graphs=DIR} the edges are read
 * from GraphEdgeDump's files in DIR (the files the peers read; the generator's output, without its
 * seconds of generation), else generated. One call and a device sync per invocation. Run by
 * benchmarks/gpu/check.sh with {@code GPU_GRAPH=1}; without a CUDA device the set-up throws at once.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class GpuGraphShapesBench {
  /**
   * CUDA; {@code -Dbench.graphDevice=CPU} runs the same code on the CPU, a check of the benchmark
   * itself on a machine without a GPU (its times are no GPU figure: the notes say so).
   */
  static final Device DEVICE = Device.valueOf(System.getProperty("bench.graphDevice", "CUDA"));

  /** Throws at once without a CUDA device (unless the CPU was asked for). */
  static void require() {
    if (DEVICE == Device.CUDA)
      Gpu.require("GpuGraphShapesBench");
    else
      Checks.note(
          "GpuGraphShapesBench on the " + DEVICE + " (-Dbench.graphDevice): a check of the benchmark, not a GPU run");
  }

  /** Waits for the device's queued kernels (nothing to wait for on the CPU). */
  static void sync() {
    if (DEVICE == Device.CUDA) Gpu.sync();
  }

  /** The R-MAT graphs on the device, one per (nodes, edges), owned here until the JVM exits. */
  static final class DeviceGraphs {
    private static final Map<String, Graph> BUILT = new HashMap<>();
    private static boolean hook;

    private DeviceGraphs() {}

    static synchronized Graph rmat(long nodes, long edges) {
      String key = nodes + "/" + edges;
      Graph g = BUILT.get(key);
      if (g != null) return g;
      long t0 = System.nanoTime();
      // the edges GraphEdgeDump wrote for the peers in this run (-Dbench.graphs=DIR), else the generator
      long[] ei;
      String source = "Graphs.rmat";
      String dir = System.getProperty("bench.graphs", "");
      Path file = dir.isBlank() ? null : Path.of(dir, GraphEdgeDump.edgeFile(nodes, edges));
      if (file != null && Files.exists(file)) {
        try {
          ei = GraphEdgeDump.readLongs(file, new long[] {2, edges});
        } catch (IOException e) {
          throw new UncheckedIOException("GpuGraphShapesBench: reading " + file, e);
        }
        source = "read from " + file;
      } else {
        ei = GraphEdgeDump.rmat(nodes, edges);
      }
      Graph host;
      try (Scope tmp = Scope.open()) {
        host = Graph.fromEdges(Tensor.ofIndices(ei, 2, edges), nodes);
      }
      if (DEVICE == Device.CPU) {
        g = host;
      } else {
        try (host) {
          g = host.to(DEVICE);
        }
      }
      BUILT.put(key, g);
      if (!hook) {
        Runtime.getRuntime().addShutdownHook(new Thread(DeviceGraphs::closeAll, "GpuGraphShapesBench graphs"));
        hook = true;
      }
      Checks.note(
          String.format("GpuGraphShapesBench: R-MAT graph of %d nodes, %d edges (%s) on the %s in %.1f s (not timed)",
              nodes, edges, source, DEVICE, (System.nanoTime() - t0) / 1e9));
      return g;
    }

    private static synchronized void closeAll() {
      for (Graph g : BUILT.values()) g.close();
      BUILT.clear();
    }
  }

  /** "GpuGraphShapesBench.METHOD k=v ...", the key graph.py matches a JMH row by. */
  static String what(BenchmarkParams params, String... kv) {
    String b = params.getBenchmark();
    return "GpuGraphShapesBench." + b.substring(b.lastIndexOf('.') + 1) + " " + String.join(" ", kv);
  }

  static String method(BenchmarkParams params) {
    String b = params.getBenchmark();
    return b.substring(b.lastIndexOf('.') + 1);
  }

  // ---- SpMM -------------------------------------------------------------------------------------

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class SpmmInputs {
    @Param({"1000000", "10000000"}) public long edges;

    @Param({"16", "64", "256"}) public int features;

    @Param({"100000"}) public long nodes;

    @Param({"sum", "mean"}) public String reduce;

    Scope scope;
    Graph g;
    Tensor x, w, xl, wl, dOut;
    Reduce red;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      require();
      g = DeviceGraphs.rmat(nodes, edges);
      red = Reduce.valueOf(reduce.toUpperCase());
      scope = Scope.open();
      x = Tensor.randn(new long[] {nodes, features}, DType.F32, DEVICE, GraphBench.SEED + 1);
      w = Tensor.uniform(new long[] {edges}, 0.5, 1.5, DType.F32, DEVICE, GraphBench.SEED + 2);
      dOut = Tensor.randn(new long[] {nodes, features}, DType.F32, DEVICE, GraphBench.SEED + 3);
      xl = x.detach().requiresGrad(true);
      wl = w.detach().requiresGrad(true);
      sync();
      Checks.note(GraphBytes.noteExact(
          what(params, "edges=" + edges, "features=" + features, "nodes=" + nodes, "reduce=" + reduce),
          GraphBytes.spmm(nodes, edges, features, method(params).equals("spmmForwardBackward"))));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (scope != null) scope.close();
    }
  }

  @Benchmark
  public void spmmForward(SpmmInputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(MessagePassing.aggregate(in.g, in.x, in.w, in.red));
      sync();
    }
  }

  @Benchmark
  public void spmmForwardBackward(SpmmInputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor out = MessagePassing.aggregate(in.g, in.xl, in.wl, in.red);
      bh.consume(Autograd.grad(List.of(out), List.of(in.xl, in.wl), List.of(in.dOut), false));
      sync();
    }
  }

  // ---- SDDMM ------------------------------------------------------------------------------------

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class SddmmInputs {
    @Param({"1000000", "10000000"}) public long edges;

    @Param({"16", "64", "256"}) public int features;

    @Param({"100000"}) public long nodes;

    Scope scope;
    Graph g;
    Tensor a, b, al, bl, dE;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      require();
      g = DeviceGraphs.rmat(nodes, edges);
      scope = Scope.open();
      a = Tensor.randn(new long[] {nodes, features}, DType.F32, DEVICE, GraphBench.SEED + 21);
      b = Tensor.randn(new long[] {nodes, features}, DType.F32, DEVICE, GraphBench.SEED + 22);
      dE = Tensor.randn(new long[] {edges}, DType.F32, DEVICE, GraphBench.SEED + 23);
      al = a.detach().requiresGrad(true);
      bl = b.detach().requiresGrad(true);
      sync();
      Checks.note(GraphBytes.noteExact(what(params, "edges=" + edges, "features=" + features, "nodes=" + nodes),
          GraphBytes.sddmm(nodes, edges, features, method(params).equals("sddmmForwardBackward"))));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (scope != null) scope.close();
    }
  }

  @Benchmark
  public void sddmmForward(SddmmInputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(MessagePassing.sddmm(in.g, in.a, in.b));
      sync();
    }
  }

  @Benchmark
  public void sddmmForwardBackward(SddmmInputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor e = MessagePassing.sddmm(in.g, in.al, in.bl);
      bh.consume(Autograd.grad(List.of(e), List.of(in.al, in.bl), List.of(in.dE), false));
      sync();
    }
  }

  // ---- GAT: the attention part (gatAggregate) and the whole layer (GATConv) ---------------------

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class GatInputs {
    @Param({"1000000", "10000000"}) public long edges;

    @Param({"100000"}) public long nodes;

    /** heads x features per head. */
    @Param({"4x16", "8x8"}) public String shape;

    int heads, width;
    Scope scope;
    Graph g;
    GATConv conv;
    Tensor xh, aSrc, aDst, dOut, x, dY;
    List<Tensor> wrt;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      require();
      heads = Integer.parseInt(shape.substring(0, shape.indexOf('x')));
      width = Integer.parseInt(shape.substring(shape.indexOf('x') + 1));
      g = DeviceGraphs.rmat(nodes, edges);
      scope = Scope.open();
      long s = GraphBench.SEED;
      if (method(params).equals("gatForwardBackward")) {
        xh = Tensor.randn(new long[] {nodes, heads, width}, DType.F32, DEVICE, s + 11).requiresGrad(true);
        aSrc = Tensor.randn(new long[] {heads, width}, DType.F32, DEVICE, s + 12).mul(0.3).detach().requiresGrad(true);
        aDst = Tensor.randn(new long[] {heads, width}, DType.F32, DEVICE, s + 13).mul(0.3).detach().requiresGrad(true);
        dOut = Tensor.randn(new long[] {nodes, heads, width}, DType.F32, DEVICE, s + 14);
        Checks.note(GraphBytes.noteExact(what(params, "edges=" + edges, "nodes=" + nodes, "shape=" + shape),
            GraphBytes.gat(nodes, edges, heads, width)));
      } else {
        // PyG's GATConv(H·F, F, heads=H, concat=True, negative_slope=0.2, add_self_loops=False, bias=True)
        conv = new GATConv(heads * width, width, heads, true, 0.2, false, true, DType.F32, DEVICE, s + 15);
        x = Tensor.randn(new long[] {nodes, heads * width}, DType.F32, DEVICE, s + 16).requiresGrad(true);
        dY = Tensor.randn(new long[] {nodes, heads * width}, DType.F32, DEVICE, s + 17);
        wrt = new ArrayList<>();
        wrt.add(x);
        wrt.addAll(conv.parameters());
        // the linear map on top of the attention part: x read and xh written (forward), dxh read and
        // dx written (dx), x and dxh read (dW): six passes over [nodes, H·F]
        double lin = 6 * 4.0 * nodes * heads * width;
        Checks.note(GraphBytes.noteExact(what(params, "edges=" + edges, "nodes=" + nodes, "shape=" + shape),
            GraphBytes.gat(nodes, edges, heads, width) + lin));
      }
      sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (conv != null) conv.close();
      if (scope != null) scope.close();
    }
  }

  @Benchmark
  public void gatForwardBackward(GatInputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor sSrc = in.xh.mul(in.aSrc.reshape(1, in.heads, in.width)).sum(2, false);
      Tensor sDst = in.xh.mul(in.aDst.reshape(1, in.heads, in.width)).sum(2, false);
      Tensor out = MessagePassing.gatAggregate(in.g, in.xh, sSrc, sDst, 0.2);
      bh.consume(Autograd.grad(List.of(out), List.of(in.xh, in.aSrc, in.aDst), List.of(in.dOut), false));
      sync();
    }
  }

  @Benchmark
  public void gatConvForwardBackward(GatInputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor y = in.conv.forward(in.g, in.x);
      bh.consume(Autograd.grad(List.of(y), in.wrt, List.of(in.dY), false));
      sync();
    }
  }

  // ---- a second-order step through a two-layer GCN ----------------------------------------------

  /**
   * GraphBench.Gcn2Inputs on the device: out = GCN2(tanh(GCN1(x))) with substituted weights,
   * loss = mean((out − y)²), g = ∂loss/∂(W1, b1, W2, b2) with createGraph, then the gradient of
   * ‖g‖² in the same weights.
   */
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Gcn2Inputs {
    @Param({"1000000", "10000000"}) public long edges;

    @Param({"16", "64"}) public int features;

    @Param({"100000"}) public long nodes;

    Scope scope;
    Graph g;
    GCNConv conv;
    Tensor x, y, w1, b1, w2, b2;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      require();
      g = DeviceGraphs.rmat(nodes, edges);
      long s = GraphBench.SEED;
      // one layer object for both layers: the weights are substituted (W1, b1 / W2, b2), so the layer
      // only holds Â, built once here instead of twice (host work: O(E) on the CPU, then copied over)
      conv = new GCNConv(features, features, true, true, DType.F32, DEVICE, s + 31);
      scope = Scope.open();
      x = Tensor.randn(new long[] {nodes, features}, DType.F32, DEVICE, s + 33);
      y = Tensor.randn(new long[] {nodes, features}, DType.F32, DEVICE, s + 34);
      double bound = Math.sqrt(6.0 / (2 * features));
      w1 = Tensor.uniform(new long[] {features, features}, -bound, bound, DType.F32, DEVICE, s + 35).requiresGrad(true);
      w2 = Tensor.uniform(new long[] {features, features}, -bound, bound, DType.F32, DEVICE, s + 36).requiresGrad(true);
      b1 = Tensor.uniform(new long[] {features}, -0.1, 0.1, DType.F32, DEVICE, s + 37).requiresGrad(true);
      b2 = Tensor.uniform(new long[] {features}, -0.1, 0.1, DType.F32, DEVICE, s + 38).requiresGrad(true);
      long t0 = System.nanoTime();
      Graph norm = conv.normalized(g, DType.F32);
      sync();
      Checks.note(String.format("GpuGraphShapesBench.gcnSecondOrder edges=%d: Â (%d edges) built in %.1f s (not timed)",
          edges, norm.numEdges(), (System.nanoTime() - t0) / 1e9));
      Checks.note(GraphBytes.noteExact(what(params, "edges=" + edges, "features=" + features, "nodes=" + nodes),
          GraphBytes.gcnSecondOrder(nodes, norm.numEdges(), features)));
    }

    Tensor[] step() {
      Weights p1 = Weights.of(Map.of("weight", w1, "bias", b1));
      Weights p2 = Weights.of(Map.of("weight", w2, "bias", b2));
      Tensor out = conv.forward(g, conv.forward(g, x, p1).tanh(), p2);
      Tensor loss = out.sub(y).square().mean();
      List<Tensor> params = List.of(w1, b1, w2, b2);
      List<Tensor> gr = Autograd.grad(loss, params, true);
      Tensor norm2 = gr.get(0).square().sum();
      for (int i = 1; i < gr.size(); i++) norm2 = norm2.add(gr.get(i).square().sum());
      return Autograd.grad(norm2, params, false).toArray(new Tensor[0]);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (conv != null) conv.close();
      if (scope != null) scope.close();
    }
  }

  @Benchmark
  public void gcnSecondOrder(Gcn2Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(in.step());
      sync();
    }
  }

  // ---- the copy rate of this run ----------------------------------------------------------------

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class CopyInputs {
    Scope scope;
    Tensor x;

    @Setup(Level.Trial)
    public void setup() {
      require();
      scope = Scope.open();
      x = Tensor.randn(new long[] {4, 16, 4096, 128}, DType.F32, DEVICE, 31L);
      sync();
      Checks.note(GraphBytes.noteExact("GpuGraphShapesBench.copy shape=4x16x4096x128", 2.0 * 4 * x.numel()));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (scope != null) scope.close();
    }
  }

  @Benchmark
  public void copy(CopyInputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(in.x.copyContiguous());
      sync();
    }
  }
}
