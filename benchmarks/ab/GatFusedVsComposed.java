// Same-process, interleaved timing of gatAggregate's forward alone, forward + fused backward
// (gradient without createGraph: mk_graph_gat_backward) and forward + composed backward (with
// createGraph: the graph kernels, the form the fused kernel replaced), F32 on the CPU, over an
// R-MAT graph; x, sSrc and sDst all require grad. Prints one line per round.
//   java -Dmetakernels.threads=2 -cp benchmarks/target/benchmarks.jar benchmarks/ab/GatFusedVsComposed.java \
//       EDGES NODES HEADS WIDTH ROUNDS
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.Graph;
import org.metakernels.graph.Graphs;
import org.metakernels.graph.MessagePassing;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

public class GatFusedVsComposed {
  public static void main(String[] a) {
    long edges = Long.parseLong(a[0]), nodes = Long.parseLong(a[1]);
    int heads = Integer.parseInt(a[2]), width = Integer.parseInt(a[3]), rounds = Integer.parseInt(a[4]);
    try (Scope s = Scope.open()) {
      Graph g;
      try (Scope t = Scope.open()) {
        g = Graph.fromEdges(Graphs.rmat(nodes, edges, 2026L), nodes);
      }
      Tensor x = Tensor.randn(new long[] {nodes, heads, width}, DType.F32, Device.CPU, 1L).requiresGrad(true);
      Tensor ss = Tensor.randn(new long[] {nodes, heads}, DType.F32, Device.CPU, 2L).requiresGrad(true);
      Tensor sd = Tensor.randn(new long[] {nodes, heads}, DType.F32, Device.CPU, 3L).requiresGrad(true);
      Tensor d = Tensor.randn(new long[] {nodes, heads, width}, DType.F32, Device.CPU, 4L);
      for (int r = 0; r < rounds; r++) {
        double[] t = new double[3];
        for (int m = 0; m < 3; m++) try (Scope q = Scope.open()) {
            long t0 = System.nanoTime();
            Tensor out = MessagePassing.gatAggregate(g, x, ss, sd, 0.2);
            if (m > 0) Autograd.grad(List.of(out), List.of(x, ss, sd), List.of(d), m == 2);
            t[m] = (System.nanoTime() - t0) / 1e6;
          }
        System.out.printf("edges=%d nodes=%d %dx%d: forward %.1f ms, forward + fused backward %.1f ms, forward + "
                + "composed backward %.1f ms%n",
            edges, nodes, heads, width, t[0], t[1], t[2]);
      }
    }
  }
}
