package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.optim.Adam;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Parameters and optimizer state saved from the GPU load on the CPU and back (the same bits either
 * way), training resumed on the GPU continues as the uninterrupted run, and gradient clipping works
 * on device tensors. Runs only where a CUDA device exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaCheckpointTest {
  @TempDir Path dir;

  static MLP mlp(Device d, long seed) {
    return new MLP(new long[] {4, 8, 3}, Activation.TANH, DType.F32, d, seed);
  }

  static void train(MLP net, Adam opt, int steps, Device d) {
    for (int i = 0; i < steps; i++) {
      opt.zeroGrad();
      try (Scope s = Scope.open()) {
        Tensor x = Tensor.randn(new long[] {16, 4}, DType.F32, Device.CPU, 50L + i).to(d);
        net.forward(x).square().mean().backward();
      }
      opt.clipGradNorm(0.5);
      opt.step();
    }
  }

  static float[] flat(MLP net) {
    List<Tensor> ps = net.parameters();
    int n = 0;
    for (Tensor p : ps) n += (int) p.numel();
    float[] out = new float[n];
    int at = 0;
    for (Tensor p : ps) {
      float[] v = p.toFloatArray();
      System.arraycopy(v, 0, out, at, v.length);
      at += v.length;
    }
    return out;
  }

  @Test
  void parametersMoveBetweenDevicesThroughTheFile() throws IOException {
    Path f = dir.resolve("gpu.npz"), g = dir.resolve("cpu.npz");
    try (MLP onGpu = mlp(Device.CUDA, 1L); MLP onCpu = mlp(Device.CPU, 2L); MLP back = mlp(Device.CUDA, 3L)) {
      onGpu.saveParameters(f);
      onCpu.loadParameters(f);
      assertArrayEquals(flat(onGpu), flat(onCpu));
      onCpu.saveParameters(g);
      back.loadParameters(g);
      assertArrayEquals(flat(onGpu), flat(back));
      assertEquals(Device.CUDA, back.parameters().get(0).device());
    }
  }

  @Test
  void modulesMoveAndCopyBetweenDevicesWithoutAFile() {
    try (MLP net = mlp(Device.CPU, 1L); MLP onGpu = mlp(Device.CUDA, 2L); Scope s = Scope.open()) {
      float[] cpuValues = flat(net);
      onGpu.copyParametersFrom(net);  // CPU -> GPU, in place
      assertArrayEquals(cpuValues, flat(onGpu));
      assertEquals(Device.CUDA, onGpu.parameters().get(0).device());
      List<Tensor> old = net.parameters();
      net.to(Device.CUDA);  // replaced by GPU leaves, the CPU tensors freed
      for (Tensor p : old) assertTrue(p.isClosed());
      for (Tensor p : net.parameters()) assertTrue(p.device() == Device.CUDA && p.requiresGrad() && p.gradFn() == null);
      assertArrayEquals(cpuValues, flat(net));
      Tensor x = Tensor.randn(new long[] {5, 4}, DType.F32, Device.CPU, 9L);
      assertArrayEquals(onGpu.forward(x.to(Device.CUDA)).toFloatArray(), net.forward(x.to(Device.CUDA)).toFloatArray());
      try (Adam opt = new Adam(net.parameters(), 1e-2)) {
        train(net, opt, 2, Device.CUDA);  // trains where it now lives
      }
      net.to(Device.CPU);
      try (MLP fresh = mlp(Device.CPU, 1L)) {
        assertFalse(java.util.Arrays.equals(flat(fresh), flat(net)));
        fresh.copyParametersFrom(onGpu);  // GPU -> CPU
        assertArrayEquals(cpuValues, flat(fresh));
      }
    }
  }

  @Test
  void trainingResumedOnTheGpuContinuesAsTheUninterruptedRun() throws IOException {
    Path model = dir.resolve("net.npz"), state = dir.resolve("adam.npz");
    float[] uninterrupted;
    try (MLP net = mlp(Device.CUDA, 1L); Adam opt = new Adam(net.parameters(), 1e-2)) {
      train(net, opt, 3, Device.CUDA);
      net.saveParameters(model);
      opt.saveState(state);
      train(net, opt, 3, Device.CUDA);
      uninterrupted = flat(net);
    }
    try (MLP net = mlp(Device.CUDA, 9L); Adam opt = new Adam(net.parameters(), 1e-2)) {
      net.loadParameters(model);
      opt.loadState(state);
      train(net, opt, 3, Device.CUDA);
      assertArrayEquals(uninterrupted, flat(net));
    }
  }
}
