package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
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
import org.metakernels.testing.Ref;

/**
 * Every CUDA kernel against its CPU twin (the oracle). Runs only where a CUDA device exists;
 * elsewhere every test is skipped.
 */
@Tag("gpu")
class CudaTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason());
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
  void randomIsTheSameOnBothDevices() {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {DType.F32, DType.F64}) {
        same(Tensor.randn(new long[] {4097}, t, GPU, 5), Tensor.randn(new long[] {4097}, t, CPU, 5), 1e-6);
        same(Tensor.uniform(new long[] {999}, -2, 3, t, GPU, 6), Tensor.uniform(new long[] {999}, -2, 3, t, CPU, 6), 1e-6);
      }
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

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22})
  void unaryOps(int op) {
    try (Scope s = Scope.open()) {
      Tensor x = rnd(DType.F32, 10 + op, 3, 333);
      if (op == Codes.U_LOG || op == Codes.U_SQRT || op == Codes.U_RSQRT || op == Codes.U_LOG1P)
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
}
