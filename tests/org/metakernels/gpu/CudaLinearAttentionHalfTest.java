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
 * BF16 / F16 linear attention on CUDA (the tensor-core chunk-parallel form, issue 11) against the
 * float64 product of the same rounded inputs and against the CPU twin. The criterion: the CUDA
 * error is at most twice that of a naive 16-bit composition (PyTorch's chunked form in the 16-bit
 * type, {@link HalfLinearAttentionRef}), errors as max |x − ref| / max |ref|; the CPU twin is held
 * to the same bound. Gradients and the double backward (the same products) against the CPU twin.
 * Skipped without CUDA.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(RequiresCuda.class)
class CudaLinearAttentionHalfTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason()); // (RequiresCuda skips first)
  }

  static Tensor half(long seed, DType t, long... shape) {
    return Tensor.randn(shape, DType.F32, CPU, seed).to(t);
  }

  @ParameterizedTest
  @CsvSource({
      // dtype, mask, groups, nq, nk, dk, dv: N not a multiple of 64, D/Dv 16..128 and 256, G > 1
      "BF16, CAUSAL, 4, 130, 130, 16, 16",
      "F16, CAUSAL, 2, 1000, 1000, 128, 128",
      "BF16, NONE, 3, 200, 333, 64, 64",
      "F16, NONE, 2, 77, 77, 100, 40",
      "BF16, ANTI_CAUSAL, 2, 513, 513, 128, 64",
      "F16, ANTI_CAUSAL, 1, 65, 65, 20, 130",
      "BF16, CAUSAL, 2, 300, 300, 256, 32",
      "F16, CAUSAL, 1, 130, 130, 300, 16",
  })
  void
  productIsWithinTwiceTheNaive16BitError(DType t, Mask mask, int g, int nq, int nk, int dk, int dv) {
    try (Scope s = Scope.open()) {
      Tensor q = half(1, t, g, nq, dk), k = half(2, t, g, nk, dk), v = half(3, t, g, nk, dv);
      Tensor gpu = LinearAttention.product(q.to(GPU), k.to(GPU), v.to(GPU), mask);
      Tensor cpu = LinearAttention.product(q, k, v, mask);
      assertEquals(t, gpu.dtype());
      double[] qd = q.toDoubleArray(), kd = k.toDoubleArray(), vd = v.toDoubleArray();
      int code = mask == Mask.NONE ? 0 : mask == Mask.CAUSAL ? 1 : 2;
      double[] exact = HalfLinearAttentionRef.product(DType.F64, code, g, nq, nk, dk, dv, qd, kd, vd);
      double[] naive = HalfLinearAttentionRef.product(t, code, g, nq, nk, dk, dv, qd, kd, vd);
      double en = HalfLinearAttentionRef.relErr(naive, exact);
      double eg = HalfLinearAttentionRef.relErr(gpu.to(CPU).toDoubleArray(), exact);
      double ec = HalfLinearAttentionRef.relErr(cpu.toDoubleArray(), exact);
      System.out.printf(
          "la %s %s [%d, %d, %d, %d, %d]: naive %.2e, cuda %.2e, cpu %.2e%n", t, mask, g, nq, nk, dk, dv, en, eg, ec);
      assertTrue(eg <= 2 * en + 1e-6, "CUDA error " + eg + " over twice the naive " + en);
      assertTrue(ec <= 2 * en + 1e-6, "CPU twin error " + ec + " over twice the naive " + en);
      // deterministic: the same bits on a second call
      Tensor again = LinearAttention.product(q.to(GPU), k.to(GPU), v.to(GPU), mask);
      assertArrayEquals(gpu.to(CPU).toDoubleArray(), again.to(CPU).toDoubleArray());
    }
  }

  @ParameterizedTest
  @CsvSource({"BF16, CAUSAL", "F16, NONE"})
  void gradientsAndDoubleBackwardFollowTheCpuTwin(DType t, Mask mask) {
    try (Scope s = Scope.open()) {
      int n = 200;
      Tensor q = half(4, t, 2, n, 64), k = half(5, t, 2, n, 64), v = half(6, t, 2, n, 32);
      Tensor w = half(7, t, 2, n, 32), u = half(8, t, 2, n, 64);
      double tol = t == DType.BF16 ? 3e-2 : 4e-3;
      double[][] cpu = grads(CPU, q, k, v, w, u, mask), gpu = grads(GPU, q, k, v, w, u, mask);
      for (int i = 0; i < cpu.length; i++) {
        double sc = Ref.maxAbs(cpu[i]);
        Ref.assertClose(gpu[i], cpu[i], tol * sc, 0, "output " + i);
      }
    }
  }

  // dq, dk, dv of <product, w>, then d/dk <dq, u> (createGraph), as host arrays
  static double[][] grads(Device dev, Tensor q, Tensor k, Tensor v, Tensor w, Tensor u, Mask mask) {
    Tensor qd = q.to(dev).requiresGrad(true), kd = k.to(dev).requiresGrad(true), vd = v.to(dev).requiresGrad(true);
    List<Tensor> g = Autograd.grad(
        List.of(LinearAttention.product(qd, kd, vd, mask)), List.of(qd, kd, vd), List.of(w.to(dev)), true);
    Tensor h = Autograd.grad(List.of(g.get(0)), List.of(kd), List.of(u.to(dev)), false).get(0);
    for (Tensor x : g) assertEquals(q.dtype(), x.dtype());
    return new double[][] {g.get(0).to(CPU).toDoubleArray(), g.get(1).to(CPU).toDoubleArray(),
        g.get(2).to(CPU).toDoubleArray(), h.to(CPU).toDoubleArray()};
  }

  @Test
  void momentumAttentionInBf16MatchesTheCpuTwin() {
    try (Scope s = Scope.open()) {
      var o = LinearAttention.Options.causal(FeatureMap.ELU_PLUS_ONE)
                  .withNormalization(LinearAttention.Normalization.NORMALIZER)
                  .withMomentum(0.9);
      Tensor q = half(9, DType.BF16, 2, 2, 150, 32), k = half(10, DType.BF16, 2, 2, 150, 32);
      Tensor v = half(11, DType.BF16, 2, 2, 150, 16);
      Tensor cpu = LinearAttention.apply(q, k, v, o), gpu = LinearAttention.apply(q.to(GPU), k.to(GPU), v.to(GPU), o);
      double sc = Ref.maxAbs(cpu.toDoubleArray());
      Ref.assertClose(gpu.to(CPU).toDoubleArray(), cpu.toDoubleArray(), 3e-2 * sc, 0, "bf16 momentum attention");
      // the momentum term alone: the same bits on both devices
      assertArrayEquals(LinearAttention.momentum(v, 0.9, false).toDoubleArray(),
          LinearAttention.momentum(v.to(GPU), 0.9, false).to(CPU).toDoubleArray());
    }
  }
}
