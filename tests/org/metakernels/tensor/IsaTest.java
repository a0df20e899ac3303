package org.metakernels.tensor;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Attention;
import org.metakernels.ops.LinearAttention;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;

/**
 * The AVX2 fallback and the AVX-512 build of the CPU kernels agree. Each MK_MULTI_ISA file is
 * compiled twice; this runs the same fused and dense work under both (where the CPU has
 * AVX-512) so a wrong dispatch or a header function shared between the builds shows up here.
 */
class IsaTest {
  static final Device CPU = Device.CPU;

  /** Attention forward + backward, linear attention, matmul and transcendental elementwise ops. */
  static List<float[]> work() {
    try (Scope s = Scope.open()) {
      List<float[]> out = new ArrayList<>();
      Tensor q = Tensor.randn(new long[] {2, 3, 77, 64}, DType.F32, CPU, 1).requiresGrad(true);
      Tensor k = Tensor.randn(new long[] {2, 3, 91, 64}, DType.F32, CPU, 2).requiresGrad(true);
      Tensor v = Tensor.randn(new long[] {2, 3, 91, 64}, DType.F32, CPU, 3).requiresGrad(true);
      Tensor o = Attention.softmax(q, k, v, Attention.Options.causal());
      out.add(o.toFloatArray());
      for (Tensor g : Autograd.grad(o.square().sum(), List.of(q, k, v), false)) out.add(g.toFloatArray());
      Tensor lk = Tensor.randn(new long[] {2, 3, 77, 64}, DType.F32, CPU, 4);
      out.add(LinearAttention.product(q, lk, q, LinearAttention.Mask.CAUSAL).toFloatArray());
      // widths that are not whole vectors on either ISA (the masked last columns of the tile products)
      Tensor sq = Tensor.randn(new long[] {4, 2, 11, 11}, DType.F32, CPU, 6);
      Tensor sk = Tensor.randn(new long[] {4, 2, 10, 11}, DType.F32, CPU, 7);
      Tensor sv = Tensor.randn(new long[] {4, 2, 10, 13}, DType.F32, CPU, 8);
      out.add(LinearAttention.product(sq, sk, sv, LinearAttention.Mask.NONE).toFloatArray());
      out.add(LinearAttention.product(sk, sk, sv, LinearAttention.Mask.CAUSAL).toFloatArray());
      Tensor aq = Tensor.randn(new long[] {2, 2, 33, 20}, DType.F32, CPU, 9).requiresGrad(true);
      Tensor ak = Tensor.randn(new long[] {2, 2, 45, 20}, DType.F32, CPU, 10).requiresGrad(true);
      Tensor ao = Attention.softmax(aq, ak, ak, Attention.Options.defaults());
      out.add(ao.toFloatArray());
      for (Tensor g : Autograd.grad(ao.square().sum(), List.of(aq, ak), false)) out.add(g.toFloatArray());
      Tensor x = Tensor.randn(new long[] {129, 67}, DType.F32, CPU, 5);
      out.add(x.matmul(x.transpose(0, 1)).toFloatArray());
      out.add(x.tanh().add(x.exp()).add(x.sigmoid()).add(x.gelu()).toFloatArray());
      return out;
    }
  }

  @Test
  void avx2AndBestIsaAgree() {
    int best = MkNative.mk_runtime_cpu_isa();
    try {
      Backend.setCpuIsa("auto");
      List<float[]> a = work();
      Backend.setCpuIsa("avx2");
      assertEquals("AVX2", Backend.get().cpuIsa());
      List<float[]> b = work();
      for (int i = 0; i < a.size(); i++) {
        float[] x = a.get(i), y = b.get(i);
        assertEquals(x.length, y.length);
        double scale = 0, err = 0;
        for (int j = 0; j < x.length; j++) {
          assertTrue(Float.isFinite(y[j]), "output " + i + " not finite under AVX2");
          scale = Math.max(scale, Math.abs(x[j]));
          err = Math.max(err, Math.abs(x[j] - y[j]));
        }
        assertTrue(err <= 1e-4 * Math.max(1, scale), "output " + i + ": AVX2 vs best ISA differ by " + err + " (scale " + scale + ")");
      }
    } finally {
      Backend.setCpuIsa(best == 3 ? "avx512" : "avx2");
    }
  }

  @Test
  void unknownOrUnavailableIsaIsRefused() {
    int before = MkNative.mk_runtime_cpu_isa();
    assertThrows(MetakernelsException.class, () -> Backend.setCpuIsa("sse2"));
    assertEquals(before, MkNative.mk_runtime_cpu_isa());
  }
}
