package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Attention;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.HalfAttentionRef;
import org.metakernels.testing.HalfAttentionRef.Shape;

/**
 * BF16 / F16 softmax attention on CUDA (tensor cores) against a float64 reference computed on the
 * host from the same rounded inputs. The criterion (issue 3): the error of the CUDA kernel is at
 * most twice the error of a naive 16-bit composition, every stage rounded to the 16-bit type
 * (S = round(scale q kᵀ + bias, masked), P = round(softmax(S)), O = round(P v); backward
 * dP = round(dO vᵀ), dS = round(P ∘ (dP − rowsum(P ∘ dP))), dq = round(scale dS k),
 * dk = round(scale dSᵀ q), dv = round(Pᵀ dO)), plus a tiny floor. Errors are max|x − ref| / max|ref|.
 * The CPU twin is held to the same bound and compared with the CUDA kernel. Skipped without CUDA.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(RequiresCuda.class)
class CudaAttentionHalfTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;
  static final double FLOOR = 1e-6;

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason());  // (RequiresCuda skips first)
  }

  /** out, dq, dk, dv of the library on {@code dev}, as host arrays. */
  static double[][] library(Device dev, Tensor q, Tensor k, Tensor v, Tensor bias, Tensor lengths, boolean causal,
      Tensor dout, List<Tensor> lseOut) {
    Tensor qd = q.to(dev).detach().requiresGrad(true), kd = k.to(dev).detach().requiresGrad(true);
    Tensor vd = v.to(dev).detach().requiresGrad(true);
    Attention.Options o = Attention.Options.defaults().withCausal(causal);
    if (bias != null) o = o.withBias(bias.to(dev));
    if (lengths != null) o = o.withKeyLengths(lengths.to(dev));
    Attention.Output f = Attention.forward(qd, kd, vd, o);
    assertEquals(q.dtype(), f.out().dtype());
    assertEquals(DType.F32, f.lse().dtype());
    lseOut.add(f.lse().to(CPU));
    List<Tensor> g = Autograd.grad(List.of(f.out()), List.of(qd, kd, vd), List.of(dout.to(dev)), false);
    for (Tensor t : g) assertEquals(q.dtype(), t.dtype());
    return new double[][] {f.out().to(CPU).toDoubleArray(), g.get(0).to(CPU).toDoubleArray(),
        g.get(1).to(CPU).toDoubleArray(), g.get(2).to(CPU).toDoubleArray()};
  }

  @ParameterizedTest
  @CsvSource({
      // dtype, b, h, hkv, nq, nk, d, causal, padding, bias (none, full, 1H; -inf: some entries -inf)
      "BF16, 2, 4, 2, 200, 333, 64, false, false, none",
      "F16, 2, 4, 2, 200, 333, 64, true, true, none",
      "BF16, 2, 4, 1, 333, 200, 64, true, false, none",
      "F16, 1, 8, 8, 257, 257, 128, true, false, full",
      "BF16, 2, 2, 1, 130, 77, 128, false, true, 1H",
      "F16, 2, 2, 2, 65, 191, 128, false, true, none",
      "BF16, 2, 4, 4, 1000, 1000, 128, false, false, none",
      "F16, 2, 4, 4, 1000, 1000, 128, true, true, none",
      "BF16, 2, 4, 2, 1000, 1000, 128, true, false, none",
      "BF16, 2, 2, 1, 130, 200, 64, false, false, 1H-inf",
      "F16, 2, 2, 2, 70, 150, 128, true, true, full-inf",
  })
  void cudaIsWithinTwiceTheNaive16BitErrorOfTheF64Reference(DType t, int b, int h, int hkv, int nq, int nk, int d,
      boolean causal, boolean padding, String bias) {
    try (Scope sc = Scope.open()) {
      long seed = 7L * nq + nk + d;
      Tensor q = Tensor.randn(new long[] {b, h, nq, d}, DType.F32, CPU, seed).to(t);
      Tensor k = Tensor.randn(new long[] {b, hkv, nk, d}, DType.F32, CPU, seed + 1).to(t);
      Tensor v = Tensor.randn(new long[] {b, hkv, nk, d}, DType.F32, CPU, seed + 2).to(t);
      Tensor dout = Tensor.randn(new long[] {b, h, nq, d}, DType.F32, CPU, seed + 3).to(t);
      int biasB = bias.startsWith("full") ? b : 1, biasH = h;
      Tensor bt = bias.equals("none") ? null
          : Tensor.randn(new long[] {biasB, biasH, nq, nk}, DType.F32, CPU, seed + 4).mul(0.5).to(t);
      if (bias.endsWith("-inf"))
        bt = Tensor.of(HalfAttentionRef.withInfiniteEntries(bt.toDoubleArray(), nq, nk), biasB, biasH, nq, nk).to(t);
      long[] lengths = null;
      if (padding) {
        lengths = new long[b];
        for (int i = 0; i < b; i++) lengths[i] = Math.max(1, nk - 37 * i - 5);
      }
      Tensor lt = lengths == null ? null : Tensor.ofIndices(lengths, b);
      Shape s = new Shape(b, h, hkv, nq, nk, d, causal, lengths, biasB, biasH);
      double[] qa = q.toDoubleArray(), ka = k.toDoubleArray(), va = v.toDoubleArray(), da = dout.toDoubleArray();
      double[] ba = bt == null ? null : bt.toDoubleArray();
      double[][] ref = HalfAttentionRef.host(s, qa, ka, va, ba, da, x -> x);
      double[][] naive = HalfAttentionRef.host(s, qa, ka, va, ba, da, HalfAttentionRef.rounder(t));
      List<Tensor> lse = new ArrayList<>();
      double[][] gpu = library(GPU, q, k, v, bt, lt, causal, dout, lse);
      double[][] cpu = library(CPU, q, k, v, bt, lt, causal, dout, lse);
      String[] names = {"out", "dq", "dk", "dv"};
      StringBuilder report = new StringBuilder(t + " " + b + "x" + h + "/" + hkv + " " + nq + "x" + nk + " d" + d
          + (causal ? " causal" : "") + (padding ? " padded" : "") + " bias " + bias + ":");
      List<String> failures = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        double eNaive = HalfAttentionRef.err(naive[i], ref[i]), eGpu = HalfAttentionRef.err(gpu[i], ref[i]), eCpu = HalfAttentionRef.err(cpu[i], ref[i]);
        double twin = HalfAttentionRef.err(gpu[i], cpu[i]);
        report.append(String.format(" %s cuda %.2e cpu %.2e naive %.2e cuda-vs-cpu %.2e;", names[i], eGpu, eCpu, eNaive,
            twin));
        if (!(eGpu <= 2 * eNaive + FLOOR)) failures.add(names[i] + ": CUDA error " + eGpu + " > 2 x naive " + eNaive);
        if (!(eCpu <= 2 * eNaive + FLOOR)) failures.add(names[i] + ": CPU twin error " + eCpu + " > 2 x naive " + eNaive);
        if (!(twin <= 2 * eNaive + FLOOR)) failures.add(names[i] + ": CUDA vs CPU twin " + twin);
      }
      System.out.println(report);
      assertTrue(failures.isEmpty(), report + "\n" + String.join("\n", failures));
      // lse: F32 on both devices, the same up to F32 rounding (-inf on rows without keys)
      double[] lg = lse.get(0).toDoubleArray(), lc = lse.get(1).toDoubleArray();
      for (int i = 0; i < lg.length; i++) {
        if (Double.isInfinite(lc[i])) assertEquals(lc[i], lg[i], "lse " + i);
        else assertEquals(lc[i], lg[i], 1e-4 * (1 + Math.abs(lc[i])), "lse " + i);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"BF16", "F16"})
  void secondOrderThroughF32MatchesTheCpuTwin(DType t) {
    try (Scope sc = Scope.open()) {
      List<double[]> results = new ArrayList<>();
      for (Device dev : new Device[] {CPU, GPU}) {
        Tensor q = Tensor.randn(new long[] {2, 4, 70, 64}, DType.F32, CPU, 1).to(t).to(dev).requiresGrad(true);
        Tensor k = Tensor.randn(new long[] {2, 2, 90, 64}, DType.F32, CPU, 2).to(t).to(dev).requiresGrad(true);
        Tensor v = Tensor.randn(new long[] {2, 2, 90, 64}, DType.F32, CPU, 3).to(t).to(dev).requiresGrad(true);
        Tensor out = Attention.softmax(q, k, v, Attention.Options.causal());
        List<Tensor> g = Autograd.grad(out.to(DType.F32).square().sum(), List.of(q, k, v), true);
        Tensor probe = g.get(0).to(DType.F32).square().sum().add(g.get(1).to(DType.F32).sum());
        List<Tensor> hv = Autograd.grad(probe, List.of(q, k, v), false);
        for (Tensor x : hv) {
          assertEquals(t, x.dtype());
          results.add(x.to(CPU).toDoubleArray());
        }
      }
      double tol = t == DType.BF16 ? 5e-2 : 1e-2;
      for (int i = 0; i < 3; i++) {
        double e = HalfAttentionRef.err(results.get(3 + i), results.get(i));
        assertTrue(e <= tol, "second-order gradient " + i + ": CUDA vs CPU " + e);
      }
    }
  }

  /**
   * F32 with TF32 allowed ({@link Backend#setAllowTf32}): the forward and backward run on TF32
   * tensor cores where their tiles fit; held to twice the error of a naive TF32 composition (inputs
   * and every stage rounded to 10 mantissa bits), and to the F32 kernels without TF32.
   */
  @ParameterizedTest
  @CsvSource({
      "2, 4, 2, 200, 333, 64, false, false",
      "2, 4, 4, 333, 200, 64, true, true",
      "1, 4, 2, 257, 300, 128, true, false",
      "2, 2, 2, 1000, 1000, 128, false, true",
  })
  void tf32IsWithinTwiceTheNaiveTf32ErrorOfTheF64Reference(int b, int h, int hkv, int nq, int nk, int d, boolean causal,
      boolean padding) {
    boolean before = Backend.allowTf32();
    try (Scope sc = Scope.open()) {
      long seed = 11L * nq + nk + d;
      Tensor q = Tensor.randn(new long[] {b, h, nq, d}, DType.F32, CPU, seed);
      Tensor k = Tensor.randn(new long[] {b, hkv, nk, d}, DType.F32, CPU, seed + 1);
      Tensor v = Tensor.randn(new long[] {b, hkv, nk, d}, DType.F32, CPU, seed + 2);
      Tensor dout = Tensor.randn(new long[] {b, h, nq, d}, DType.F32, CPU, seed + 3);
      long[] lengths = null;
      if (padding) {
        lengths = new long[b];
        for (int i = 0; i < b; i++) lengths[i] = Math.max(1, nk - 37 * i - 5);
      }
      Tensor lt = lengths == null ? null : Tensor.ofIndices(lengths, b);
      Shape s = new Shape(b, h, hkv, nq, nk, d, causal, lengths, 1, h);
      HalfAttentionRef.Rounder tf32 = x -> HalfAttentionRef.round(x, 10, -126, Float.MAX_VALUE);
      double[] qa = q.toDoubleArray(), ka = k.toDoubleArray(), va = v.toDoubleArray(), da = dout.toDoubleArray();
      double[][] ref = HalfAttentionRef.host(s, qa, ka, va, null, da, x -> x);
      double[][] naive = HalfAttentionRef.host(s, rounded(qa, tf32), rounded(ka, tf32), rounded(va, tf32), null,
          rounded(da, tf32), tf32);
      List<Tensor> lse = new ArrayList<>();
      Backend.setAllowTf32(true);
      double[][] gpu = library(GPU, q, k, v, null, lt, causal, dout, lse);
      Backend.setAllowTf32(false);
      double[][] f32 = library(GPU, q, k, v, null, lt, causal, dout, lse);
      String[] names = {"out", "dq", "dk", "dv"};
      StringBuilder report = new StringBuilder("TF32 " + b + "x" + h + "/" + hkv + " " + nq + "x" + nk + " d" + d
          + (causal ? " causal" : "") + (padding ? " padded" : "") + ":");
      List<String> failures = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        double eNaive = HalfAttentionRef.err(naive[i], ref[i]), eGpu = HalfAttentionRef.err(gpu[i], ref[i]);
        double eF32 = HalfAttentionRef.err(f32[i], ref[i]);
        report.append(String.format(" %s tf32 %.2e naive-tf32 %.2e f32 %.2e;", names[i], eGpu, eNaive, eF32));
        if (!(eGpu <= 2 * eNaive + FLOOR)) failures.add(names[i] + ": TF32 error " + eGpu + " > 2 x naive " + eNaive);
        if (!(eF32 <= 1e-5)) failures.add(names[i] + ": F32 (no TF32) error " + eF32);
      }
      System.out.println(report);
      assertTrue(failures.isEmpty(), report + "\n" + String.join("\n", failures));
    } finally {
      Backend.setAllowTf32(before);
    }
  }

  static double[] rounded(double[] x, HalfAttentionRef.Rounder r) {
    double[] y = new double[x.length];
    for (int i = 0; i < x.length; i++) y[i] = r.r(x[i]);
    return y;
  }

  /**
   * Every 16-bit tensor-core variant chosen from code ({@link Attention.TensorCoreKernels}, issue 10):
   * the forward v1, v2, v2k32 and sm90 and the backward v1, v2 and sm90, each once per dtype and shape, held to the
   * rule of {@link #cudaIsWithinTwiceTheNaive16BitErrorOfTheF64Reference} (twice the naive 16-bit
   * error, the CPU twin beside). The choice is reset afterwards.
   */
  @ParameterizedTest
  @CsvSource({
      // forward, backward, dtype, b, h, hkv, nq, nk, d, causal, padding, bias
      "V1, V1, BF16, 2, 4, 2, 200, 333, 64, true, true, none",
      "V2, V2, BF16, 2, 4, 2, 200, 333, 64, true, true, none",
      "V2K32, V1, BF16, 2, 4, 2, 200, 333, 64, true, true, none",
      "V1, V2, F16, 2, 2, 1, 130, 77, 128, false, true, 1H",
      "V2, V1, F16, 2, 2, 1, 130, 77, 128, false, true, 1H",
      "V2K32, V2, F16, 2, 2, 1, 130, 77, 128, false, true, 1H",
      "V2, V2, F16, 1, 8, 8, 257, 257, 128, true, false, full-inf",
      "V2K32, V2, BF16, 2, 4, 4, 300, 300, 64, false, false, 1H-inf",
      // the Hopper forward (wgmma + TMA) on a 9.0 device, v2 elsewhere
      "SM90, V2, BF16, 2, 4, 2, 200, 333, 64, true, true, none",
      "SM90, V1, F16, 2, 2, 1, 130, 77, 128, false, true, 1H",
      "SM90, V2, BF16, 1, 8, 8, 257, 257, 128, true, false, full-inf",
      "SM90, V2, F16, 2, 4, 4, 300, 300, 64, false, false, 1H-inf",
      // the Hopper backward (wgmma + TMA, two passes) on a 9.0 device, v2 elsewhere; with either forward
      "SM90, SM90, BF16, 2, 4, 2, 200, 333, 64, true, true, none",
      "V1, SM90, F16, 2, 2, 1, 130, 77, 128, false, true, 1H",
      "SM90, SM90, F16, 1, 8, 8, 257, 257, 128, true, false, full-inf",
      "V2, SM90, BF16, 2, 4, 4, 300, 300, 64, false, false, 1H-inf",
  })
  void everyChosenVariantIsWithinTwiceTheNaive16BitError(Attention.TensorCoreKernels.Forward forward,
      Attention.TensorCoreKernels.Backward backward, DType t, int b, int h, int hkv, int nq, int nk, int d,
      boolean causal, boolean padding, String bias) {
    try {
      Attention.TensorCoreKernels.select(forward, backward, Attention.TensorCoreKernels.Second.DEFAULT);
      assertEquals(forward, Attention.TensorCoreKernels.current().forward());
      System.out.println("tensor-core kernels forward " + forward + ", backward " + backward + ":");
      cudaIsWithinTwiceTheNaive16BitErrorOfTheF64Reference(t, b, h, hkv, nq, nk, d, causal, padding, bias);
    } finally {
      Attention.TensorCoreKernels.reset();
    }
  }

  /**
   * The second order with each 16-bit path chosen from code: tensor cores (the m16n8k16 passes, and
   * SM90: the Hopper passes on a 9.0 device, D = 64 here, the m16n8k16 ones elsewhere) and F32
   * copies.
   */
  @ParameterizedTest
  @CsvSource({"BF16, TENSOR_CORES", "F16, TENSOR_CORES", "BF16, F32", "F16, F32", "BF16, SM90", "F16, SM90"})
  void secondOrderOnEitherChosenPathMatchesTheCpuTwin(DType t, Attention.TensorCoreKernels.Second second) {
    try {
      Attention.TensorCoreKernels.select(Attention.TensorCoreKernels.Forward.V2,
          Attention.TensorCoreKernels.Backward.V2, second);
      secondOrderThroughF32MatchesTheCpuTwin(t);
    } finally {
      Attention.TensorCoreKernels.reset();
    }
  }
}
