package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.metakernels.ops.Attention.TensorCoreKernels;
import org.metakernels.ops.Attention.TensorCoreKernels.Backward;
import org.metakernels.ops.Attention.TensorCoreKernels.Choice;
import org.metakernels.ops.Attention.TensorCoreKernels.Forward;
import org.metakernels.ops.Attention.TensorCoreKernels.Second;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The programmatic choice of the 16-bit tensor-core attention kernels (mk_attention_tc_select,
 * {@link Attention.TensorCoreKernels}): round trip, what {@code metakernels info} prints, reset,
 * refusal of bad codes (nothing changed), and the CPU's indifference. The kernels it picks run only
 * on CUDA (gpu/CudaAttentionHalfTest runs every variant there).
 */
class AttentionTensorCoreKernelsTest {
  static final Choice NONE = new Choice(Forward.DEFAULT, Backward.DEFAULT, Second.DEFAULT);

  @AfterEach
  void reset() {
    TensorCoreKernels.reset();
  }

  @Test
  void selectRoundTripsAndInfoPrintsIt() {
    TensorCoreKernels.reset();
    assertEquals(NONE, TensorCoreKernels.current());
    String base = TensorCoreKernels.describe();
    assertFalse(base.contains("override"), base);
    for (Forward f : Forward.values())
      for (Backward b : Backward.values())
        for (Second s : Second.values()) {
          TensorCoreKernels.select(f, b, s);
          assertEquals(new Choice(f, b, s), TensorCoreKernels.current());
        }
    TensorCoreKernels.select(Forward.V2, Backward.V2, Second.F32);
    String text = TensorCoreKernels.describe();
    assertTrue(text.contains("(override: forward v2, backward v2, second f32)"), text);
    // v2 where it applies (max(D, Dv) <= 128 on sm_80+), v1 elsewhere; the F32 copies for the second order
    assertTrue(text.contains("D<=64 full v2/v2;") && text.contains("D<=128 causal v2/v2;"), text);
    assertTrue(text.contains("D<=256 full v1/v1;"), text);
    assertTrue(text.contains("(override: f32)") && text.contains("D<=64 f32;") && !text.contains("D<=64 tc;"), text);
    TensorCoreKernels.select(Forward.V2K32, Backward.DEFAULT, Second.TENSOR_CORES);
    text = TensorCoreKernels.describe();
    assertTrue(text.contains("(override: forward v2k32, backward env, second tc)"), text);
    assertTrue(text.contains("D<=64 full v2k32/"), text);
    assertTrue(text.contains("(override: tc)") && text.contains("D<=128 tc;") && text.contains("D<=256 f32;"), text);
    // the Hopper forward: on sm_90 where v2 applies (the head dims and the 9.0 device are checked at the
    // launch), v2 on sm_80, v1 where v2 does not apply
    TensorCoreKernels.select(Forward.SM90, Backward.DEFAULT, Second.DEFAULT);
    text = TensorCoreKernels.describe();
    assertTrue(text.contains("(override: forward sm90, backward env, second env)"), text);
    String sm80 = text.substring(text.indexOf("sm_80:"), text.indexOf("sm_90:"));
    String sm90 = text.substring(text.indexOf("sm_90:"));
    assertTrue(sm90.contains("D<=64 full sm90/") && sm90.contains("D<=128 causal sm90/"), text);
    assertTrue(sm80.contains("D<=64 full v2/") && sm80.contains("D<=128 causal v2/"), text);
    assertTrue(sm90.contains("D<=256 full v1/"), text);
    // the Hopper backward: the same rule (sm90 on sm_90 where v2 applies, v2 on sm_80, v1 above 128)
    TensorCoreKernels.select(Forward.DEFAULT, Backward.SM90, Second.DEFAULT);
    text = TensorCoreKernels.describe();
    assertTrue(text.contains("(override: forward env, backward sm90, second env)"), text);
    sm80 = text.substring(text.indexOf("sm_80:"), text.indexOf("sm_90:"));
    sm90 = text.substring(text.indexOf("sm_90:"));
    // (the default forward on a 9.0 device is sm90 too: measured, benchmarks/results/gpu-2026-12-05.md)
    assertTrue(sm90.contains("D<=64 full sm90/sm90;") && sm90.contains("D<=128 causal sm90/sm90;"), text);
    assertTrue(sm80.contains("D<=64 full v1/v2;") && sm80.contains("D<=128 causal v1/v2;"), text);
    assertTrue(sm90.contains("D<=256 full v1/v1;"), text);
    TensorCoreKernels.select(Forward.SM90, Backward.SM90, Second.DEFAULT);
    text = TensorCoreKernels.describe();
    sm90 = text.substring(text.indexOf("sm_90:"));
    assertTrue(sm90.contains("D<=64 full sm90/sm90;") && sm90.contains("D<=128 causal sm90/sm90;"), text);
    TensorCoreKernels.select(Forward.V1, Backward.V1, Second.DEFAULT);
    text = TensorCoreKernels.describe();
    assertTrue(text.contains("D<=64 full v1/v1;") && text.contains("D<=128 causal v1/v1;"), text);
    // the double backward's Hopper passes: opt-in (not the default until timed), named when selected,
    // tensor cores for the choice per head dim as with TENSOR_CORES
    TensorCoreKernels.select(Forward.DEFAULT, Backward.DEFAULT, Second.SM90);
    text = TensorCoreKernels.describe();
    assertTrue(text.contains("(override: forward env, backward env, second sm90)"), text);
    assertTrue(text.contains("(override: sm90)") && text.contains("Hopper passes (tensor_core_sm90_dd.cu"), text);
    assertTrue(text.contains("selected: they run where D = Dv = 64 or 128 on a 9.0 device"), text);
    assertTrue(text.contains("D<=128 tc;") && text.contains("D<=256 f32;"), text);
    TensorCoreKernels.select(Forward.DEFAULT, Backward.DEFAULT, Second.TENSOR_CORES);
    assertTrue(TensorCoreKernels.describe().contains("Hopper passes (tensor_core_sm90_dd.cu, opt-in until timed on "
        + "a GPU) not selected"), TensorCoreKernels.describe());
    TensorCoreKernels.reset();
    assertEquals(NONE, TensorCoreKernels.current());
    assertEquals(base, TensorCoreKernels.describe(), "reset restores the environment's choice");
    if (System.getenv("MK_ATTN_TC_DD") == null)  // the Hopper double-backward passes are opt-in
      assertTrue(base.contains("Hopper passes (tensor_core_sm90_dd.cu, opt-in until timed on a GPU) not selected"),
          base);
    if (System.getenv("MK_ATTN_TC") == null && System.getenv("MK_ATTN_TC_BWD") == null) {
      // the defaults: sm90 on a 9.0 device (v2 where it does not apply: its line shows the choice), v1 elsewhere
      sm80 = base.substring(base.indexOf("sm_80:"), base.indexOf("sm_90:"));
      sm90 = base.substring(base.indexOf("sm_90:"));
      assertTrue(sm90.contains("D<=64 full sm90/sm90;") && sm90.contains("D<=128 causal sm90/sm90;"), base);
      assertTrue(sm90.contains("D<=256 full v1/v1;"), base);
      assertTrue(sm80.contains("D<=64 full v1/v1;") && sm80.contains("D<=128 causal v1/v1;"), base);
    }
  }

