package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Attention;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

/**
 * Forward mode on CUDA against the CPU: a jvp and a forward-over-reverse Hessian-vector product
 * through an MLP-like loss and through fused softmax attention (whose forward rules run the CUDA
 * JVP, double-backward and backward kernels), F64. Runs only where a CUDA device exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaForwardModeTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  static List<Tensor> to(List<Tensor> xs, Device d) {
    List<Tensor> r = new ArrayList<>();
    for (Tensor x : xs) r.add(x.to(d));
    return r;
  }

  static void same(List<Tensor> cpu, List<Tensor> gpu, String what) {
    for (int i = 0; i < cpu.size(); i++) {
      assertEquals(GPU, gpu.get(i).device());
      Ref.assertClose(
          cpu.get(i).to(CPU).toDoubleArray(), gpu.get(i).to(CPU).toDoubleArray(), 1e-12, 1e-9, what + " " + i);
    }
  }

  @Test
  void jvpAndHvpForwardMatchTheCpu() {
    try (Scope s = Scope.open()) {
      List<Tensor> x = new ArrayList<>(), v = new ArrayList<>();
      long[][] shapes = {{2, 4, 33, 16}, {2, 2, 40, 16}, {2, 2, 40, 8}, {8, 5}};
      for (int i = 0; i < shapes.length; i++) {
        x.add(Tensor.randn(shapes[i], DType.F64, CPU, 10 + i));
        v.add(Tensor.randn(shapes[i], DType.F64, CPU, 20 + i));
      }
      Function<List<Tensor>, Tensor> loss = xs
          -> Attention.softmax(xs.get(0), xs.get(1), xs.get(2), Attention.Options.causal())
                 .matmul(xs.get(3))
                 .tanh()
                 .square()
                 .sum();
      same(Autograd.jvp(xs -> List.of(loss.apply(xs)), x, v).tangents(),
          Autograd.jvp(xs -> List.of(loss.apply(xs)), to(x, GPU), to(v, GPU)).tangents(), "jvp");
      same(Autograd.hvpForward(loss, x, v), Autograd.hvpForward(loss, to(x, GPU), to(v, GPU)), "hvpForward");
      same(Autograd.hvp(loss, to(x, GPU), to(v, GPU)), Autograd.hvpForward(loss, to(x, GPU), to(v, GPU)),
          "forward over reverse vs reverse over reverse on the GPU");
    }
  }
}
