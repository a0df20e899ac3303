package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.LinearAttention.CudaForms;
import org.metakernels.ops.LinearAttention.CudaForms.Choice;
import org.metakernels.ops.LinearAttention.CudaForms.F32;
import org.metakernels.ops.LinearAttention.CudaForms.TensorCore;
import org.metakernels.ops.LinearAttention.Mask;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The programmatic choice of the CUDA linear-attention forms (mk_linear_attention_select, {@link
 * LinearAttention.CudaForms}): round trip, what {@code metakernels info} prints, reset, refusal of
 * bad codes (the op named, nothing changed), and the CPU's indifference. The forms it picks run only
 * on CUDA (tests/cuda-emu/linear_attention_emu_test.cpp checks them in the emulator; the gpu-tagged
 * linear-attention tests run them under MK_LINEAR_TC=recurrent MK_LINEAR_F32=x3).
 */
class LinearAttentionCudaFormsTest {
  static final Choice NONE = new Choice(TensorCore.DEFAULT, F32.DEFAULT);

  @AfterEach
  void reset() {
    CudaForms.reset();
  }

  @Test
  void selectRoundTripsAndInfoPrintsIt() {
    CudaForms.reset();
    assertEquals(NONE, CudaForms.current());
    String base = CudaForms.describe();
    assertFalse(base.contains("override"), base);
    assertTrue(base.startsWith("MK_LINEAR_TC="), base);
    if (System.getenv("MK_LINEAR_TC") == null && System.getenv("MK_LINEAR_F32") == null) {
      assertTrue(base.startsWith("MK_LINEAR_TC=(unset), MK_LINEAR_F32=(unset); products: BF16/F16 and TF32 "
          + "chunked, F32 simt (chunked)"), base);
    }
    for (TensorCore t : TensorCore.values())
      for (F32 f : F32.values()) {
        CudaForms.select(t, f);
        assertEquals(new Choice(t, f), CudaForms.current());
      }
    CudaForms.select(TensorCore.RECURRENT, F32.X3);
    String text = CudaForms.describe();
    assertTrue(text.contains("(override: tensor cores recurrent, F32 x3)"), text);
    assertTrue(text.contains("products: BF16/F16 and TF32 recurrent, F32 x3 (recurrent, 3xTF32)"), text);
    CudaForms.select(TensorCore.CHUNKED, F32.DEFAULT);
    text = CudaForms.describe();
    assertTrue(text.contains("(override: tensor cores chunked, F32 env)"), text);
    assertTrue(text.contains("BF16/F16 and TF32 chunked"), text);
    CudaForms.select(TensorCore.DEFAULT, F32.SIMT);
    text = CudaForms.describe();
    assertTrue(text.contains("(override: tensor cores env, F32 simt)") && text.contains("F32 simt (chunked)"), text);
    CudaForms.reset();
    assertEquals(NONE, CudaForms.current());
    assertEquals(base, CudaForms.describe(), "reset restores the environment's choice");
  }

  @Test
  void badCodesAreRefusedWithTheOpNamedAndChangeNothing() {
    Native.ensureLoaded();
    CudaForms.select(TensorCore.RECURRENT, F32.SIMT);
    Choice before = CudaForms.current();
    String text = CudaForms.describe();
    int[][] bad = {{3, 0}, {-1, 0}, {0, 2}, {0, 4}, {0, -1}, {Integer.MAX_VALUE, 1}, {1, Integer.MIN_VALUE}};
    String[] names = {"tensor_core 3", "tensor_core -1", "f32 2", "f32 4", "f32 -1",
        "tensor_core " + Integer.MAX_VALUE, "f32 " + Integer.MIN_VALUE};
    for (int i = 0; i < bad.length; i++) {
      int status = MkNative.mk_linear_attention_select(bad[i][0], bad[i][1]);
      assertEquals(Codes.ERR_INVALID_ARGUMENT, status, names[i]);
      String msg = MkNative.mk_last_error().getString();
      assertTrue(msg.contains("mk_linear_attention_select") && msg.contains(names[i]), msg);
      assertEquals(before, CudaForms.current(), names[i]);
      assertEquals(text, CudaForms.describe(), names[i]);
    }
    assertThrows(NullPointerException.class, () -> CudaForms.select(null, F32.X3));
    assertThrows(NullPointerException.class, () -> CudaForms.select(TensorCore.RECURRENT, null));
    assertEquals(before, CudaForms.current());
    int[] t = new int[1], f = new int[1];
    assertEquals(Codes.OK, MkNative.mk_linear_attention_selected(t, f));
    assertArrayEquals(new int[] {Codes.LINEAR_SELECT_RECURRENT, Codes.LINEAR_SELECT_SIMT}, new int[] {t[0], f[0]});
    assertEquals(Codes.OK, MkNative.mk_linear_attention_selected(null, null));
  }

  /** The CPU has one form: the same bits (product, gradients) whatever the choice. */
  @Test
  void theCpuIgnoresTheChoice() {
    try (Scope sc = Scope.open()) {
      double[][] first = null;
      for (TensorCore t : TensorCore.values())
        for (F32 f : F32.values()) {
          CudaForms.select(t, f);
          Tensor q = Tensor.randn(new long[] {2, 70, 16}, DType.F32, Device.CPU, 1).requiresGrad(true);
          Tensor k = Tensor.randn(new long[] {2, 70, 16}, DType.F32, Device.CPU, 2);
          Tensor v = Tensor.randn(new long[] {2, 70, 8}, DType.F32, Device.CPU, 3);
          Tensor out = LinearAttention.product(q, k, v, Mask.CAUSAL);
          Tensor dq = Autograd.grad(out.square().sum(), List.of(q), false).get(0);
          double[][] r = {out.toDoubleArray(), dq.toDoubleArray()};
          if (first == null)
            first = r;
          else {
            assertArrayEquals(first[0], r[0], t + "/" + f);
            assertArrayEquals(first[1], r[1], t + "/" + f);
          }
        }
    }
  }
}
