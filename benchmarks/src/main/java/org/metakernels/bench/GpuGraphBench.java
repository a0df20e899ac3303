package org.metakernels.bench;

import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
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
import org.openjdk.jmh.infra.Blackhole;

/**
 * Message passing on CUDA (kernels/cuda/graph.cu), F32, weighted, x [nodes, features]: the
 * aggregation (spmm) forward, and forward plus the gradients of x and the weights (a spmm over the
 * CSC and a sddmm). Graphs: {@code rmat}, the seeded R-MAT power-law graph of GraphBench (100,000
 * nodes, 1,000,000 edges: in-degrees up to ~10^4); {@code hub}, the same plus one node receiving
 * and one sending 200,000 edges, the rows that one lane group would otherwise walk alone (issue
 * 15: such rows are cut into segments of 128 edges summed by separate groups). One call and a
 * device sync per invocation. Run by benchmarks/gpu/check.sh (pattern 'Gpu'); without a CUDA
 * device the set-up throws at once.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class GpuGraphBench {
  static final long SEED = 7L;

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"rmat", "hub"}) public String graph;

    @Param({"64"}) public int features;

    @Param({"sum", "mean", "max"}) public String reduce;

    Scope scope;
    Graph g;
    Tensor x, w, dOut;
    Reduce red;

    @Setup(Level.Trial)
    public void setup() {
      Gpu.require("GpuGraphBench");
      int nodes = 100_000, rmatEdges = 1_000_000, hub = graph.equals("hub") ? 200_000 : 0;
      long[] rm = Graphs.rmat(nodes, rmatEdges, SEED).toLongArray(); // sources, then destinations
      int e = rmatEdges + 2 * hub;
      long[] src = new long[e], dst = new long[e];
      System.arraycopy(rm, 0, src, 0, rmatEdges);
      System.arraycopy(rm, rmatEdges, dst, 0, rmatEdges);
      Random rnd = new Random(SEED + 1);
      for (int i = 0; i < hub; i++) {
        src[rmatEdges + i] = rnd.nextInt(nodes); // into node 0
        dst[rmatEdges + hub + i] = rnd.nextInt(nodes); // out of node 1
        src[rmatEdges + hub + i] = 1;
      }
      scope = Scope.open();
      try (Graph cpu = Graph.fromEdges(src, dst, nodes)) {
        g = cpu.to(Device.CUDA).ownedBy(scope);
      }
      red = Reduce.valueOf(reduce.toUpperCase());
      x = Tensor.randn(new long[] {nodes, features}, DType.F32, Device.CUDA, SEED + 2).requiresGrad(true);
      w = Tensor.uniform(new long[] {e}, 0.5, 1.5, DType.F32, Device.CUDA, SEED + 3).requiresGrad(true);
      dOut = Tensor.randn(new long[] {nodes, features}, DType.F32, Device.CUDA, SEED + 4);
      Gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (scope != null) scope.close();
    }
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(MessagePassing.aggregate(in.g, in.x.detach(), in.w.detach(), in.red));
      Gpu.sync();
    }
  }

  @Benchmark
  public void forwardBackward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor out = MessagePassing.aggregate(in.g, in.x, in.w, in.red);
      bh.consume(Autograd.grad(List.of(out), List.of(in.x, in.w), List.of(in.dOut), false));
      Gpu.sync();
    }
  }
}
