package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.Activation;
import org.metakernels.ops.Functional;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The fused linear layer and the fused mse on CUDA (cuBLAS GEMMs, kernels/cuda/linear.cu) against
 * their CPU twins through the Java API: values, first derivatives and second derivatives
 * (createGraph through linearBackward and mseBackward), F64 to 1e-10 relative (another GEMM and
 * summation order) and F32 to 1e-4, every fused activation, a leading batch dim; bitwise equal
 * run to run on the GPU. Runs only where a CUDA device exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaFusedLinearTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  static List<double[]> run(Device dev, DType t, Activation act) {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.uniform(new long[] {3, 37, 20}, -1, 1, t, CPU, 1).to(dev).requiresGrad(true);
      Tensor w = Tensor.uniform(new long[] {33, 20}, -1, 1, t, CPU, 2).to(dev).requiresGrad(true);
      Tensor b = Tensor.uniform(new long[] {33}, -1, 1, t, CPU, 3).to(dev).requiresGrad(true);
      Tensor w2 = Tensor.uniform(new long[] {2, 33}, -1, 1, t, CPU, 4).to(dev).requiresGrad(true);
      Tensor target = Tensor.uniform(new long[] {3, 37, 2}, -1, 1, t, CPU, 5).to(dev);
      Tensor h = Functional.linear(x, w, b, act);
      Tensor loss = Functional.mse(Functional.linear(h, w2, null, Activation.TANH), target);
      List<Tensor> ins = List.of(x, w, b, w2);
      List<Tensor> g = Autograd.grad(loss, ins, true);
      Tensor dot = null;
      for (Tensor gi : g) {
        Tensor d = gi.square().sum();
        dot = dot == null ? d : dot.add(d);
      }
      List<Tensor> hv = Autograd.grad(dot, ins, false);
      List<double[]> out = new ArrayList<>();
      out.add(h.to(CPU).toDoubleArray());
      out.add(loss.to(CPU).toDoubleArray());
      for (Tensor gi : g) out.add(gi.to(CPU).toDoubleArray());
      for (Tensor hi : hv) out.add(hi.to(CPU).toDoubleArray());
      return out;
    }
  }

  @Test
  void fusedLinearAndMseMatchTheCpuTwinToSecondOrder() {
    for (DType t : new DType[] {DType.F64, DType.F32})
      for (Activation act :
          new Activation[] {Activation.IDENTITY, Activation.RELU, Activation.TANH, Activation.SIGMOID}) {
        List<double[]> c = run(CPU, t, act), g = run(GPU, t, act), g2 = run(GPU, t, act);
        double tol = t == DType.F64 ? 1e-10 : 1e-4;
        for (int i = 0; i < c.size(); i++) {
          assertArrayEquals(g.get(i), g2.get(i), 0.0, t + " " + act + " output " + i + ": run to run on the GPU");
          for (int j = 0; j < c.get(i).length; j++) {
            double want = c.get(i)[j], got = g.get(i)[j];
            assertTrue(Math.abs(got - want) <= tol * (1 + Math.abs(want)),
                t + " " + act + " output " + i + "[" + j + "]: GPU " + got + " vs CPU " + want);
          }
        }
      }
  }

  /** The split mse forward (n past 2^15: block partials in scratch, a fold in block order). */
  @Test
  void longMseIsSplitDeterministicAndMatchesTheCpuTwin() {
    for (DType t : new DType[] {DType.F64, DType.F32})
      for (long n : new long[] {32768, 32769, 1_000_003, (1L << 25) + 77}) {
        try (Scope s = Scope.open()) {
          Tensor p = Tensor.uniform(new long[] {n}, -3, 3, t, CPU, 7);
          Tensor q = Tensor.uniform(new long[] {n}, -3, 3, t, CPU, 8);
          double cpu = Functional.mse(p, q).toDoubleArray()[0];
          Tensor pg = p.to(GPU), qg = q.to(GPU);
          double gpu = Functional.mse(pg, qg).to(CPU).toDoubleArray()[0];
          double gpu2 = Functional.mse(pg, qg).to(CPU).toDoubleArray()[0];
          assertEquals(Double.doubleToRawLongBits(gpu), Double.doubleToRawLongBits(gpu2), t + " n " + n + ": run to run");
          double tol = t == DType.F64 ? 1e-12 : 1e-6;
          assertEquals(cpu, gpu, tol * cpu, t + " n " + n + ": GPU vs CPU");
        }
      }
  }
}
