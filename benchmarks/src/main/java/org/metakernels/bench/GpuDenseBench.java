package org.metakernels.bench;

import java.util.concurrent.TimeUnit;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The memory-bound CUDA kernels of kernels/cuda/dense.cu, F32, on x: [4, 16, 4096, 128]
 * (33.5 M elements, 134 MB): reductions (the full sum of a loss, rows of 128, columns of 262144,
 * max with indices), softmax rows (short: 128; long: 524288), elementwise ops and copies. One
 * call and a device sync per invocation. benchmarks/gpu/peers.py times the same ops in PyTorch
 * (names "dense.OP") beside a copy-bandwidth reference, and benchmarks/gpu/dense.py puts the two
 * side by side with the bytes each op moves as a fraction of the copy rate. Run by
 * benchmarks/gpu/check.sh (pattern 'Gpu'); without a CUDA device the set-up throws at once.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class GpuDenseBench {
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"sum", "sumRows", "sumCols", "maxRows", "maxAll", "softmaxShort", "softmaxLong", "logSoftmaxShort", "add",
        "addBias", "mulScalar", "tanh", "where", "copy", "copyTransposed", "addTransposed", "fill", "castBf16", "randn"})
    public String op;

    @Param({"4x16x4096x128"}) public String shape;

    Scope scope;
    Tensor x, y, bias, mask, flat, rows, longRows, columns;
    long[] dims;

    @Setup(Level.Trial)
    public void setup() {
      Gpu.require("GpuDenseBench");
      dims = Checks.parseShape(shape);
      scope = Scope.open();
      x = Tensor.randn(dims, DType.F32, Device.CUDA, 31L);
      y = Tensor.randn(dims, DType.F32, Device.CUDA, 32L);
      long d = dims[dims.length - 1], n = x.numel();
      bias = Tensor.randn(new long[] {d}, DType.F32, Device.CUDA, 33L);
      mask = x.gt(y).to(DType.F32);
      flat = x.reshape(n);
      rows = x.reshape(n / d, d);
      longRows = x.reshape(dims[0] * dims[1], n / (dims[0] * dims[1]));
      columns = y.reshape(d, n / d);  // the shape of rows transposed
      Gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (scope != null) scope.close();
    }

    Object run() {
      switch (op) {
        case "sum":
          return flat.sum();
        case "sumRows":
          return rows.sum(1, false);
        case "sumCols":
          return rows.sum(0, false);
        case "maxRows":
          return rows.max(1, false);
        case "maxAll":
          return flat.max(0, false);
        case "softmaxShort":
          return rows.softmax(1);
        case "softmaxLong":
          return longRows.softmax(1);
        case "logSoftmaxShort":
          return rows.logSoftmax(1);
        case "add":
          return x.add(y);
        case "addBias":
          return x.add(bias);
        case "mulScalar":
          return x.mul(1.5);
        case "tanh":
          return x.tanh();
        case "where":
          return Tensor.where(mask, x, y);
        case "copy":
          return x.copyContiguous();
        case "copyTransposed":
          return rows.transpose(0, 1).copyContiguous();
        case "addTransposed":
          return columns.add(rows.transpose(0, 1));
        case "fill":
          return Tensor.zeros(dims, DType.F32, Device.CUDA);
        case "castBf16":
          return x.to(DType.BF16);
        case "randn":
          return Tensor.randn(dims, DType.F32, Device.CUDA, 34L);
        default:
          throw new IllegalArgumentException("GpuDenseBench: no op '" + op + "'");
      }
    }
  }

  @Benchmark
  public void op(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(in.run());
      Gpu.sync();
    }
  }
}
