import java.util.*;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.*;
import org.metakernels.tensor.*;

// GPU probe for the open CudaGatBackwardTwinTest failure (benchmarks/results/gpu-2026-12-05.md: the
// fused GAT backward's sSrc gradient, F32, 4 heads x 16, only sSrc requiring grad, is wrong at a
// different element on every H100 run). For each subset {x, sDst requiring grad} and two runs it
// prints how many sSrc-gradient entries differ from the CPU twin, how many are hub columns (more
// than 128 in-edges), and the first few with their node's in/out degree. The packed runtime has no
// javac: compile here after pack.sh (an untracked, not ignored folder travels with the tree):
//   javac -cp "$(ls .device/lib/*.jar /tmp/mk-device-jars/*.jar | tr '\n' :)" -d probe-classes benchmarks/gpu/probes/GatProbe.java
// then on the GPU machine: source .device/env.sh && java -cp "$CP:probe-classes" GatProbe 4 16
// (heads, width; also 8 8, 1 1, 3 37). Not part of any build.
public class GatProbe {
  static double[] gs(Graph g, Tensor x, Tensor ss, Tensor sd, Tensor dOut, boolean wantX, boolean wantD) {
    Tensor xi = wantX ? x.detach().requiresGrad(true) : x.detach();
    Tensor si = ss.detach().requiresGrad(true);
    Tensor di = wantD ? sd.detach().requiresGrad(true) : sd.detach();
    List<Tensor> leaves = new ArrayList<>();
    if (wantX) leaves.add(xi);
    leaves.add(si);
    if (wantD) leaves.add(di);
    Tensor out = MessagePassing.gatAggregate(g, xi, si, di, 0.2);
    List<Tensor> r = Autograd.grad(List.of(out), leaves, List.of(dOut), false);
    return r.get(wantX ? 1 : 0).detach().to(Device.CPU).toDoubleArray();
  }
  public static void main(String[] a) {
    int N = 3000, E = 30000, h = Integer.parseInt(a[0]), w = Integer.parseInt(a[1]);
    try (Scope s = Scope.open()) {
      Graph g = Graph.fromEdges(Graphs.rmat(N, E, 4L), N).ownedBy(s);
      Graph gg = g.to(Device.CUDA).ownedBy(s);
      long[] rp = g.rowPtr().toLongArray(), cp = g.colPtr().toLongArray();
      Tensor x = Tensor.randn(new long[] {N, h, w}, DType.F32, Device.CPU, 1L + w);
      Tensor ss = Tensor.randn(new long[] {N, h}, DType.F32, Device.CPU, 2L + w);
      Tensor sd = Tensor.randn(new long[] {N, h}, DType.F32, Device.CPU, 3L + w);
      Tensor dOut = Tensor.randn(new long[] {N, h, w}, DType.F32, Device.CPU, 4L + w);
      double[] cpu = gs(g, x, ss, sd, dOut, false, false);
      Tensor xg = x.to(Device.CUDA), sg = ss.to(Device.CUDA), dg = sd.to(Device.CUDA), og = dOut.to(Device.CUDA);
      for (int mode = 0; mode < 4; mode++) {
        boolean wx = (mode & 1) != 0, wd = (mode & 2) != 0;
        for (int run = 0; run < 2; run++) {
          double[] gpu = gs(gg, xg, sg, dg, og, wx, wd);
          int bad = 0, badHubCol = 0, badHubRowNbr = 0;
          StringBuilder ex = new StringBuilder();
          for (int i = 0; i < cpu.length; i++) {
            double d = Math.abs(gpu[i] - cpu[i]);
            if (d > 1e-4 * (1 + Math.abs(cpu[i]))) {
              bad++;
              int node = i / h;
              long indeg = cp[node + 1] - cp[node], outdeg = rp[node + 1] - rp[node];
              if (indeg > 128) badHubCol++;
              if (bad <= 4) ex.append(String.format(" [node %d head %d colnnz %d rownnz %d: %.5f vs %.5f]", node, i % h, indeg, outdeg, gpu[i], cpu[i]));
            }
          }
          System.out.printf("h %d w %d wantX %b wantD %b run %d: %d bad of %d (hub columns %d)%s%n", h, w, wx, wd, run, bad, cpu.length, badHubCol, ex);
        }
      }
      long hubsC = 0, hubsR = 0;
      for (int i = 0; i < N; i++) { if (cp[i + 1] - cp[i] > 128) hubsC++; if (rp[i + 1] - rp[i] > 128) hubsR++; }
      System.out.printf("hub columns %d, hub rows %d, nnz %d%n", hubsC, hubsR, rp[N]);
    }
  }
}
