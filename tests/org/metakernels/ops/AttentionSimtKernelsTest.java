package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.metakernels.ops.Attention.SimtKernels;
import org.metakernels.ops.Attention.SimtKernels.Choice;
import org.metakernels.ops.Attention.SimtKernels.Version;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The programmatic choice of the CUDA SIMT (F32/F64) attention kernels (mk_attention_simt_select,
 * {@link Attention.SimtKernels}): round trip, what {@code metakernels info} prints, reset, refusal
 * of bad codes (nothing changed), and the CPU's indifference. The kernels it picks run only on CUDA
 * (gpu/CudaAttentionSimtTest runs both versions there against the CPU twin).
 */
class AttentionSimtKernelsTest {
  static final Choice NONE = new Choice(Version.DEFAULT, Version.DEFAULT);

  @AfterEach
  void reset() {
    SimtKernels.reset();
  }

  @Test
  void selectRoundTripsAndInfoPrintsIt() {
    SimtKernels.reset();
    assertEquals(NONE, SimtKernels.current());
    String base = SimtKernels.describe();
    assertFalse(base.contains("override"), base);
    assertTrue(base.startsWith("MK_ATTN_SIMT="), base);
    if (System.getenv("MK_ATTN_SIMT") == null && System.getenv("MK_ATTN_SIMT_BWD") == null
        && System.getenv("MK_ATTN_SIMT_DD") == null) {
      // the defaults: v2 only where the H100 timed it (F32, 9.x, 64 < D <= 128)
      assertTrue(base.contains("F32 sm_80: D=64 v1/v1; D=128 v1/v1; D=256 v1/v1;"), base);
      assertTrue(base.contains("F32 sm_90: D=64 v1/v1; D=128 v2/v2; D=256 v1/v1;"), base);
      assertTrue(base.contains("F64 sm_90: D=64 v1/v1; D=128 v1/v1; D=256 v1/v1;"), base);
      assertTrue(base.contains(" F32 sm_90 D=128 v2;") && base.contains(" F32 sm_80 D=128 v1;")
          && base.contains(" F32 sm_90 D=64 v1;") && base.contains(" F64 sm_90 D=128 v1;"), base);
    }
    for (Version f : Version.values())
      for (Version b : Version.values()) {
        SimtKernels.select(f, b);
        assertEquals(new Choice(f, b), SimtKernels.current());
      }
    // x3: the forward of F32 at D = Dv in {64, 128} on sm_90; v2 elsewhere (v1 where v2 does not apply)
    SimtKernels.select(Version.X3, Version.V1);
    String x3 = SimtKernels.describe();
    assertTrue(x3.contains("(override: forward x3, backward v1)"), x3);
    assertTrue(x3.contains("F32 sm_90: D=64 x3/v1; D=128 x3/v1; D=256 v2/v1;"), x3);
    assertTrue(x3.contains("F32 sm_80: D=64 v2/v1; D=128 v2/v1; D=256 v2/v1;"), x3);
    assertTrue(x3.contains("F64 sm_90: D=64 v2/v1; D=128 v2/v1; D=256 v1/v1;"), x3);
    SimtKernels.select(Version.DEFAULT, Version.X3);
    x3 = SimtKernels.describe();
    assertTrue(x3.contains("(override: forward env, backward x3)"), x3);
    if (System.getenv("MK_ATTN_SIMT") == null)
      assertTrue(x3.contains("F32 sm_90: D=64 v1/x3; D=128 v2/x3; D=256 v1/v2;"), x3);
    assertTrue(x3.contains("F64 sm_90: D=64 v1/v2; D=128 v1/v2; D=256 v1/v1;") || System.getenv("MK_ATTN_SIMT") != null, x3);
    // the double backward has no x3: its choice line is unchanged by it
    assertTrue(!x3.contains("D=64 x3;") && !x3.contains("D=128 x3;"), x3);
    SimtKernels.select(Version.V2, Version.V2);
    String text = SimtKernels.describe();
    assertTrue(text.contains("(override: forward v2, backward v2)"), text);
    // v2 where it applies: F32 up to D = 256, F64 up to 128; v1 beyond
    for (String arch : new String[] {"sm_80", "sm_90"}) {
      assertTrue(text.contains("F32 " + arch + ": D=64 v2/v2; D=128 v2/v2; D=256 v2/v2;"), text);
      assertTrue(text.contains("F64 " + arch + ": D=64 v2/v2; D=128 v2/v2; D=256 v1/v1;"), text);
    }
    SimtKernels.select(Version.V2, Version.DEFAULT);
    text = SimtKernels.describe();
    assertTrue(text.contains("(override: forward v2, backward env)"), text);
    SimtKernels.select(Version.V1, Version.V1);
    text = SimtKernels.describe();
    assertTrue(text.contains("F32 sm_90: D=64 v1/v1; D=128 v1/v1; D=256 v1/v1;"), text);
    SimtKernels.reset();
    assertEquals(NONE, SimtKernels.current());
    assertEquals(base, SimtKernels.describe(), "reset restores the environment's choice");
  }

