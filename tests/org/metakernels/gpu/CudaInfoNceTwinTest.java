package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Functional;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The fused InfoNCE rows on CUDA (kernels/cuda/infonce.cu) against the CPU twin through the Java API:
 * the loss of {@code Functional.infoNce} with and without a positives' mask and log-weights (learned,
 * as AdaMEOW's), its gradients and a second derivative (createGraph through infoNceRowsBackward),
 * F64 to 1e-10 relative and F32 to 1e-4; rectangular logits through {@code infoNceLogits} at rows
 * longer than a block's stride; bitwise equal run to run on the GPU. Runs only where a CUDA device
 * exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaInfoNceTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  static List<double[]> run(Device dev, DType t, boolean mask, boolean weights) {
    try (Scope s = Scope.open()) {
      int b = 37, d = 12;
      Tensor a = Tensor.uniform(new long[] {b, d}, -1, 1, t, CPU, 1).to(dev).requiresGrad(true);
      Tensor c = Tensor.uniform(new long[] {b, d}, -1, 1, t, CPU, 2).to(dev).requiresGrad(true);
      Tensor w = Tensor.uniform(new long[] {b, b}, -1, 1, t, CPU, 3).to(dev).requiresGrad(true);
      Tensor p = Tensor.uniform(new long[] {b, b}, 0, 1, t, CPU, 4).gt(0.8).to(t);
      double[] eye = new double[b * b];
      for (int i = 0; i < b; i++) eye[i * b + i] = 1;
      p = p.maximum(Tensor.of(eye, b, b).to(t)).to(dev);
      Tensor loss = Functional.infoNce(a, c, 0.4, mask ? p : null, weights ? w : null);
      List<Tensor> ins = weights ? List.of(a, c, w) : List.of(a, c);
      List<Tensor> g = Autograd.grad(loss, ins, true);
      Tensor dot = null;
      for (Tensor gi : g) {
        Tensor e = gi.square().sum();
        dot = dot == null ? e : dot.add(e);
      }
      List<Tensor> hv = Autograd.grad(dot, ins, false);
      List<double[]> out = new ArrayList<>();
      out.add(loss.to(CPU).toDoubleArray());
      for (Tensor gi : g) out.add(gi.to(CPU).toDoubleArray());
      for (Tensor hi : hv) out.add(hi.to(CPU).toDoubleArray());
      return out;
    }
  }

  @Test
  void fusedRowsMatchTheCpuTwinToSecondOrder() {
    for (DType t : new DType[] {DType.F64, DType.F32})
      for (boolean mask : new boolean[] {false, true})
        for (boolean weights : new boolean[] {false, true}) {
          List<double[]> cpu = run(CPU, t, mask, weights), gpu = run(GPU, t, mask, weights);
          List<double[]> gpu2 = run(GPU, t, mask, weights);
          double tol = t == DType.F64 ? 1e-10 : 1e-4;
          String what = t + " mask " + mask + " weights " + weights;
          for (int i = 0; i < cpu.size(); i++) {
            assertArrayEquals(gpu.get(i), gpu2.get(i), 0.0, what + " output " + i + ": run to run on the GPU");
            for (int j = 0; j < cpu.get(i).length; j++) {
              double want = cpu.get(i)[j], got = gpu.get(i)[j];
              assertTrue(Math.abs(got - want) <= tol * (1 + Math.abs(want)),
                  what + " output " + i + "[" + j + "]: GPU " + got + " vs CPU " + want);
            }
          }
        }
  }

  /** Rows of 700 columns (several per thread of a 256-thread block), more candidates than anchors. */
  @Test
  void longRectangularRowsMatchTheCpuTwin() {
    for (DType t : new DType[] {DType.F64, DType.F32})
      try (Scope s = Scope.open()) {
        Tensor logits = Tensor.uniform(new long[] {90, 700}, -6, 6, t, CPU, 5);
        Tensor w = Tensor.uniform(new long[] {90, 700}, -2, 1, t, CPU, 6);
        double[] cpu = Functional.infoNceLogits(logits, null, w).toDoubleArray();
        Tensor lg = logits.to(GPU).requiresGrad(true);
        Tensor rows = Functional.infoNceLogits(lg, null, w.to(GPU));
        double[] gpu = rows.to(CPU).toDoubleArray();
        double tol = t == DType.F64 ? 1e-12 : 1e-5;
        for (int i = 0; i < cpu.length; i++)
          assertEquals(cpu[i], gpu[i], tol * (1 + Math.abs(cpu[i])), t + " row " + i);
        Tensor gGpu = Autograd.grad(rows.sum(), List.of(lg), false).get(0);
        Tensor lc = logits.detach().requiresGrad(true);
        Tensor gCpu = Autograd.grad(Functional.infoNceLogits(lc, null, w).sum(), List.of(lc), false).get(0);
        double[] x = gCpu.toDoubleArray(), y = gGpu.to(CPU).toDoubleArray();
        for (int i = 0; i < x.length; i++) assertEquals(x[i], y[i], tol * (1 + Math.abs(x[i])), t + " grad " + i);
      }
  }
}
