package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Attention;
import org.metakernels.ops.Attention.SimtKernels;
import org.metakernels.ops.Attention.SimtKernels.Version;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.HalfAttentionRef;

/**
 * F32 (TF32 off) and F64 softmax attention on CUDA through the SIMT kernels, v1 and v2 (forced by
 * {@link Attention.SimtKernels}; mk/attention_simt_choice.h), against the CPU twin: out, lse, dq,
 * dk, dv and the bias gradient within 2e-5 (F32) or 1e-11 (F64) of the twin's largest magnitude,
 * v1 and v2 alike; v2 run twice gives the same bits. Shapes where v2 does not apply (odd head dims,
 * F64 with D = 256) run v1 under the v2 choice and are held to the same bounds. Padded cases put
 * NaN in the padding keys of K and V. X3 (F32 on Hopper
 * tensor cores, 3xTF32, forward and backward) the same way: it runs for F32 with D = Dv in {64, 128}
 * on a 9.0 device, v2 elsewhere; twice the same bits. Skipped without CUDA.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(RequiresCuda.class)
class CudaAttentionSimtTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason()); // (RequiresCuda skips first)
  }

  @AfterEach
  void reset() {
    SimtKernels.reset();
  }

  /** out, lse, dq, dk, dv (and dbias when the bias is given) of the library on {@code dev}, as host arrays. */
  static List<double[]> library(
      Device dev, Tensor q, Tensor k, Tensor v, Tensor bias, Tensor lengths, boolean causal, Tensor dout) {
    Tensor qd = q.to(dev).detach().requiresGrad(true), kd = k.to(dev).detach().requiresGrad(true);
    Tensor vd = v.to(dev).detach().requiresGrad(true);
    Tensor bd = bias == null ? null : bias.to(dev).detach().requiresGrad(true);
    Attention.Options o = Attention.Options.defaults().withCausal(causal);
    if (bd != null) o = o.withBias(bd);
    if (lengths != null) o = o.withKeyLengths(lengths.to(dev));
    Attention.Output f = Attention.forward(qd, kd, vd, o);
    List<Tensor> wrt = bd == null ? List.of(qd, kd, vd) : List.of(qd, kd, vd, bd);
    List<Tensor> g = Autograd.grad(List.of(f.out()), wrt, List.of(dout.to(dev)), false);
    List<double[]> r = new ArrayList<>();
    r.add(f.out().to(CPU).toDoubleArray());
    r.add(f.lse().to(CPU).toDoubleArray());
    for (Tensor t : g) {
      assertEquals(q.dtype(), t.dtype());
      r.add(t.to(CPU).toDoubleArray());
    }
    return r;
  }

  /** x ([b, hkv, nk, w]) with NaN in the rows of each batch entry past its key length. */
  static Tensor nanPadding(Tensor x, long[] lengths) {
    long b = x.size(0), hkv = x.size(1), nk = x.size(2), w = x.size(3);
    double[] a = x.toDoubleArray();
    for (int bb = 0; bb < b; bb++)
      for (int h = 0; h < hkv; h++)
        for (long j = lengths[bb]; j < nk; j++)
          for (int e = 0; e < w; e++) a[(int) (((bb * hkv + h) * nk + j) * w + e)] = Double.NaN;
    return Tensor.of(a, b, hkv, nk, w).to(x.dtype());
  }

  /** max |x − ref| / max |ref| over the finite entries; infinities must match exactly. */
  static double err(double[] x, double[] ref) {
    double scale = 0, e = 0;
    for (double r : ref)
      if (Double.isFinite(r)) scale = Math.max(scale, Math.abs(r));
    for (int i = 0; i < ref.length; i++) {
      if (Double.isInfinite(ref[i]) || Double.isInfinite(x[i])) {
        if (x[i] != ref[i]) return Double.POSITIVE_INFINITY;
        continue;
      }
      double d = Math.abs(x[i] - ref[i]);
      e = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(e, d);
    }
    return scale > 0 ? e / scale : e;
  }

  @ParameterizedTest
  @CsvSource({
      // dtype, b, h, hkv, nq, nk, d, dv, causal, padding, bias (none, full, 1H; -inf: some entries -inf)
      "F32, 2, 4, 2, 200, 333, 64, 64, false, false, none",
      "F32, 2, 4, 2, 200, 333, 64, 64, true, true, none",
      "F32, 2, 4, 1, 333, 200, 128, 128, true, false, none",
      "F32, 1, 4, 4, 257, 257, 128, 128, true, false, full",
      "F32, 2, 2, 1, 130, 77, 96, 32, false, true, 1H",
      "F32, 1, 2, 2, 100, 150, 256, 256, true, false, none",
      "F32, 2, 2, 2, 70, 150, 64, 64, true, true, full-inf",
      "F32, 1, 2, 1, 40, 50, 30, 17, false, false, none",
      "F64, 2, 4, 2, 200, 333, 64, 64, true, true, none",
      "F64, 1, 4, 4, 130, 257, 128, 128, false, false, full",
      "F64, 1, 2, 2, 60, 90, 256, 128, true, false, none",
  })
  void
  v1AndV2MatchTheCpuTwin(
      DType t, int b, int h, int hkv, int nq, int nk, int d, int dv, boolean causal, boolean padding, String bias) {
    boolean tf32 = Backend.allowTf32();
    Backend.setAllowTf32(false);
    try (Scope sc = Scope.open()) {
      long seed = 13L * nq + nk + d;
      Tensor q = Tensor.randn(new long[] {b, h, nq, d}, DType.F32, CPU, seed).to(t);
      Tensor k = Tensor.randn(new long[] {b, hkv, nk, d}, DType.F32, CPU, seed + 1).to(t);
      Tensor v = Tensor.randn(new long[] {b, hkv, nk, dv}, DType.F32, CPU, seed + 2).to(t);
      Tensor dout = Tensor.randn(new long[] {b, h, nq, dv}, DType.F32, CPU, seed + 3).to(t);
      int biasB = bias.startsWith("full") ? b : 1, biasH = h;
      Tensor bt = bias.equals("none")
          ? null
          : Tensor.randn(new long[] {biasB, biasH, nq, nk}, DType.F32, CPU, seed + 4).mul(0.5).to(t);
      if (bias.endsWith("-inf"))
        bt = Tensor.of(HalfAttentionRef.withInfiniteEntries(bt.toDoubleArray(), nq, nk), biasB, biasH, nq, nk).to(t);
      Tensor lt = null;
      if (padding) {
        long[] lengths = new long[b];
        for (int i = 0; i < b; i++) lengths[i] = Math.max(1, nk - 37 * i - 5);
        lt = Tensor.ofIndices(lengths, b);
        // padding keys hold NaN: no result may depend on them (the CPU twin's neither)
        k = nanPadding(k, lengths);
        v = nanPadding(v, lengths);
      }
      List<double[]> cpu = library(CPU, q, k, v, bt, lt, causal, dout);
      double tol = t == DType.F32 ? 2e-5 : 1e-11;
      String[] names = {"out", "lse", "dq", "dk", "dv", "dbias"};
      StringBuilder report = new StringBuilder(t + " " + b + "x" + h + "/" + hkv + " " + nq + "x" + nk + " d" + d
          + " dv" + dv + (causal ? " causal" : "") + (padding ? " padded" : "") + " bias " + bias + ":");
      List<String> failures = new ArrayList<>();
      List<List<double[]>> runs = new ArrayList<>();
      for (Version ver : new Version[] {Version.V1, Version.V2, Version.V2, Version.X3, Version.X3}) {
        SimtKernels.select(ver, ver);
        List<double[]> gpu = library(GPU, q, k, v, bt, lt, causal, dout);
        runs.add(gpu);
        report.append(" ").append(ver).append(":");
        for (int i = 0; i < cpu.size(); i++) {
          double e = err(gpu.get(i), cpu.get(i));
          report.append(String.format(" %s %.2e", names[i], e));
          if (!(e <= tol)) failures.add(ver + " " + names[i] + ": error vs the CPU twin " + e + " > " + tol);
        }
        report.append(";");
      }
      for (int i = 0; i < cpu.size(); i++) {
        if (!java.util.Arrays.equals(runs.get(1).get(i), runs.get(2).get(i)))
          failures.add("v2 " + names[i] + ": a second run gives other bits");
        if (!java.util.Arrays.equals(runs.get(3).get(i), runs.get(4).get(i)))
          failures.add("x3 " + names[i] + ": a second run gives other bits");
      }
      System.out.println(report);
      assertTrue(failures.isEmpty(), report + "\n" + String.join("\n", failures));
    } finally {
      Backend.setAllowTf32(tf32);
    }
  }
}