  @Test
  void badCodesAreRefusedWithTheOpNamedAndChangeNothing() {
    Native.ensureLoaded();
    TensorCoreKernels.select(Forward.V2, Backward.V1, Second.TENSOR_CORES);
    Choice before = TensorCoreKernels.current();
    String text = TensorCoreKernels.describe();
    // (backward 3 is no code: v2k32 has no backward; 4 is sm90)
    int[][] bad = {
        {5, 0, 0}, {-1, 0, 0}, {0, 3, 0}, {0, 5, 0}, {0, -2, 0}, {0, 0, 4}, {1, 1, -1}, {Integer.MAX_VALUE, 1, 1}};
    String[] names = {"forward 5", "forward -1", "backward 3", "backward 5", "backward -2", "second 4", "second -1",
        "forward " + Integer.MAX_VALUE};
    for (int i = 0; i < bad.length; i++) {
      int status = MkNative.mk_attention_tc_select(bad[i][0], bad[i][1], bad[i][2]);
      assertEquals(Codes.ERR_INVALID_ARGUMENT, status, names[i]);
      String msg = MkNative.mk_last_error().getString();
      assertTrue(msg.contains("mk_attention_tc_select") && msg.contains(names[i]), msg);
      assertEquals(before, TensorCoreKernels.current(), names[i]);
      assertEquals(text, TensorCoreKernels.describe(), names[i]);
    }
    assertThrows(NullPointerException.class, () -> TensorCoreKernels.select(null, Backward.V2, Second.DEFAULT));
    assertThrows(NullPointerException.class, () -> TensorCoreKernels.select(Forward.V2, null, Second.DEFAULT));
    assertThrows(NullPointerException.class, () -> TensorCoreKernels.select(Forward.V2, Backward.V2, null));
    assertEquals(before, TensorCoreKernels.current());
    int[] f = new int[1], b = new int[1], s = new int[1];
    assertEquals(Codes.OK, MkNative.mk_attention_tc_selected(f, b, s));
    assertArrayEquals(
        new int[] {Codes.ATTN_TC_SELECT_FORWARD_V2, Codes.ATTN_TC_SELECT_BACKWARD_V1, Codes.ATTN_TC_SELECT_SECOND_TC},
        new int[] {f[0], b[0], s[0]});
    assertEquals(Codes.OK, MkNative.mk_attention_tc_selected(null, null, null));
  }

