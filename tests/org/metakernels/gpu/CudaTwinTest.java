package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.ops.Attention;
import org.metakernels.ops.Indexing;
import org.metakernels.ops.LinearAttention;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.ops.LinearAttention.Mask;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.CudaRuntime;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.HalfAttentionRef;
import org.metakernels.testing.Ref;

/**
 * Every CUDA kernel against its CPU twin (the oracle). Runs only where a CUDA device exists;
 * elsewhere every test is skipped.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(RequiresCuda.class)
class CudaTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason());  // (RequiresCuda skips first)
    System.out.println("CUDA: " + Backend.get().cudaReason());
  }

  static Tensor rnd(DType t, long seed, long... shape) {
    return Tensor.randn(shape, t, CPU, seed);
  }

  static void same(Tensor gpu, Tensor cpu, double tol) {
    assertEquals(Device.CUDA, gpu.device());
    assertArrayEquals(cpu.shape(), gpu.shape());
    Ref.assertClose(gpu.to(CPU).toDoubleArray(), cpu.toDoubleArray(), tol, tol, "cuda vs cpu");
  }

  @Test
  void transfersRoundTrip() {
    try (Scope s = Scope.open()) {
      Tensor x = rnd(DType.F32, 1, 3, 1000);
      assertArrayEquals(x.toFloatArray(), x.to(GPU).to(CPU).toFloatArray());
      Tensor y = rnd(DType.F64, 2, 7, 5).transpose(0, 1);
      assertArrayEquals(y.contiguous().toDoubleArray(), y.to(GPU).toDoubleArray());
    }
  }

  @Test
  void transposedOperandsMatchTheCpuBitForBit() {
    // the tiled kernels (kernels/cuda/dense.cu copy_transpose_kernel, elementwise_tiled_kernel):
    // ragged 32 x 32 tiles, batched, permuted; copies of every width, exact elementwise ops
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64, DType.BF16}) {
        Tensor x = rnd(DType.F32, 11, 3, 70, 100).to(t);
        Tensor g = x.to(GPU);
        for (int[] p : new int[][] {{0, 2, 1}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}}) {
          String at = t + " permute" + java.util.Arrays.toString(p);
          Tensor xp = x.permute(p), gp = g.permute(p);
          assertArrayEquals(xp.contiguous().toDoubleArray(), gp.contiguous().to(CPU).toDoubleArray(), 0.0, at);
          if (t == DType.BF16) continue; // the elementwise kernels take F32 and F64
          Tensor z = rnd(t, 12, xp.shape());
          Tensor gz = z.to(GPU);
          assertArrayEquals(xp.mul(z).toDoubleArray(), gp.mul(gz).to(CPU).toDoubleArray(), 0.0, at + " · z");
          assertArrayEquals(z.sub(xp).toDoubleArray(), gz.sub(gp).to(CPU).toDoubleArray(), 0.0, "z - " + at);
          assertArrayEquals(xp.neg().toDoubleArray(), gp.neg().to(CPU).toDoubleArray(), 0.0, "-" + at);
          Tensor c = xp.gt(0.0).to(t), gc = gp.gt(0.0).to(t);
          assertArrayEquals(Tensor.where(c, z, xp).toDoubleArray(), Tensor.where(gc, gz, gp).to(CPU).toDoubleArray(), 0.0,
              "where over " + at);
        }
        assertArrayEquals(x.select(0, 1).mT().contiguous().toDoubleArray(),
            g.select(0, 1).mT().contiguous().to(CPU).toDoubleArray(), 0.0, t + " mT");
      }
    }
  }

  @Test
  void randomIsTheSameOnBothDevices() {
    try (Scope s = Scope.open()) {
      // mk/random.h: every operation rounded as written on both devices, so the same bits (F64 too)
      for (DType t : new DType[] {DType.F32, DType.F64}) {
        for (long n : new long[] {4097, (1 << 20) + 3}) {
          same(Tensor.randn(new long[] {n}, t, GPU, 5), Tensor.randn(new long[] {n}, t, CPU, 5), 0);
          same(Tensor.uniform(new long[] {n}, -2, 3, t, GPU, 6), Tensor.uniform(new long[] {n}, -2, 3, t, CPU, 6), 0);
        }
        // a range of a few steps of the type's grid: the clamp below the bound on both devices
        double hi = t == DType.F32 ? 1 + 0x1p-20 : 1 + 0x1p-49;
        same(Tensor.uniform(new long[] {10007}, 1, hi, t, GPU, 7), Tensor.uniform(new long[] {10007}, 1, hi, t, CPU, 7), 0);
      }
      for (DType t : new DType[] {DType.BF16, DType.F16})
        same(Tensor.rand(new long[] {100000}, t, GPU, 8), Tensor.rand(new long[] {100000}, t, CPU, 8), 0);
    }
  }

  @Test
  void castsIncludingHalfTypes() {
    try (Scope s = Scope.open()) {
      Tensor x = rnd(DType.F32, 3, 5000).mul(100.0);
      for (DType t : new DType[] {DType.BF16, DType.F16, DType.F64}) {
        Tensor cpu = x.castTo(t).castTo(DType.F32);
        Tensor gpu = x.to(GPU).castTo(t).castTo(DType.F32);
        assertArrayEquals(cpu.toFloatArray(), gpu.to(CPU).toFloatArray(), "round trip through " + t);
      }
    }
  }

  /** Every unary code of metakernels.h (a new op is covered without a change here), but the two
   * whose p = 1.5 needs its own domain: pow (negative bases) and add (covered by the binary ops). */
  static IntStream unaryCodes() {
    return IntStream.range(0, Codes.UNARY_COUNT).filter(op -> op != Codes.UNARY_POW_SCALAR && op != Codes.UNARY_ADD_SCALAR);
  }

  @ParameterizedTest
  @MethodSource("unaryCodes")
  void unaryOps(int op) {
    try (Scope s = Scope.open()) {
      Tensor x = rnd(DType.F32, 10 + op, 3, 333);
      if (op == Codes.UNARY_LOG || op == Codes.UNARY_SQRT || op == Codes.UNARY_RSQRT || op == Codes.UNARY_LOG1P)
        x = x.abs().add(0.1);
      Tensor xt = x.transpose(0, 1);  // strided input
      same(unary(xt.to(GPU), op), unary(xt, op), 2e-5);
    }
  }

  static Tensor unary(Tensor x, int op) {
    Tensor y = Tensor.empty(x.shape(), x.dtype(), x.device());
    long[] shape = x.shape();
    Native.check(MkNative.mk_dense_unary_forward(x.device().code, x.dtype().code, op, shape.length, shape,
        x.address("t"), x.strides(), y.address("t"), 1.5, 0L), "unary " + op);
    return y;
  }

  @Test
  void binaryOpsWithBroadcasting() {
    try (Scope s = Scope.open()) {
      Tensor a = rnd(DType.F32, 1, 4, 1, 37), b = rnd(DType.F32, 2, 5, 1).abs().add(0.5);
      Tensor ag = a.to(GPU), bg = b.to(GPU);
      same(ag.add(bg), a.add(b), 1e-6);
      same(ag.sub(bg), a.sub(b), 1e-6);
      same(ag.mul(bg), a.mul(b), 1e-6);
      same(ag.div(bg), a.div(b), 1e-6);
      same(ag.maximum(bg), a.maximum(b), 0);
      same(ag.lt(bg), a.lt(b), 0);
      same(bg.pow(ag), b.pow(a), 1e-5);
      same(Tensor.where(ag.gt(bg), ag, bg), Tensor.where(a.gt(b), a, b), 0);
    }
  }

  @Test
  void reductionsAndSoftmax() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64}) {
        Tensor x = rnd(t, 7, 6, 517, 3);
        Tensor g = x.to(GPU);
        double tol = t == DType.F32 ? 1e-5 : 1e-12;
        same(g.sum(), x.sum(), tol);
        same(g.sum(1, false), x.sum(1, false), tol);
        same(g.sum(new int[] {0, 2}, true), x.sum(new int[] {0, 2}, true), tol);
        same(g.max(1, false).values(), x.max(1, false).values(), 0);
        assertArrayEquals(x.max(1, false).indices().toLongArray(), g.max(1, false).indices().toLongArray());
        assertArrayEquals(x.min(2, false).indices().toLongArray(), g.min(2, false).indices().toLongArray());
        same(g.softmax(1), x.softmax(1), tol);
        same(g.logSoftmax(-1), x.logSoftmax(-1), tol);
        same(g.logsumexp(1, false), x.logsumexp(1, false), tol);
      }
    }
  }

  @Test
  void indexing() {
    try (Scope s = Scope.open()) {
      Tensor x = rnd(DType.F32, 9, 5, 40, 6);
      Tensor idx = Tensor.ofIndices(new long[] {3, 0, 39, 3, 3, 17}, 6);
      same(x.to(GPU).indexSelect(1, idx.to(GPU)), x.indexSelect(1, idx), 0);
      Tensor src = rnd(DType.F32, 10, 5, 6, 6);
      same(Indexing.indexAdd(x.to(GPU), 1, idx.to(GPU), src.to(GPU)), Indexing.indexAdd(x, 1, idx, src), 1e-6);
      long[] gi = new long[5 * 3 * 6];
      for (int i = 0; i < gi.length; i++) gi[i] = (i * 7) % 40;
      Tensor gidx = Tensor.ofIndices(gi, 5, 3, 6);
      same(x.to(GPU).gather(1, gidx.to(GPU)), x.gather(1, gidx), 0);
      Tensor gsrc = rnd(DType.F32, 11, 5, 3, 6);
      same(Indexing.scatterAdd(x.to(GPU), 1, gidx.to(GPU), gsrc.to(GPU)), Indexing.scatterAdd(x, 1, gidx, gsrc), 1e-6);
      // out-of-range indices are rejected before the kernel runs
      Tensor bad = Tensor.ofIndices(new long[] {0, 40}, 2).to(GPU);
      assertThrows(IllegalArgumentException.class, () -> x.to(GPU).indexSelect(1, bad));
    }
  }

  @Test
  void matmulShapesAndLayouts() {
    try (Scope s = Scope.open()) {
      System.out.println("cuBLAS: " + CudaRuntime.get().hasCublas());
      for (DType t : new DType[] {DType.F32, DType.F64}) {
        double tol = t == DType.F32 ? 1e-4 : 1e-11;
        Tensor a = rnd(t, 1, 3, 70, 33), b = rnd(t, 2, 3, 33, 45), w = rnd(t, 3, 45, 33);
        same(a.to(GPU).matmul(b.to(GPU)), a.matmul(b), tol);
        same(a.to(GPU).matmul(w.to(GPU).mT()), a.matmul(w.mT()), tol);            // folded batch, transposed B
        same(a.to(GPU).mT().matmul(a.to(GPU)), a.mT().matmul(a), tol);           // transposed A
        Tensor v = rnd(t, 4, 33);
        same(a.to(GPU).matmul(v.to(GPU)), a.matmul(v), tol);                       // matrix-vector
        Tensor big = rnd(t, 5, 257, 129), big2 = rnd(t, 6, 129, 255);
        same(big.to(GPU).matmul(big2.to(GPU)), big.matmul(big2), tol * 10);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"NONE", "CAUSAL", "ANTI_CAUSAL"})
  void linearAttentionProduct(String maskName) {
    Mask mask = Mask.valueOf(maskName);
    try (Scope s = Scope.open()) {
      for (long[] dims : new long[][] {{2, 3, 130, 130, 16, 8}, {1, 4, 1000, 1000, 64, 64}, {2, 1, 77, 77, 128, 32}}) {
        long nk = mask == Mask.NONE ? dims[3] / 2 + 1 : dims[3];
        Tensor q = rnd(DType.F32, 1, dims[0], dims[1], dims[2], dims[4]);
        Tensor k = rnd(DType.F32, 2, dims[0], dims[1], nk, dims[4]);
        Tensor v = rnd(DType.F32, 3, dims[0], dims[1], nk, dims[5]);
        Tensor cpu = LinearAttention.product(q, k, v, mask);
        Tensor gpu = LinearAttention.product(q.to(GPU), k.to(GPU), v.to(GPU), mask);
        double scale = Ref.maxAbs(cpu.toDoubleArray());
        Ref.assertClose(gpu.to(CPU).toDoubleArray(), cpu.toDoubleArray(), 1e-5 * scale, 0, "la " + mask);
      }
    }
  }

  /**
   * Strided operands on CUDA (mk_linear_attention_product_strided_forward: native packs them into device
   * scratch, runs the contiguous kernel, and writes out through its strides): head views of [B, N,
   * H, D] projections, row windows and k, v shared by the heads give the bits of the contiguous
   * copies on the GPU, the output is laid out as q there too, and the CPU twin agrees.
   */
  @ParameterizedTest
  @ValueSource(strings = {"NONE", "CAUSAL"})
  void linearAttentionStridedOperands(String maskName) {
    Mask mask = Mask.valueOf(maskName);
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.BF16}) {
        Tensor q = rnd(DType.F32, 4, 2, 130, 3, 16).to(t).to(GPU).permute(0, 2, 1, 3);
        Tensor k = rnd(DType.F32, 5, 2, 130, 3, 16).to(t).to(GPU).permute(0, 2, 1, 3);
        Tensor v = rnd(DType.F32, 6, 2, 140, 3, 8).to(t).to(GPU).narrow(1, 5, 130).permute(0, 2, 1, 3);
        Tensor out = LinearAttention.product(q, k, v, mask);
        assertTrue(out.permute(0, 2, 1, 3).isContiguous(), "out laid out as q: " + out.describe());
        Tensor packed = LinearAttention.product(q.contiguous(), k.contiguous(), v.contiguous(), mask);
        assertArrayEquals(packed.to(CPU).to(DType.F64).toDoubleArray(), out.to(CPU).to(DType.F64).toDoubleArray(),
            "la strided " + t + " " + mask);
        Tensor cpu = LinearAttention.product(q.to(CPU), k.to(CPU), v.to(CPU), mask).to(DType.F64);
        double scale = Ref.maxAbs(cpu.toDoubleArray());
        Ref.assertClose(out.to(CPU).to(DType.F64).toDoubleArray(), cpu.toDoubleArray(),
            (t == DType.F32 ? 1e-5 : 2e-2) * scale, 0, "la strided vs CPU " + t + " " + mask);
        Tensor ks = rnd(DType.F32, 7, 2, 1, 130, 16).to(t).to(GPU).expand(2, 3, 130, 16);
        assertArrayEquals(LinearAttention.product(q.contiguous(), ks.contiguous(), v.contiguous(), mask).to(CPU)
            .to(DType.F64).toDoubleArray(), LinearAttention.product(q, ks, v, mask).to(CPU).to(DType.F64).toDoubleArray(),
            "la shared k " + t + " " + mask);
      }
    }
  }

  @Test
  void linearAttentionMomentumAndGradients() {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(DType.F32, 1, 2, 2, 90, 16), k = rnd(DType.F32, 2, 2, 2, 90, 16), v = rnd(DType.F32, 3, 2, 2, 90, 8);
      var o = LinearAttention.Options.causal(FeatureMap.ELU_PLUS_ONE)
          .withNormalization(LinearAttention.Normalization.NORMALIZER).withMomentum(0.9);
      List<Tensor> cpuIn = List.of(q.requiresGrad(true), k.requiresGrad(true), v.requiresGrad(true));
      Tensor qg = q.detach().to(GPU).requiresGrad(true), kg = k.detach().to(GPU).requiresGrad(true),
          vg = v.detach().to(GPU).requiresGrad(true);
      Tensor lc = LinearAttention.apply(cpuIn.get(0), cpuIn.get(1), cpuIn.get(2), o).square().sum();
      Tensor lg = LinearAttention.apply(qg, kg, vg, o).square().sum();
      same(lg, lc, 1e-4);
      List<Tensor> gc = Autograd.grad(lc, cpuIn, false), gg = Autograd.grad(lg, List.of(qg, kg, vg), false);
      for (int i = 0; i < 3; i++) same(gg.get(i), gc.get(i), 1e-3);
    }
  }

  @Test
  void mlpGradientsAndHessianVectorProduct() {
    try (Scope s = Scope.open(); MLP cpuNet = new MLP(new long[] {5, 16, 1}, Activation.TANH, DType.F64, CPU, 3);
        MLP gpuNet = new MLP(new long[] {5, 16, 1}, Activation.TANH, DType.F64, GPU, 3)) {
      Tensor x = rnd(DType.F64, 4, 64, 5);
      Tensor lc = cpuNet.forward(x).square().mean();
      Tensor lg = gpuNet.forward(x.to(GPU)).square().mean();
      same(lg, lc, 1e-12);
      List<Tensor> gc = Autograd.grad(lc, cpuNet.parameters(), true);
      List<Tensor> gg = Autograd.grad(lg, gpuNet.parameters(), true);
      Tensor hc = Autograd.grad(gc.get(0).sum(), cpuNet.parameters(), false).get(1);
      Tensor hg = Autograd.grad(gg.get(0).sum(), gpuNet.parameters(), false).get(1);
      same(hg, hc, 1e-10);
    }
  }

  @Test
  void memoryIsReturnedToTheCache() {
    long before = CudaRuntime.get().allocator().liveBytes();
    for (int i = 0; i < 200; i++)
      try (Scope s = Scope.open()) {
        Tensor.randn(new long[] {1 << 16}, DType.F32, GPU, i).exp().sum();
      }
    assertEquals(before, CudaRuntime.get().allocator().liveBytes());
  }

  // ---- softmax attention --------------------------------------------------------------------------

  /** |gpu − cpu| ≤ tol·(max |cpu| over finite values) + tol·|cpu| elementwise; equal infinities pass. */
  static void closeTo(Tensor gpu, Tensor cpu, double tol, String what) {
    assertEquals(Device.CUDA, gpu.device(), what);
    assertArrayEquals(cpu.shape(), gpu.shape(), what);
    double[] e = cpu.detach().toDoubleArray(), a = gpu.detach().to(CPU).toDoubleArray();
    double scale = 0;
    for (double x : e) if (Double.isFinite(x)) scale = Math.max(scale, Math.abs(x));
    Ref.assertClose(a, e, tol * Math.max(scale, 1e-300), tol, what);
  }

  /** Fresh leaves requiring grad on {@code device}, one per non-null tensor. */
  static List<Tensor> leaves(Device device, Tensor... xs) {
    List<Tensor> out = new ArrayList<>();
    for (Tensor x : xs)
      if (x != null) out.add(x.to(device).detach().requiresGrad(true));
    return out;
  }

  static Tensor attention(List<Tensor> in, Attention.Options o) {
    return Attention.softmax(in.get(0), in.get(1), in.get(2), in.size() > 3 ? o.withBias(in.get(3)) : o);
  }

  static Tensor onGpu(Tensor t) {
    return t == null ? null : t.to(GPU);
  }

  /**
   * The CUDA attention kernels against the CPU twin on the same inputs, in F32 and F64: forward
   * (output and row log-sum-exp), backward, the fused double backward (through Autograd with
   * createGraph, once with all cotangents and once with only dq's), and the JVP. Covers causal
   * masks (bottom-right aligned), key padding (including a batch without keys), the bias
   * broadcast patterns, grouped-query heads, Nq ≠ Nk, D up to 256 and lengths that are not
   * multiples of the tile sizes. Tolerances are relative to the scale of each output.
   */
  @ParameterizedTest
  @CsvSource({
      // b, h, hkv, nq, nk, d, dv, causal, bias, lengths
      "1, 1, 1, 5, 5, 16, 16, false, none, none",
      "2, 4, 2, 70, 33, 16, 8, false, none, some",
      "2, 2, 2, 33, 70, 64, 64, true, BH, some",
      "1, 2, 1, 100, 100, 128, 128, true, 11, none",
      "2, 2, 1, 65, 97, 256, 64, true, 1H, some",
      "1, 2, 2, 37, 29, 256, 256, false, B1, none",
      "3, 3, 3, 1, 129, 16, 16, false, BH, zero",
      "2, 1, 1, 130, 70, 16, 16, true, none, zero",
      "1, 4, 1, 19, 23, 5, 3, true, BH, some",
      // -inf bias entries (HalfAttentionRef.withInfiniteEntries): rows with no key, rows whose
      // first key tiles are wholly masked, scattered keys
      "2, 2, 1, 70, 150, 16, 16, false, BH-inf, none",
      "2, 2, 2, 40, 97, 32, 24, true, 1H-inf, some",
      // top-left causal (tl): keys no row sees (Nq < Nk), key lengths, Nq > Nk
      "2, 2, 1, 33, 150, 64, 64, tl, BH, some",
      "1, 2, 2, 130, 70, 128, 128, tl, none, none",
  })
  void softmaxAttentionMatchesTheCpuTwin(int b, int h, int hkv, int nq, int nk, int d, int dv, String causal,
      String biasKind, String lengthsKind) {
    for (DType t : new DType[] {DType.F32, DType.F64}) {
      try (Scope s = Scope.open()) {
        String tag = t + " " + b + "x" + h + "/" + hkv + " " + nq + "x" + nk + " d" + d + "/" + dv
            + (causal.equals("false") ? "" : causal.equals("tl") ? " causal-tl" : " causal") + " bias " + biasKind + " lengths " + lengthsKind + ": ";
        double tol = t == DType.F32 ? 2e-4 : 1e-10;
        long seed = 31L * nq + nk + d;
        Tensor q = rnd(t, seed, b, h, nq, d), k = rnd(t, seed + 1, b, hkv, nk, d), v = rnd(t, seed + 2, b, hkv, nk, dv);
        Tensor bias = null;
        if (!biasKind.equals("none"))
          bias = rnd(t, seed + 3, biasKind.charAt(0) == 'B' ? b : 1, biasKind.charAt(1) == 'H' ? h : 1, nq, nk).mul(0.5);
        if (biasKind.endsWith("-inf"))
          bias = Tensor.of(HalfAttentionRef.withInfiniteEntries(bias.toDoubleArray(), nq, nk), bias.shape()).to(t);
        Attention.Options oc = Attention.Options.defaults().withCausal(!causal.equals("false"))
            .withAlignment(causal.equals("tl") ? Attention.CausalAlignment.TOP_LEFT : null), og = oc;
        if (!lengthsKind.equals("none")) {
          long[] len = new long[b];
          for (int i = 0; i < b; i++)
            len[i] = lengthsKind.equals("zero") && i == 1 ? 0 : Math.max(1, nk - 7 * i - 3);
          Tensor lc = Tensor.ofIndices(len, b);
          oc = oc.withKeyLengths(lc);
          og = og.withKeyLengths(lc.to(GPU));
        }

        // forward, with the row log-sum-exp
        Attention.Output fc = Attention.forward(q, k, v, oc.withBias(bias));
        Attention.Output fg = Attention.forward(q.to(GPU), k.to(GPU), v.to(GPU), og.withBias(onGpu(bias)));
        closeTo(fg.out(), fc.out(), tol, tag + "out");
        closeTo(fg.lse(), fc.lse(), tol, tag + "lse");

        // backward (createGraph: its own backward is the fused double backward)
        List<Tensor> ic = leaves(CPU, q, k, v, bias), ig = leaves(GPU, q, k, v, bias);
        Tensor r = rnd(t, seed + 4, b, h, nq, dv);
        List<Tensor> gc = Autograd.grad(attention(ic, oc).mul(r).sum(), ic, true);
        List<Tensor> gg = Autograd.grad(attention(ig, og).mul(r.to(GPU)).sum(), ig, true);
        String[] names = {"q", "k", "v", "bias"};
        for (int i = 0; i < ic.size(); i++) closeTo(gg.get(i), gc.get(i), tol, tag + "d" + names[i]);
        // deterministic: no atomics, the same bits on a second run
        List<Tensor> again = Autograd.grad(attention(ig, og).mul(r.to(GPU)).sum(), ig, false);
        for (int i = 0; i < ig.size(); i++)
          assertArrayEquals(gg.get(i).detach().to(CPU).toDoubleArray(), again.get(i).to(CPU).toDoubleArray(),
              tag + "d" + names[i] + " differs between two runs");

        // double backward: gradient of Σ_i <g_i, u_i> with respect to every input
        Tensor pc = null, pg = null;
        List<Tensor> us = new ArrayList<>();
        for (int i = 0; i < ic.size(); i++) {
          Tensor u = rnd(t, seed + 10 + i, ic.get(i).shape());
          us.add(u);
          pc = pc == null ? gc.get(i).mul(u).sum() : pc.add(gc.get(i).mul(u).sum());
          pg = pg == null ? gg.get(i).mul(u.to(GPU)).sum() : pg.add(gg.get(i).mul(u.to(GPU)).sum());
        }
        List<Tensor> hc = Autograd.grad(pc, ic, false), hg = Autograd.grad(pg, ig, false);
        for (int i = 0; i < ic.size(); i++) closeTo(hg.get(i), hc.get(i), tol, tag + "hvp " + names[i]);
        // only dq probed: the cotangents of dk, dv and dbias are absent (null in the kernel)
        Tensor hqc = Autograd.grad(gc.get(0).mul(us.get(0)).sum(), List.of(ic.get(0)), false).get(0);
        Tensor hqg = Autograd.grad(gg.get(0).mul(us.get(0).to(GPU)).sum(), List.of(ig.get(0)), false).get(0);
        closeTo(hqg, hqc, tol, tag + "hvp q only");

        // JVP: all tangents, then without the key tangent
        Tensor tq = rnd(t, seed + 20, q.shape()), tk = rnd(t, seed + 21, k.shape()), tv = rnd(t, seed + 22, v.shape());
        Tensor tb = bias == null ? null : rnd(t, seed + 23, bias.shape());
        Attention.Output jc = Attention.jvp(q, k, v, oc.withBias(bias), tq, tk, tv, tb);
        Attention.Output jg = Attention.jvp(q.to(GPU), k.to(GPU), v.to(GPU), og.withBias(onGpu(bias)), tq.to(GPU),
            tk.to(GPU), tv.to(GPU), onGpu(tb));
        closeTo(jg.out(), jc.out(), tol, tag + "jvp out");
        closeTo(jg.lse(), jc.lse(), tol, tag + "jvp lse");
        jc = Attention.jvp(q, k, v, oc.withBias(bias), tq, null, tv, null);
        jg = Attention.jvp(q.to(GPU), k.to(GPU), v.to(GPU), og.withBias(onGpu(bias)), tq.to(GPU), null, tv.to(GPU), null);
        closeTo(jg.out(), jc.out(), tol, tag + "jvp out (no tk, tbias)");
        closeTo(jg.lse(), jc.lse(), tol, tag + "jvp lse (no tk, tbias)");
      }
    }
  }

  /** Rows without keys: zeros and −inf on the GPU as on the CPU, and no NaN in any gradient. */
  @Test
  void softmaxAttentionFullyMaskedRows() {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(DType.F64, 1, 2, 1, 6, 4), k = rnd(DType.F64, 2, 2, 1, 3, 4), v = rnd(DType.F64, 3, 2, 1, 3, 4);
      Attention.Options o = Attention.Options.causal().withKeyLengths(Tensor.ofIndices(new long[] {3, 0}, 2).to(GPU));
      List<Tensor> in = leaves(GPU, q, k, v);
      Attention.Output f = Attention.forward(in.get(0), in.get(1), in.get(2), o);
      double[] out = f.out().detach().to(CPU).toDoubleArray(), lse = f.lse().to(CPU).toDoubleArray();
      for (int i = 6 * 4; i < 12 * 4; i++) assertEquals(0.0, out[i]);  // batch 1: no keys
      for (int i = 0; i < 3 * 4; i++) assertEquals(0.0, out[i]);       // rows 0..2 of batch 0
      for (int i = 0; i < 3; i++) assertEquals(Double.NEGATIVE_INFINITY, lse[i]);
      for (int i = 6; i < 12; i++) assertEquals(Double.NEGATIVE_INFINITY, lse[i]);
      List<Tensor> g = Autograd.grad(f.out().sum(), in, true);
      for (Tensor x : g)
        for (double e : x.detach().to(CPU).toDoubleArray()) assertFalse(Double.isNaN(e));
      Tensor probe = g.get(0).square().sum().add(g.get(1).square().sum()).add(g.get(2).square().sum());
      for (Tensor x : Autograd.grad(probe, in, false))
        for (double e : x.to(CPU).toDoubleArray()) assertFalse(Double.isNaN(e));
    }
  }

  // ---- split reductions, softmax rows, vectorised elementwise (kernels/cuda/dense.cu) ------------
  // The sums' tolerance: both sides add in double, in different orders: 2 n 2^-53 sum|x|, plus one
  // rounding to F32. Max/min values and indices exactly (NaN first, ties to the first index).
  static void sameSum(Tensor gpu, Tensor cpu, Tensor absSum, long n, DType t, String what) {
    double[] g = gpu.to(CPU).toDoubleArray(), c = cpu.toDoubleArray(), a = absSum.toDoubleArray();
    assertEquals(c.length, g.length, what);
    for (int i = 0; i < c.length; ++i) {
      double tol = 2.0 * n * Math.ulp(1.0) / 2 * a[i] + (t == DType.F32 ? Math.ulp((float) c[i]) : 0.0);
      assertTrue(Math.abs(g[i] - c[i]) <= tol, what + " [" + i + "]: cuda " + g[i] + " vs cpu " + c[i] + " tol " + tol);
    }
  }

  @ParameterizedTest
  @CsvSource({"F32, 1", "F32, 3", "F32, 1000", "F32, 1000003", "F32, 100000000", "F64, 1", "F64, 5", "F64, 65537",
              "F64, 100000000"})
  void reductionsOverOneFewAndManyElements(String type, long n) {
    DType t = DType.valueOf(type);
    try (Scope s = Scope.open()) {
      // the same values on both devices: made on the CPU and copied (the generators agree only to
      // rounding in F64, where the two builds contract Box-Muller differently into FMAs)
      Tensor x = Tensor.uniform(new long[] {n}, -1, 2, t, CPU, 41);
      Tensor g = x.to(GPU);
      Tensor abs = x.abs().sum();
      sameSum(g.sum(), x.sum(), abs, n, t, "sum of " + n);
      for (boolean max : new boolean[] {true, false}) {
        var cr = max ? x.max(0, false) : x.min(0, false);
        var gr = max ? g.max(0, false) : g.min(0, false);
        assertEquals(cr.values().item(), gr.values().to(CPU).item(), 0.0, (max ? "max" : "min") + " of " + n);
        assertArrayEquals(cr.indices().toLongArray(), gr.indices().to(CPU).toLongArray(), "arg of " + n);
      }
      if (n >= 1000) {
        // columns: [n / 4, 4] over dim 0 (few outputs, a long reduced dim) and rows [4, n / 4]
        long m = n / 4;
        Tensor xc = x.narrow(0, 0, 4 * m).reshape(m, 4), gc = g.narrow(0, 0, 4 * m).reshape(m, 4);
        sameSum(gc.sum(0, false), xc.sum(0, false), xc.abs().sum(0, false), m, t, "column sums of " + n);
        assertArrayEquals(xc.max(0, false).indices().toLongArray(), gc.max(0, false).indices().to(CPU).toLongArray());
        Tensor xr = xc.reshape(4, m), gr = gc.reshape(4, m);
        sameSum(gr.sum(1, false), xr.sum(1, false), xr.abs().sum(1, false), m, t, "row sums of " + n);
        assertArrayEquals(xr.min(1, false).indices().toLongArray(), gr.min(1, false).indices().to(CPU).toLongArray());
      }
    }
  }

  @Test
  void reductionsAreBitwiseRepeatable() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64}) {
        Tensor g = Tensor.randn(new long[] {8_000_003}, t, GPU, 9);
        Tensor cols = g.narrow(0, 0, 8_000_000).reshape(1_000_000, 8);
        double[] first = {g.sum().to(CPU).item(), 0};
        double[] colFirst = cols.sum(0, false).to(CPU).toDoubleArray();
        double[] rowFirst = cols.reshape(16, 500_000).sum(1, false).to(CPU).toDoubleArray();
        double[] softFirst = g.narrow(0, 0, 8_000_000).reshape(4, 2_000_000).softmax(1).sum(1, false).to(CPU).toDoubleArray();
        for (int k = 0; k < 5; ++k) {
          assertEquals(Double.doubleToRawLongBits(first[0]), Double.doubleToRawLongBits(g.sum().to(CPU).item()), t + " sum");
          assertArrayEquals(colFirst, cols.sum(0, false).to(CPU).toDoubleArray(), 0.0, t + " column sums");
          assertArrayEquals(rowFirst, cols.reshape(16, 500_000).sum(1, false).to(CPU).toDoubleArray(), 0.0, t + " row sums");
          assertArrayEquals(softFirst,
              g.narrow(0, 0, 8_000_000).reshape(4, 2_000_000).softmax(1).sum(1, false).to(CPU).toDoubleArray(), 0.0,
              t + " softmax rows");
        }
      }
    }
  }

  @Test
  void reductionsWithNanAndTies() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64}) {
        // few distinct values (ties everywhere) and NaN in some rows, long rows and columns
        double[] v = Tensor.uniform(new long[] {6, 300_000}, 0, 4, DType.F64, CPU, 3).toDoubleArray();
        for (int i = 0; i < v.length; ++i) v[i] = Math.floor(v[i]);
        v[2 * 300_000 + 123_456] = Double.NaN;
        v[2 * 300_000 + 17] = Double.NaN;
        v[5 * 300_000 + 299_999] = Double.NaN;
        Tensor x = Tensor.of(v, 6, 300_000).to(t), g = x.to(GPU);
        for (int dim : new int[] {0, 1}) {
          var cm = x.max(dim, false);
          var gm = g.max(dim, false);
          same(gm.values(), cm.values(), 0);
          assertArrayEquals(cm.indices().toLongArray(), gm.indices().to(CPU).toLongArray(), t + " argmax dim " + dim);
          var cn = x.min(dim, false);
          var gn = g.min(dim, false);
          same(gn.values(), cn.values(), 0);
          assertArrayEquals(cn.indices().toLongArray(), gn.indices().to(CPU).toLongArray(), t + " argmin dim " + dim);
        }
      }
    }
  }

  @Test
  void softmaxLongAndShortRowsAndContiguousElementwise() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64}) {
        double tol = t == DType.F32 ? 1e-5 : 1e-12;
        for (long[] shape : new long[][] {{3, 1}, {1000, 7}, {513, 32}, {64, 1024}, {5, 1025}, {3, 200_001}}) {
          Tensor x = rnd(t, 21, shape).mul(4);
          Tensor g = x.to(GPU);
          same(g.softmax(1), x.softmax(1), tol);
          same(g.logSoftmax(1), x.logSoftmax(1), tol);
        }
        // contiguous, aligned and not (a view one element in), odd sizes; a broadcast scalar
        for (long n : new long[] {1, 3, 4097, 1_000_003}) {
          Tensor a = rnd(t, 5, n + 1), b = rnd(t, 6, n + 1);
          Tensor ga = a.to(GPU), gb = b.to(GPU);
          for (int off : new int[] {0, 1}) {
            Tensor av = a.narrow(0, off, n), bv = b.narrow(0, off, n), gav = ga.narrow(0, off, n), gbv = gb.narrow(0, off, n);
            same(gav.add(gbv), av.add(bv), 0);
            same(gav.mul(gbv.narrow(0, 0, 1)), av.mul(bv.narrow(0, 0, 1)), 0);
            same(gav.tanh(), av.tanh(), tol);
            same(gav.contiguous(), av.contiguous(), 0);
            same(Tensor.where(gav.gt(gbv), gav, gbv), Tensor.where(av.gt(bv), av, bv), 0);
            same(gav.to(DType.BF16).to(t), av.to(DType.BF16).to(t), 0);
          }
        }
      }
    }
  }
}
