package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.metakernels.gpu.CudaLinearAttentionHalfTest.half;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.metakernels.ops.LinearAttention;
import org.metakernels.ops.LinearAttention.CudaForms;
import org.metakernels.ops.LinearAttention.Mask;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.HalfLinearAttentionRef;
import org.metakernels.testing.Ref;

/**
 * The recurrent CUDA form of linear attention (kernels/cuda/linear_attention_recurrent.cuh, chosen
 * through {@link CudaForms}: the walk for masked products, the state form for unmasked ones) against
 * the CPU twin and the float64 product: BF16 / F16 within
 * twice the naive 16-bit composition's error, F32 on TF32 (Backend.setAllowTf32) within the TF32
 * rounding of the harness (4e-3 of the largest output), x3 (F32 without TF32, three TF32 products
 * per product) within 1e-5 of the largest output, like the exact SIMT form; deterministic; gradients
 * and the double backward (products of the same mask, so on the same form) against the CPU twin.
 * Shapes with one and several 64-key chunks, the last partial, dk 64 and 128, value tiles over 64, a
 * sequence long enough that one group walks in segments on a 132-SM device, and unmasked products
 * with nq != nk (several query blocks, key segments). Skipped without CUDA.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(RequiresCuda.class)
class CudaLinearAttentionRecurrentTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason());
  }

  @AfterEach
  void reset() {
    CudaForms.reset();
    Backend.setAllowTf32(false);
  }

  @ParameterizedTest
  @CsvSource({
      // dtype (TF32: F32 data with TF32 allowed; X3: F32 without), mask, groups, nq, nk, dk, dv
      "BF16, CAUSAL, 2, 130, 130, 64, 64",
      "F16, ANTI_CAUSAL, 1, 200, 200, 128, 130",
      "BF16, ANTI_CAUSAL, 1, 1100, 1100, 64, 32",
      "TF32, CAUSAL, 2, 150, 150, 128, 64",
      "TF32, ANTI_CAUSAL, 1, 70, 70, 32, 100",
      "X3, CAUSAL, 2, 190, 190, 128, 128",
      "X3, ANTI_CAUSAL, 1, 1100, 1100, 64, 64",
      "BF16, NONE, 2, 300, 170, 64, 130",
      "F16, NONE, 1, 90, 700, 128, 64",
      "TF32, NONE, 2, 260, 260, 100, 72",
      "X3, NONE, 1, 600, 600, 64, 64",
      "X3, NONE, 2, 70, 330, 128, 40",
  })
  void productGradientsAndDoubleBackwardFollowTheCpuTwin(
      String kind, Mask mask, int g, int nq, int nk, int dk, int dv) {
    boolean tf32 = kind.equals("TF32"), x3 = kind.equals("X3");
    DType t = tf32 || x3 ? DType.F32 : DType.valueOf(kind);
    CudaForms.select(CudaForms.TensorCore.RECURRENT, x3 ? CudaForms.F32.X3 : CudaForms.F32.SIMT);
    Backend.setAllowTf32(tf32);
    try (Scope s = Scope.open()) {
      Tensor q = half(1, t, g, nq, dk), k = half(2, t, g, nk, dk), v = half(3, t, g, nk, dv);
      Tensor gpu = LinearAttention.product(q.to(GPU), k.to(GPU), v.to(GPU), mask);
      Tensor cpu = LinearAttention.product(q, k, v, mask);
      double[] qd = q.toDoubleArray(), kd = k.toDoubleArray(), vd = v.toDoubleArray();
      int code = mask == Mask.CAUSAL ? 1 : mask == Mask.ANTI_CAUSAL ? 2 : 0;
      double[] exact = HalfLinearAttentionRef.product(DType.F64, code, g, nq, nk, dk, dv, qd, kd, vd);
      double eg = HalfLinearAttentionRef.relErr(gpu.to(CPU).toDoubleArray(), exact);
      double ec = HalfLinearAttentionRef.relErr(cpu.toDoubleArray(), exact);
      double bound;
      if (t == DType.BF16 || t == DType.F16) {
        double en = HalfLinearAttentionRef.relErr(
            HalfLinearAttentionRef.product(t, code, g, nq, nk, dk, dv, qd, kd, vd), exact);
        bound = 2 * en + 1e-6;
      } else {
        bound = tf32 ? 4e-3 : 1e-5;
      }
      System.out.printf("recurrent %s %s [%d, %d, %d, %d, %d]: cuda %.2e, cpu %.2e, bound %.2e%n", kind, mask, g, nq,
          nk, dk, dv, eg, ec, bound);
      assertTrue(eg <= bound, "CUDA error " + eg + " over " + bound);
      Tensor again = LinearAttention.product(q.to(GPU), k.to(GPU), v.to(GPU), mask);
      assertArrayEquals(gpu.to(CPU).toDoubleArray(), again.to(CPU).toDoubleArray(), "a second call's bits");
      if (t == DType.F32) {  // the choice took effect: the default forms sum in another order (F32 output bits)
        CudaForms.reset();
        Tensor other = LinearAttention.product(q.to(GPU), k.to(GPU), v.to(GPU), mask);
        assertFalse(java.util.Arrays.equals(gpu.to(CPU).toDoubleArray(), other.to(CPU).toDoubleArray()),
            "the recurrent form gave the default form's bits");
        CudaForms.select(CudaForms.TensorCore.RECURRENT, x3 ? CudaForms.F32.X3 : CudaForms.F32.SIMT);
      }
      // gradients and the double backward: the CPU twin's within the type's rounding
      Tensor w = half(7, t, g, nq, dv), u = half(8, t, g, nq, dk);
      double tol = t == DType.BF16 ? 3e-2 : t == DType.F16 || tf32 ? 4e-3 : 1e-5;
      double[][] c = CudaLinearAttentionHalfTest.grads(CPU, q, k, v, w, u, mask);
      double[][] d = CudaLinearAttentionHalfTest.grads(GPU, q, k, v, w, u, mask);
      for (int i = 0; i < c.length; i++) Ref.assertClose(d[i], c[i], tol * Ref.maxAbs(c[i]), 0, kind + " output " + i);
    }
  }
}
