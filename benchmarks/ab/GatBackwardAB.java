// Interleaved A/B of GraphBench.gatForwardBackward's metakernels call between two builds (issue 15:
// the fused GAT backward), for a loaded machine where separate JMH forks see different load. A
// single-file program using only the public API, so the same source runs against any benchmarks
// jar: each jar runs in its own JVM, `rounds` timed calls after `warm` untimed ones, and the two
// JVMs alternate `blocks` times; per block it prints min / median ms of the forward + backward
// (F32, CPU, R-MAT 100k nodes, GraphBench's set-up: sSrc, sDst from xh and the attention vectors,
// gradients of xh, aSrc, aDst for a random dOut) and the host allocator's peak bytes of one call
// beyond those live before it (the result included).
//   benchmarks/ab/gat_backward_ab.sh JAR_A JAR_B EDGES HxF [BLOCKS [ROUNDS]]
// or one side:  java -Dmetakernels.threads=2 -cp JAR benchmarks/ab/GatBackwardAB.java EDGES HxF ROUNDS WARM
import java.util.Arrays;
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.Graph;
import org.metakernels.graph.Graphs;
import org.metakernels.graph.MessagePassing;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

public class GatBackwardAB {
  public static void main(String[] a) {
    long edges = Long.parseLong(a[0]);
    int heads = Integer.parseInt(a[1].substring(0, a[1].indexOf('x')));
    int width = Integer.parseInt(a[1].substring(a[1].indexOf('x') + 1));
    int rounds = Integer.parseInt(a[2]), warm = Integer.parseInt(a[3]);
    long nodes = 100000, seed = 2026L;
    try (Scope s = Scope.open()) {
      Graph g;
      try (Scope t = Scope.open()) {
        g = Graph.fromEdges(Graphs.rmat(nodes, edges, seed), nodes);
      }
      Tensor xh = Tensor.randn(new long[] {nodes, heads, width}, DType.F32, Device.CPU, seed + 11).requiresGrad(true);
      Tensor aSrc = Tensor.randn(new long[] {heads, width}, DType.F32, Device.CPU, seed + 12)
                        .mul(0.3)
                        .detach()
                        .requiresGrad(true);
      Tensor aDst = Tensor.randn(new long[] {heads, width}, DType.F32, Device.CPU, seed + 13)
                        .mul(0.3)
                        .detach()
                        .requiresGrad(true);
      Tensor dOut = Tensor.randn(new long[] {nodes, heads, width}, DType.F32, Device.CPU, seed + 14);
      Runnable call = () -> {
        try (Scope q = Scope.open()) {
          Tensor sSrc = xh.mul(aSrc.reshape(1, heads, width)).sum(2, false);
          Tensor sDst = xh.mul(aDst.reshape(1, heads, width)).sum(2, false);
          Tensor out = MessagePassing.gatAggregate(g, xh, sSrc, sDst, 0.2);
          List<Tensor> gr = Autograd.grad(List.of(out), List.of(xh, aSrc, aDst), List.of(dOut), false);
          gr.get(0).toFloatArray(); // nothing lazy left
        }
      };
      call.run();
      long live = MkNative.mk_host_live_bytes();
      MkNative.mk_host_reset_peak_bytes();
      call.run();
      long peak = MkNative.mk_host_peak_bytes() - live;
      double[] ms = new double[rounds];
      for (int r = -warm; r < rounds; r++) {
        long t0 = System.nanoTime();
        call.run();
        if (r >= 0) ms[r] = (System.nanoTime() - t0) / 1e6;
      }
      Arrays.sort(ms);
      System.out.printf("gatForwardBackward edges=%d %s: min %.2f ms median %.2f ms (%d rounds) peak %.1f MB%n", edges,
          a[1], ms[0], ms[rounds / 2], rounds, peak / 1e6);
    }
  }
}
