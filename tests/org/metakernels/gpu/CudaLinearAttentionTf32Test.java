package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.LinearAttention;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.ops.LinearAttention.Mask;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.HalfLinearAttentionRef;
import org.metakernels.testing.Ref;

/**
 * F32 linear attention on CUDA with TF32 allowed ({@link Backend#setAllowTf32}, issue 11): the
 * chunk-parallel product on m16n8k8 TF32 tensor cores (F32 states), against the float64 product of
 * the F32 inputs. The criterion: the error is at most twice that of the naive TF32 composition (the
 * chunked form computed in F32 with TF32 matmuls, {@link HalfLinearAttentionRef#productTf32}),
 * errors as max |x − ref| / max |ref|; with TF32 off the same call is exact F32 (the SIMT form).
 * Gradients, the double backward and momentum attention (the same products) against the CPU twin.
 * Every test restores the switch. Skipped without CUDA.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(RequiresCuda.class)
class CudaLinearAttentionTf32Test {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason()); // (RequiresCuda skips first)
  }

  static Tensor f32(long seed, long... shape) {
    return Tensor.randn(shape, DType.F32, CPU, seed);
  }

  @ParameterizedTest
  @CsvSource({
      // mask, groups, nq, nk, dk, dv: N not a multiple of 64, D/Dv 16..128 and 200, G > 1
      "CAUSAL, 4, 130, 130, 16, 16",
      "CAUSAL, 2, 1000, 1000, 128, 128",
      "NONE, 3, 200, 333, 64, 64",
      "NONE, 2, 77, 77, 100, 40",
      "ANTI_CAUSAL, 2, 513, 513, 128, 64",
      "ANTI_CAUSAL, 1, 65, 65, 20, 130",
      "CAUSAL, 2, 300, 300, 200, 32",
      "CAUSAL, 1, 130, 130, 300, 16",
  })
  void
  productIsWithinTwiceTheNaiveTf32Error(Mask mask, int g, int nq, int nk, int dk, int dv) {
    boolean before = Backend.allowTf32();
    try (Scope s = Scope.open()) {
      Tensor q = f32(1, g, nq, dk), k = f32(2, g, nk, dk), v = f32(3, g, nk, dv);
      Tensor qg = q.to(GPU), kg = k.to(GPU), vg = v.to(GPU);
      Backend.setAllowTf32(true);
      Tensor tf32 = LinearAttention.product(qg, kg, vg, mask);
      Tensor again = LinearAttention.product(qg, kg, vg, mask);
      Backend.setAllowTf32(false);
      Tensor exactF32 = LinearAttention.product(qg, kg, vg, mask);
      assertEquals(DType.F32, tf32.dtype());
      double[] qd = q.toDoubleArray(), kd = k.toDoubleArray(), vd = v.toDoubleArray();
      int code = mask == Mask.NONE ? 0 : mask == Mask.CAUSAL ? 1 : 2;
      double[] exact = HalfLinearAttentionRef.product(DType.F64, code, g, nq, nk, dk, dv, qd, kd, vd);
      double[] naive = HalfLinearAttentionRef.productTf32(code, g, nq, nk, dk, dv, qd, kd, vd);
      double en = HalfLinearAttentionRef.relErr(naive, exact);
      double et = HalfLinearAttentionRef.relErr(tf32.to(CPU).toDoubleArray(), exact);
      double ef = HalfLinearAttentionRef.relErr(exactF32.to(CPU).toDoubleArray(), exact);
      System.out.printf("la TF32 %s [%d, %d, %d, %d, %d]: naive %.2e, cuda tf32 %.2e, cuda f32 %.2e%n", mask, g, nq, nk,
          dk, dv, en, et, ef);
      assertTrue(et <= 2 * en + 1e-6, "TF32 error " + et + " over twice the naive " + en);
      assertTrue(ef <= 1e-5, "F32 (TF32 off) error " + ef);
      // deterministic: the same bits on a second call
      assertArrayEquals(tf32.to(CPU).toDoubleArray(), again.to(CPU).toDoubleArray());
    } finally {
      Backend.setAllowTf32(before);
    }
  }

  @ParameterizedTest
  @CsvSource({"CAUSAL", "NONE", "ANTI_CAUSAL"})
  void gradientsAndDoubleBackwardFollowTheCpuTwin(Mask mask) {
    boolean before = Backend.allowTf32();
    try (Scope s = Scope.open()) {
      int n = 200;
      Tensor q = f32(4, 2, n, 64), k = f32(5, 2, n, 64), v = f32(6, 2, n, 32);
      Tensor w = f32(7, 2, n, 32), u = f32(8, 2, n, 64);
      double[][] cpu = CudaLinearAttentionHalfTest.grads(CPU, q, k, v, w, u, mask);
      Backend.setAllowTf32(true);
      double[][] gpu = CudaLinearAttentionHalfTest.grads(GPU, q, k, v, w, u, mask);
      for (int i = 0; i < cpu.length; i++) {
        double sc = Ref.maxAbs(cpu[i]);
        Ref.assertClose(gpu[i], cpu[i], 1e-2 * sc, 0, "output " + i); // TF32: ~1e-3 of the largest
      }
    } finally {
      Backend.setAllowTf32(before);
    }
  }

  @Test
  void momentumAttentionMatchesTheCpuTwin() {
    boolean before = Backend.allowTf32();
    try (Scope s = Scope.open()) {
      var o = LinearAttention.Options.causal(FeatureMap.ELU_PLUS_ONE)
                  .withNormalization(LinearAttention.Normalization.NORMALIZER)
                  .withMomentum(0.9);
      Tensor q = f32(9, 2, 2, 150, 32), k = f32(10, 2, 2, 150, 32), v = f32(11, 2, 2, 150, 16);
      Tensor cpu = LinearAttention.apply(q, k, v, o);
      Backend.setAllowTf32(true);
      Tensor qg = q.to(GPU).requiresGrad(true);
      Tensor gpu = LinearAttention.apply(qg, k.to(GPU), v.to(GPU), o);
      double sc = Ref.maxAbs(cpu.toDoubleArray());
      Ref.assertClose(gpu.to(CPU).toDoubleArray(), cpu.toDoubleArray(), 1e-2 * sc, 0, "tf32 momentum attention");
      Tensor qc = q.requiresGrad(true);
      Tensor gc = Autograd.grad(LinearAttention.apply(qc, k, v, o).square().sum(), List.of(qc), false).get(0);
      Tensor gg = Autograd.grad(gpu.square().sum(), List.of(qg), false).get(0);
      Ref.assertClose(gg.to(CPU).toDoubleArray(), gc.toDoubleArray(), 2e-2 * Ref.maxAbs(gc.toDoubleArray()), 0,
          "tf32 momentum attention dq");
    } finally {
      Backend.setAllowTf32(before);
    }
  }
}
