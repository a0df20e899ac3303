package org.metakernels.bench;

import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.*;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.*;
/**
 * Host memory of the GAT aggregation, fused ({@code MessagePassing.gatAggregate}) and composed
 * (sddmm + edgeSoftmax + aggregate), F32 on the 100k-node 1M-edge R-MAT graph of GraphBench: the
 * bytes the forward keeps alive besides its output (what the backward will read), and the bytes
 * the backward allocates in all (every intermediate stays live until its scope closes, so that is
 * its peak). Read from the host allocator's live-byte counter (mk_host_live_bytes).
 *   java -cp benchmarks/target/benchmarks.jar org.metakernels.bench.GatMemory H F
 */
public final class GatMemory {
  static long live() {
    return MkNative.mk_host_live_bytes();
  }
  public static void main(String[] a) {
    long n = 100000, e = 1000000;
    int h = Integer.parseInt(a[0]), f = Integer.parseInt(a[1]);
    try (Scope s = Scope.open()) {
      Graph g;
      try (Scope t = Scope.open()) {
        g = Graph.fromEdges(Graphs.rmat(n, e, 2026L), n);
      }
      Tensor x = Tensor.randn(new long[] {n, h, f}, DType.F32, Device.CPU, 1L).requiresGrad(true);
      Tensor ss = Tensor.randn(new long[] {n, h}, DType.F32, Device.CPU, 2L).requiresGrad(true);
      Tensor sd = Tensor.randn(new long[] {n, h}, DType.F32, Device.CPU, 3L).requiresGrad(true);
      Tensor d = Tensor.randn(new long[] {n, h, f}, DType.F32, Device.CPU, 4L);
      long outBytes = n * h * f * 4;
      for (String form : new String[] {"fused gatAggregate", "composed (sddmm + edgeSoftmax + aggregate)"})
        try (Scope q = Scope.open()) {
          long b0 = live();
          Tensor out;
          if (form.startsWith("fused"))
            out = MessagePassing.gatAggregate(g, x, ss, sd, 0.2);
          else {
            Tensor ones = Tensor.ones(new long[] {n, h, 1}, DType.F32, Device.CPU);
            Tensor z = MessagePassing.sddmm(g, ones, ss.reshape(n, h, 1))
                           .add(MessagePassing.sddmm(g, sd.reshape(n, h, 1), ones));
            Tensor ez = Tensor.where(z.gt(0.0), z, z.mul(0.2));
            out = MessagePassing.aggregate(g, x, MessagePassing.edgeSoftmax(g, ez), Reduce.SUM);
          }
          long b1 = live();
          Autograd.grad(List.of(out), List.of(x, ss, sd), List.of(d), false);
          long b2 = live();
          System.out.printf(
              "H=%d F=%d %s: forward holds %.1f MB besides its output (%.1f MB); backward allocates %.1f MB in all (E x H x 4 B = %.1f MB)%n",
              h, f, form, (b1 - b0 - outBytes) / 1e6, outBytes / 1e6, (b2 - b1) / 1e6, e * h * 4 / 1e6);
        }
    }
  }
}
