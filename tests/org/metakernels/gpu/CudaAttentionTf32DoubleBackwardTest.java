package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.HalfAttentionRef;

/**
 * The F32 double backward and JVP of softmax attention on CUDA with TF32 allowed ({@link
 * Backend#setAllowTf32}): the tensor-core kernels of kernels/cuda/attention/tensor_core_dd.cu on
 * m16n8k8 TF32 MMAs where max(D, Dv) <= 128 (the forward and backward of the same graph run on TF32
 * too). Against a float64 reference (the library in F64 on the CPU from the same F32 inputs), the
 * CUDA error is at most twice the error of the naive TF32 composition (every op rounded to F32,
 * every product's inputs to TF32; CudaAttentionHalfDoubleBackwardTest#naive with a TF32 product
 * rounder) plus a tiny floor, two runs give the same bits, and the error is well above the exact F32
 * path's (so the TF32 kernels did run). With TF32 off, the exact F32 path: within F32 rounding of
 * the reference. The CPU ignores the switch (its results are bitwise the same either way). Skipped
 * without CUDA.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(RequiresCuda.class)
class CudaAttentionTf32DoubleBackwardTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;
  static final double FLOOR = 1e-6;
  static final HalfAttentionRef.Rounder F32 = x -> (double) (float) x;
  static final HalfAttentionRef.Rounder TF32 = x -> HalfAttentionRef.round(x, 10, -126, Float.MAX_VALUE);

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason());
  }

  static Tensor[] inputs(long[][] shapes, long seed) {
    Tensor[] in = new Tensor[shapes.length];
    for (int i = 0; i < shapes.length; i++) in[i] = Tensor.randn(shapes[i], DType.F32, CPU, seed + i).to(DType.F64);
    return in;
  }

  @ParameterizedTest
  @CsvSource({
      // b, h, hkv, nq, nk, d, causal, padding, bias (none or 1H)
      "2, 4, 2, 130, 77, 64, false, false, none",
      "1, 4, 4, 100, 200, 128, true, true, 1H",
      "2, 2, 1, 65, 191, 128, false, true, 1H",
      "1, 2, 2, 70, 70, 96, true, false, none",
      "1, 2, 1, 257, 257, 16, true, false, none",
  })
  void
  tf32DoubleBackwardIsWithinTwiceTheNaiveTf32Error(
      int b, int h, int hkv, int nq, int nk, int d, boolean causal, boolean padding, String bias) {
    boolean before = Backend.allowTf32();
    try (Scope sc = Scope.open()) {
      long seed = 29L * nq + nk + d;
      long[][] shapes = {{b, h, nq, d}, {b, hkv, nk, d}, {b, hkv, nk, d}, {b, h, nq, d}, {b, h, nq, d}, {b, hkv, nk, d},
          {b, hkv, nk, d}};
      Tensor[] in = inputs(shapes, seed); // q, k, v, dout, the cotangents of dq, dk, dv (F32 values in F64)
      Tensor bt = bias.equals("none")
          ? null
          : Tensor.randn(new long[] {1, h, nq, nk}, DType.F32, CPU, seed + 9).mul(0.5).to(DType.F64);
      long[] lengths = null;
      if (padding) {
        lengths = new long[b];
        for (int i = 0; i < b; i++) lengths[i] = Math.max(1, nk - 37 * i - 5);
      }
      Tensor lt = lengths == null ? null : Tensor.ofIndices(lengths, b);
      double[][] ref = CudaAttentionHalfDoubleBackwardTest.library(CPU, DType.F64, in, bt, lt, causal);
      double[][] cpuOff = CudaAttentionHalfDoubleBackwardTest.library(CPU, DType.F32, in, bt, lt, causal);
      Backend.setAllowTf32(true);
      double[][] tf = CudaAttentionHalfDoubleBackwardTest.library(GPU, DType.F32, in, bt, lt, causal);
      double[][] tf2 = CudaAttentionHalfDoubleBackwardTest.library(GPU, DType.F32, in, bt, lt, causal);
      double[][] cpuOn = CudaAttentionHalfDoubleBackwardTest.library(CPU, DType.F32, in, bt, lt, causal);
      Backend.setAllowTf32(false);
      double[][] exact = CudaAttentionHalfDoubleBackwardTest.library(GPU, DType.F32, in, bt, lt, causal);
      HalfAttentionRef.Shape s = new HalfAttentionRef.Shape(b, h, hkv, nq, nk, d, causal, lengths, 1, h);
      double[][] naive =
          CudaAttentionHalfDoubleBackwardTest.naive(s, in, bt == null ? null : bt.toDoubleArray(), F32, TF32);
      String[] names = {"q'", "k'", "v'", "dO'"};
      StringBuilder report = new StringBuilder("TF32 " + b + "x" + h + "/" + hkv + " " + nq + "x" + nk + " d" + d
          + (causal ? " causal" : "") + (padding ? " padded" : "") + " bias " + bias + ":");
      List<String> failures = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        double eNaive = HalfAttentionRef.err(naive[i], ref[i]), eTf = HalfAttentionRef.err(tf[i], ref[i]);
        double eExact = HalfAttentionRef.err(exact[i], ref[i]), eCpu = HalfAttentionRef.err(cpuOff[i], ref[i]);
        report.append(
            String.format(" %s tf32 %.2e naive-tf32 %.2e f32 %.2e cpu-f32 %.2e;", names[i], eTf, eNaive, eExact, eCpu));
        if (!(eTf <= 2 * eNaive + FLOOR)) failures.add(names[i] + ": TF32 error " + eTf + " > 2 x naive " + eNaive);
        if (!(eExact <= 1e-4)) failures.add(names[i] + ": F32 (TF32 off) error " + eExact);
        if (!(eTf > 10 * eExact))
          failures.add(names[i] + ": TF32 error " + eTf + " not above the F32 path's " + eExact);
        if (!Arrays.equals(tf[i], tf2[i])) failures.add(names[i] + ": two CUDA runs differ");
        if (!Arrays.equals(cpuOn[i], cpuOff[i])) failures.add(names[i] + ": the CPU result changed with TF32 allowed");
      }
      System.out.println(report);
      assertTrue(failures.isEmpty(), report + "\n" + String.join("\n", failures));
    } finally {
      Backend.setAllowTf32(before);
    }
  }

  /** The JVP the same way: output and lse tangents. */
  @ParameterizedTest
  @CsvSource({
      "2, 4, 2, 130, 77, 64, false, none",
      "1, 4, 4, 100, 200, 128, true, 1H",
      "2, 2, 1, 65, 191, 96, true, 1H",
  })
  void
  tf32JvpIsWithinTwiceTheNaiveTf32Error(int b, int h, int hkv, int nq, int nk, int d, boolean causal, String bias) {
    boolean before = Backend.allowTf32();
    try (Scope sc = Scope.open()) {
      long seed = 31L * nq + nk + d;
      long[][] shapes = {
          {b, h, nq, d}, {b, hkv, nk, d}, {b, hkv, nk, d}, {b, h, nq, d}, {b, hkv, nk, d}, {b, hkv, nk, d}};
      Tensor[] in = inputs(shapes, seed); // q, k, v, tq, tk, tv
      Tensor bt = bias.equals("none")
          ? null
          : Tensor.randn(new long[] {1, h, nq, nk}, DType.F32, CPU, seed + 9).mul(0.5).to(DType.F64);
      Tensor tb = bt == null ? null : Tensor.randn(new long[] {1, h, nq, nk}, DType.F32, CPU, seed + 10).to(DType.F64);
      double[][] ref = CudaAttentionHalfDoubleBackwardTest.jvp(CPU, DType.F64, in, bt, tb, causal);
      Backend.setAllowTf32(true);
      double[][] tf = CudaAttentionHalfDoubleBackwardTest.jvp(GPU, DType.F32, in, bt, tb, causal);
      double[][] tf2 = CudaAttentionHalfDoubleBackwardTest.jvp(GPU, DType.F32, in, bt, tb, causal);
      Backend.setAllowTf32(false);
      double[][] exact = CudaAttentionHalfDoubleBackwardTest.jvp(GPU, DType.F32, in, bt, tb, causal);
      HalfAttentionRef.Shape s = new HalfAttentionRef.Shape(b, h, hkv, nq, nk, d, causal, null, 1, h);
      double[][] naive = CudaAttentionHalfDoubleBackwardTest.naiveJvp(
          s, in, bt == null ? null : bt.toDoubleArray(), tb == null ? null : tb.toDoubleArray(), F32, TF32);
      String[] names = {"tO", "tlse"};
      StringBuilder report = new StringBuilder("jvp TF32 " + b + "x" + h + "/" + hkv + " " + nq + "x" + nk + " d" + d
          + (causal ? " causal" : "") + " bias " + bias + ":");
      List<String> failures = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        double eNaive = HalfAttentionRef.err(naive[i], ref[i]), eTf = HalfAttentionRef.err(tf[i], ref[i]);
        double eExact = HalfAttentionRef.err(exact[i], ref[i]);
        report.append(String.format(" %s tf32 %.2e naive-tf32 %.2e f32 %.2e;", names[i], eTf, eNaive, eExact));
        if (!(eTf <= 2 * eNaive + FLOOR)) failures.add(names[i] + ": TF32 error " + eTf + " > 2 x naive " + eNaive);
        if (!(eExact <= 1e-4)) failures.add(names[i] + ": F32 (TF32 off) error " + eExact);
        if (!(eTf > 10 * eExact))
          failures.add(names[i] + ": TF32 error " + eTf + " not above the F32 path's " + eExact);
        if (!Arrays.equals(tf[i], tf2[i])) failures.add(names[i] + ": two CUDA runs differ");
      }
      System.out.println(report);
      assertTrue(failures.isEmpty(), report + "\n" + String.join("\n", failures));
    } finally {
      Backend.setAllowTf32(before);
    }
  }
}
