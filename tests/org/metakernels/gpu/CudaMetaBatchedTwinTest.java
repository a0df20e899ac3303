package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.metakernels.autograd.Autograd;
import org.metakernels.meta.EvolutionStrategies;
import org.metakernels.meta.PerExample;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The CUDA per-example-norm and ES kernels against their CPU twins, through the Java API: the ES
 * noise, population and update are the same bits on both devices (Philox and a float Box–Muller,
 * every operation rounded as written; n from 1 to past a block of 64 indices); the norms agree to rounding (another summation tree) and are bitwise
 * equal run to run. Runs only where a CUDA device exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaMetaBatchedTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  @Test
  void esPopulationAndUpdateAreBitwiseTheCpuTwin() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (int n : new int[] {1, 7, 4099, 300_000}) {
          Tensor theta = Tensor.randn(new long[] {n}, t, CPU, n);
          Tensor cpu = EvolutionStrategies.perturb(theta, 0.05, 17L, 3, 64);
          Tensor gpu = EvolutionStrategies.perturb(theta.to(GPU), 0.05, 17L, 3, 64);
          assertArrayEquals(cpu.toDoubleArray(), gpu.to(CPU).toDoubleArray(), 0.0, "perturb " + t + " n " + n);
          Tensor w = Tensor.randn(new long[] {64}, t, CPU, 5L);
          Tensor uc = EvolutionStrategies.combine(w, 0.01, theta, theta, 17L, 3);
          Tensor ug = EvolutionStrategies.combine(w.to(GPU), 0.01, theta.to(GPU), theta.to(GPU), 17L, 3);
          assertArrayEquals(uc.toDoubleArray(), ug.to(CPU).toDoubleArray(), 0.0, "combine " + t + " n " + n);
        }
      // a whole run: ask/tell on both devices
      double[][] finals = new double[2][];
      Device[] devs = {CPU, GPU};
      for (int d = 0; d < 2; d++)
        try (EvolutionStrategies es =
                 new EvolutionStrategies(Tensor.zeros(new long[] {1000}, DType.F32, devs[d]), 32, 0.1, 0.05, 9L)) {
          for (int g = 0; g < 5; g++) {
            double[] m = es.ask().to(CPU).toDoubleArray();
            double[] f = new double[32];
            for (int i = 0; i < 32; i++)
              for (int j = 0; j < 1000; j++) f[i] -= (m[i * 1000 + j] - 1) * (m[i * 1000 + j] - 1);
            es.tell(f);
          }
          finals[d] = es.theta().to(CPU).toDoubleArray();
        }
      assertArrayEquals(finals[0], finals[1], 0.0, "an ES run");
    }
  }

  @Test
  void perExampleNormsMatchTheCpuTwin() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (long[] sh : new long[][] {{64, 1, 33, 10}, {8, 300, 16, 24}, {3, 2, 1, 1}}) {
          Tensor x = Tensor.randn(new long[] {sh[0], sh[1], sh[2]}, t, CPU, 1);
          Tensor g = Tensor.randn(new long[] {sh[0], sh[1], sh[3]}, t, CPU, 2);
          double[] cpu = PerExample.linearNormsSquared(x, g).toDoubleArray();
          Tensor gpu1 = PerExample.linearNormsSquared(x.to(GPU), g.to(GPU));
          double[] gpu = gpu1.to(CPU).toDoubleArray();
          double tol = t == DType.F64 ? 1e-12 : 1e-5;
          for (int b = 0; b < cpu.length; b++)
            assertEquals(cpu[b], gpu[b], tol * Math.abs(cpu[b]), t + " example " + b);
          assertArrayEquals(
              gpu, PerExample.linearNormsSquared(x.to(GPU), g.to(GPU)).to(CPU).toDoubleArray(), 0.0, "run to run");
        }
      // the derivative (composite ops) on both devices
      Tensor x = Tensor.randn(new long[] {4, 5, 3}, DType.F64, CPU, 3).requiresGrad(true);
      Tensor g = Tensor.randn(new long[] {4, 5, 2}, DType.F64, CPU, 4);
      Tensor xg = x.detach().to(GPU).requiresGrad(true);
      double[] dc = Autograd.grad(PerExample.linearNormsSquared(x, g).sum(), List.of(x), false).get(0).toDoubleArray();
      double[] dg = Autograd.grad(PerExample.linearNormsSquared(xg, g.to(GPU)).sum(), List.of(xg), false)
                        .get(0)
                        .to(CPU)
                        .toDoubleArray();
      for (int i = 0; i < dc.length; i++) assertEquals(dc[i], dg[i], 1e-12 * (1 + Math.abs(dc[i])), "dx " + i);
    }
  }
}