  /** The CPU runs no tensor-core kernels: the same bits whatever the choice. */
  @Test
  void theCpuIgnoresTheChoice() {
    try (Scope sc = Scope.open()) {
      double[][] first = null;
      for (Forward f : new Forward[] {Forward.DEFAULT, Forward.V2, Forward.V2K32}) {
        TensorCoreKernels.select(f, f == Forward.DEFAULT ? Backward.DEFAULT : Backward.V2,
            f == Forward.V2 ? Second.F32 : Second.TENSOR_CORES);
        Tensor q = Tensor.randn(new long[] {1, 2, 33, 64}, DType.F32, Device.CPU, 1).to(DType.BF16).requiresGrad(true);
        Tensor k = Tensor.randn(new long[] {1, 2, 40, 64}, DType.F32, Device.CPU, 2).to(DType.BF16);
        Tensor v = Tensor.randn(new long[] {1, 2, 40, 64}, DType.F32, Device.CPU, 3).to(DType.BF16);
        Tensor out = Attention.softmax(q, k, v, Attention.Options.causal());
        Tensor dq =
            org.metakernels.autograd.Autograd.grad(out.to(DType.F32).square().sum(), java.util.List.of(q), false)
                .get(0);
        double[][] r = {out.toDoubleArray(), dq.toDoubleArray()};
        if (first == null)
          first = r;
        else {
          assertArrayEquals(first[0], r[0], f.toString());
          assertArrayEquals(first[1], r[1], f.toString());
        }
      }
    }
  }

  /**
   * {@code metakernels info} names the F32 double backward and JVP with TF32 allowed: TF32 tensor
   * cores where max(D, Dv) <= 128 on sm_80+, the exact F32 kernels when the F32 path is selected; the
   * line follows the TF32 switch.
   */
  @Test
  void infoNamesTheTf32DoubleBackward() {
    boolean before = org.metakernels.runtime.Backend.allowTf32();
    try {
      TensorCoreKernels.reset();
      org.metakernels.runtime.Backend.setAllowTf32(true);
      String text = TensorCoreKernels.describe();
      String line = text.substring(text.indexOf("double backward and JVP (F32, TF32"));
      assertTrue(line.startsWith("double backward and JVP (F32, TF32 allowed)"), text);
      assertTrue(line.contains("D<=64 tf32;") && line.contains("D<=128 tf32;") && line.contains("D<=256 f32;"), text);
      org.metakernels.runtime.Backend.setAllowTf32(false);
      assertTrue(TensorCoreKernels.describe().contains("(F32, TF32 not allowed: exact F32 SIMT kernels)"));
      TensorCoreKernels.select(Forward.DEFAULT, Backward.DEFAULT, Second.F32);
      text = TensorCoreKernels.describe();
      line = text.substring(text.indexOf("double backward and JVP (F32, TF32"));
      assertTrue(line.contains("D<=64 f32;") && line.contains("D<=128 f32;") && !line.contains("tf32;"), text);
    } finally {
      org.metakernels.runtime.Backend.setAllowTf32(before);
    }
  }
}