  @Test
  void badCodesAreRefusedWithTheOpNamedAndChangeNothing() {
    Native.ensureLoaded();
    SimtKernels.select(Version.V2, Version.V1);
    Choice before = SimtKernels.current();
    String text = SimtKernels.describe();
    int[][] bad = {{4, 0}, {-1, 0}, {0, 4}, {0, -2}, {Integer.MAX_VALUE, 1}, {1, Integer.MIN_VALUE}};
    String[] names = {"forward 4", "forward -1", "backward 4", "backward -2", "forward " + Integer.MAX_VALUE,
        "backward " + Integer.MIN_VALUE};
    for (int i = 0; i < bad.length; i++) {
      int status = MkNative.mk_attention_simt_select(bad[i][0], bad[i][1]);
      assertEquals(Codes.ERR_INVALID_ARGUMENT, status, names[i]);
      String msg = MkNative.mk_last_error().getString();
      assertTrue(msg.contains("mk_attention_simt_select") && msg.contains(names[i]), msg);
      assertEquals(before, SimtKernels.current(), names[i]);
      assertEquals(text, SimtKernels.describe(), names[i]);
    }
    assertThrows(NullPointerException.class, () -> SimtKernels.select(null, Version.V2));
    assertThrows(NullPointerException.class, () -> SimtKernels.select(Version.V2, null));
    assertEquals(before, SimtKernels.current());
    int[] f = new int[1], b = new int[1];
    assertEquals(Codes.OK, MkNative.mk_attention_simt_selected(f, b));
    assertArrayEquals(new int[] {Codes.ATTN_SIMT_SELECT_V2, Codes.ATTN_SIMT_SELECT_V1}, new int[] {f[0], b[0]});
    assertEquals(Codes.OK, MkNative.mk_attention_simt_selected(null, null));
  }

  /** The CPU has one kernel per pass: the same bits whatever the choice. */
  @Test
  void theCpuIgnoresTheChoice() {
    try (Scope sc = Scope.open()) {
      double[][] first = null;
      for (Version ver : Version.values()) {
        SimtKernels.select(ver, ver);
        Tensor q = Tensor.randn(new long[] {1, 2, 33, 64}, DType.F32, Device.CPU, 1).requiresGrad(true);
        Tensor k = Tensor.randn(new long[] {1, 2, 40, 64}, DType.F32, Device.CPU, 2);
        Tensor v = Tensor.randn(new long[] {1, 2, 40, 64}, DType.F32, Device.CPU, 3);
        Tensor out = Attention.softmax(q, k, v, Attention.Options.causal());
        Tensor dq = org.metakernels.autograd.Autograd.grad(out.square().sum(), java.util.List.of(q), false).get(0);
        double[][] r = {out.toDoubleArray(), dq.toDoubleArray()};
        if (first == null)
          first = r;
        else {
          assertArrayEquals(first[0], r[0], ver.toString());
          assertArrayEquals(first[1], r[1], ver.toString());
        }
      }
    }
  }
}
