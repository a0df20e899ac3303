package org.metakernels.bench;

import java.util.concurrent.TimeUnit;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The cost of a tiny op on the GPU from Java (issue 11: "keep it within a few microseconds of a bare
 * launch"), in microseconds:
 *
 * <ul>
 *   <li>{@code bareLaunch}: one empty kernel through the C ABI ({@code mk_runtime_noop}) and a stream sync;
 *   <li>{@code tinyOp}: {@code x.add(y)} on one element (allocation from the caching allocator, checks,
 *       the kernel, the output tensor) and a stream sync;
 *   <li>{@code bareLaunch16} / {@code tinyOp16}: 16 of them (each add reading the previous result) and one
 *       sync, per launch: the throughput of the launch path when the host does not wait.
 * </ul>
 *
 * The difference between {@code tinyOp} and {@code bareLaunch} is what the Java layer and the native
 * checks add to a launch. benchmarks/gpu/peers.py times PyTorch's one-element add the same two ways
 * ("launch.tinyOp", "launch.tinyOp16"). Run by benchmarks/gpu/check.sh; without a CUDA device the set-up
 * throws at once.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class GpuLaunchBench {
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    Scope scope;
    Tensor x, y;
    long stream;

    @Setup(Level.Trial)
    public void setup() {
      Gpu.require("GpuLaunchBench");
      scope = Scope.open();
      x = Tensor.randn(new long[] {1}, DType.F32, Device.CUDA, 41L);
      y = Tensor.randn(new long[] {1}, DType.F32, Device.CUDA, 42L);
      stream = x.launchStream();
      Gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (scope != null) scope.close();
    }

    void sync() {
      Native.check(MkNative.mk_runtime_cuda_synchronize(stream), "GpuLaunchBench sync");
    }

    void noop() {
      Native.check(MkNative.mk_runtime_noop(Device.CUDA.code, stream), "GpuLaunchBench noop");
    }
  }

  @Benchmark
  public void bareLaunch(Inputs in) {
    in.noop();
    in.sync();
  }

  @Benchmark
  public void tinyOp(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(in.x.add(in.y));
      in.sync();
    }
  }

  @Benchmark
  @OperationsPerInvocation(16)
  public void bareLaunch16(Inputs in) {
    for (int i = 0; i < 16; i++) in.noop();
    in.sync();
  }

  @Benchmark
  @OperationsPerInvocation(16)
  public void tinyOp16(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor z = in.x;
      for (int i = 0; i < 16; i++) z = z.add(in.y);
      bh.consume(z);
      in.sync();
    }
  }
}
