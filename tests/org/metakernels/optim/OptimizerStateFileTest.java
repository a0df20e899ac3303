package org.metakernels.optim;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.metakernels.io.NumPy;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Optimizer.saveState / loadState: training resumed from the model's and the optimizer's files goes
 * on exactly as the uninterrupted run, and a file that does not fit changes nothing. Also the other
 * controls of a training loop: the learning rate between steps and global-norm gradient clipping.
 */
class OptimizerStateFileTest {
  @TempDir Path dir;

  static MLP mlp(long seed) {
    return new MLP(new long[] {3, 6, 2}, Activation.TANH, DType.F64, Device.CPU, seed);
  }

  static void train(MLP net, Optimizer opt, int steps, long seed) {
    for (int i = 0; i < steps; i++) {
      opt.zeroGrad();
      try (Scope s = Scope.open()) {
        Tensor x = Tensor.randn(new long[] {8, 3}, DType.F64, Device.CPU, seed + i);
        net.forward(x).sub(x.narrow(1, 0, 2)).square().mean().backward();
      }
      opt.step();
    }
  }

  static double[] flat(MLP net) {
    return net.parameters().stream().flatMapToDouble(t -> java.util.Arrays.stream(t.toDoubleArray())).toArray();
  }

  void resumesExactly(Function<List<Tensor>, Optimizer> make) throws IOException {
    Path model = dir.resolve("net.npz"), state = dir.resolve("opt.npz");
    double[] uninterrupted;
    try (MLP net = mlp(1L); Optimizer opt = make.apply(net.parameters())) {
      train(net, opt, 5, 100);
      net.saveParameters(model);
      opt.saveState(state);
      train(net, opt, 4, 200);
      uninterrupted = flat(net);
    }
    try (MLP net = mlp(2L); Optimizer opt = make.apply(net.parameters())) {
      net.loadParameters(model);
      opt.loadState(state);
      train(net, opt, 4, 200);
      assertArrayEquals(uninterrupted, flat(net), opt.getClass().getSimpleName());
    }
    // an optimizer that already stepped elsewhere is set back as well
    try (MLP net = mlp(3L); Optimizer opt = make.apply(net.parameters())) {
      train(net, opt, 3, 300);
      net.loadParameters(model);
      opt.loadState(state);
      train(net, opt, 4, 200);
      assertArrayEquals(uninterrupted, flat(net), opt.getClass().getSimpleName() + " after other steps");
    }
  }

  @Test
  void adamResumesBitForBit() throws IOException {
    resumesExactly(p -> new Adam(p, 1e-2, 0.9, 0.999, 1e-8, 1e-4));
    try (MLP net = mlp(1L); Adam opt = new Adam(net.parameters(), 1e-2)) {
      train(net, opt, 2, 0);
      Path f = dir.resolve("adam.npz");
      opt.saveState(f);
      Map<String, NumPy.Array> raw = NumPy.readNpz(f);
      assertEquals(List.of("step", "step.0", "step.1", "step.2", "step.3", "m.0", "m.1", "m.2", "m.3", "v.0", "v.1",
          "v.2", "v.3"), List.copyOf(raw.keySet()));
      assertEquals(2, raw.get("step").longs()[0]);
      assertEquals(2, raw.get("step.3").longs()[0]);
      assertEquals("<f8 [6, 3]", raw.get("m.0").describe());
    }
  }

  @Test
  void sgdWithMomentumResumesBitForBit() throws IOException {
    resumesExactly(p -> new SGD(p, 0.05, 0.9, 1e-4));
    // plain SGD keeps no state: an empty file, and resuming is the model alone
    resumesExactly(p -> new SGD(p, 0.05));
  }

  @Test
  void aStateLeftOutIsZero() throws IOException {
    // a parameter without a gradient has no state yet; the file leaves it out and loading zeroes it
    try (MLP net = mlp(1L); SGD opt = new SGD(net.parameters(), 0.1, 0.9, 0)) {
      Tensor w = net.parameters().get(0);
      try (Scope s = Scope.open()) {
        w.sum().backward();  // a gradient for w alone
      }
      opt.step();
      Path f = dir.resolve("one.npz");
      opt.saveState(f);
      assertEquals(List.of("velocity.0"), List.copyOf(NumPy.readNpz(f).keySet()));
      try (MLP other = mlp(2L); SGD o2 = new SGD(other.parameters(), 0.1, 0.9, 0)) {
        train(other, o2, 2, 0);  // velocity for every parameter
        o2.loadState(f);
        Tensor v3 = o2.state("velocity", 3, false);
        assertArrayEquals(new double[v3.toDoubleArray().length], v3.toDoubleArray());
        assertArrayEquals(opt.state("velocity", 0, false).toDoubleArray(), o2.state("velocity", 0, false).toDoubleArray());
      }
    }
  }

  @Test
  void learningRateCanChangeBetweenSteps() {
    try (Scope s = Scope.open()) {
      Tensor p = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
      try (SGD opt = new SGD(List.of(p), 0.5)) {
        assertEquals(0.5, opt.learningRate());
        p.square().sum().backward();  // g = 2p = [2, 4]
        opt.setLearningRate(0.25);
        opt.step();
        assertArrayEquals(new double[] {1 - 0.25 * 2, 2 - 0.25 * 4}, p.toDoubleArray());
        assertThrows(IllegalArgumentException.class, () -> opt.setLearningRate(-1));
        assertThrows(IllegalArgumentException.class, () -> opt.setLearningRate(Double.NaN));
        assertEquals(0.25, opt.learningRate());
      }
      try (Adam opt = new Adam(List.of(p), 1e-3)) {
        opt.setLearningRate(2e-3);
        assertEquals(2e-3, opt.learningRate());
        assertThrows(IllegalArgumentException.class, () -> opt.setLearningRate(Double.POSITIVE_INFINITY));
      }
      assertThrows(IllegalArgumentException.class, () -> new Adam(List.of(p), -1e-3));
    }
  }

  @Test
  void clipGradNormScalesAllGradientsTogether() {
    try (Scope s = Scope.open()) {
      Tensor a = Tensor.of(new double[] {1, 1}, 2).requiresGrad(true);
      Tensor b = Tensor.of(new float[] {2}, 1).requiresGrad(true);
      Tensor c = Tensor.of(new double[] {5}, 1).requiresGrad(true);  // no gradient: skipped
      try (SGD opt = new SGD(List.of(a, b, c), 0.1)) {
        assertEquals(0.0, opt.clipGradNorm(1.0));  // no gradients at all
        a.mul(Tensor.of(new double[] {3, 4}, 2)).sum().backward();  // grad a = [3, 4]
        b.mul(12.0).sum().backward();                              // grad b = [12] (F32)
        double norm = opt.clipGradNorm(100.0);                     // sqrt(9 + 16 + 144) = 13
        assertEquals(13.0, norm, 1e-12);
        assertArrayEquals(new double[] {3, 4}, a.grad().toDoubleArray());  // under the limit: unchanged
        norm = opt.clipGradNorm(6.5);
        assertEquals(13.0, norm, 1e-12);
        double scale = 6.5 / (13.0 + 1e-6);
        assertArrayEquals(new double[] {3 * scale, 4 * scale}, a.grad().toDoubleArray(), 1e-15);
        assertEquals(12 * scale, b.grad().toDoubleArray()[0], 1e-5);
        assertNull(c.grad());
        assertEquals(6.5, opt.clipGradNorm(100.0), 1e-5);          // the clipped norm
        assertThrows(IllegalArgumentException.class, () -> opt.clipGradNorm(0));
        // a NaN gradient: the norm says so and nothing is scaled
        a.mul(Tensor.of(new double[] {Double.NaN, 0}, 2)).sum().backward();
        double[] before = b.grad().toDoubleArray();
        assertTrue(Double.isNaN(opt.clipGradNorm(1.0)));
        assertArrayEquals(before, b.grad().toDoubleArray());
      }
    }
  }

  @Test
  void filesThatDoNotFitAreRefusedAndChangeNothing() throws IOException {
    try (MLP net = mlp(1L); Adam opt = new Adam(net.parameters(), 1e-2); Scope s = Scope.open()) {
      train(net, opt, 2, 0);
      double[] m0 = opt.state("m", 0, false).toDoubleArray();
      long steps = opt.steps();
      Path f = dir.resolve("bad.npz");
      // another optimizer's state
      try (SGD sgd = new SGD(net.parameters(), 0.1, 0.9, 0)) {
        train(net, sgd, 1, 0);
        sgd.saveState(f);
      }
      MetakernelsException e = assertThrows(MetakernelsException.class, () -> opt.loadState(f));
      assertTrue(e.getMessage().contains("bad.npz") && e.getMessage().contains("step"), e.getMessage());
      // a state of another shape, and an index past the parameters
      Map<String, Tensor> w = new LinkedHashMap<>();
      w.put("step", Tensor.ofIndices(new long[] {9}));
      w.put("m.0", Tensor.zeros(new long[] {6, 4}, DType.F64, Device.CPU));
      NumPy.writeTensors(f, w);
      e = assertThrows(MetakernelsException.class, () -> opt.loadState(f));
      assertTrue(e.getMessage().contains("'m.0'") && e.getMessage().contains("[6, 4]") && e.getMessage().contains("[6, 3]"),
          e.getMessage());
      w.put("m.0", Tensor.zeros(new long[] {6, 3}, DType.F64, Device.CPU));
      w.put("v.7", Tensor.zeros(new long[] {6, 3}, DType.F64, Device.CPU));
      NumPy.writeTensors(f, w);
      e = assertThrows(MetakernelsException.class, () -> opt.loadState(f));
      assertTrue(e.getMessage().contains("'v.7'") && e.getMessage().contains("past the 4 parameters"), e.getMessage());
      w.remove("v.7");
      w.put("momentum.0", Tensor.zeros(new long[] {6, 3}, DType.F64, Device.CPU));
      NumPy.writeTensors(f, w);
      e = assertThrows(MetakernelsException.class, () -> opt.loadState(f));
      assertTrue(e.getMessage().contains("unknown entry 'momentum.0'") && e.getMessage().contains("m.<i>"), e.getMessage());
      assertArrayEquals(m0, opt.state("m", 0, false).toDoubleArray());
      assertEquals(steps, opt.steps());
    }
  }

  /**
   * Adam's per-parameter update counts (the t of each bias correction) go to the file as step.i and
   * come back: training where one parameter misses steps resumes bit for bit; a file without
   * step.i (written before 2026-12-07) gives each parameter with moments the global count.
   */
  @Test
  void adamPerParameterCountsResume() throws IOException {
    Path model = dir.resolve("net.npz"), state = dir.resolve("opt.npz");
    java.util.function.BiConsumer<MLP, Adam> sparseTrain = (net, opt) -> {
      for (int i = 0; i < 4; i++) {
        opt.zeroGrad();
        try (Scope s = Scope.open()) {
          Tensor x = Tensor.randn(new long[] {8, 3}, DType.F64, Device.CPU, 50 + i);
          net.forward(x).sub(x.narrow(1, 0, 2)).square().mean().backward();
        }
        if (i % 2 == 0) net.parameters().get(3).zeroGrad();  // the last bias: a gradient at odd steps only
        opt.step();
      }
    };
    double[] uninterrupted;
    try (MLP net = mlp(1L); Adam opt = new Adam(net.parameters(), 1e-2)) {
      sparseTrain.accept(net, opt);
      assertEquals(4, opt.steps());
      assertEquals(4, opt.steps(0));
      assertEquals(2, opt.steps(3));
      net.saveParameters(model);
      opt.saveState(state);
      sparseTrain.accept(net, opt);
      uninterrupted = flat(net);
    }
    try (MLP net = mlp(2L); Adam opt = new Adam(net.parameters(), 1e-2)) {
      net.loadParameters(model);
      opt.loadState(state);
      assertEquals(2, opt.steps(3));
      sparseTrain.accept(net, opt);
      assertArrayEquals(uninterrupted, flat(net));
    }
    // the older layout: step, m.i, v.i only
    Map<String, Tensor> old = new LinkedHashMap<>();
    try (Scope s = Scope.open(); MLP net = mlp(1L); Adam opt = new Adam(net.parameters(), 1e-2)) {
      sparseTrain.accept(net, opt);
      for (var e : NumPy.readNpz(state).entrySet())
        if (!e.getKey().startsWith("step.") && !e.getKey().equals("m.2") && !e.getKey().equals("v.2"))
          old.put(e.getKey(), e.getValue().toTensor(e.getValue().isFloating() ? DType.F64 : DType.I64, Device.CPU));
      Path f = dir.resolve("old.npz");
      NumPy.writeTensors(f, old);
      opt.loadState(f);
      assertEquals(4, opt.steps(0));
      assertEquals(4, opt.steps(3));
      assertEquals(0, opt.steps(2), "no moments in the file: no updates");
    }
  }
}
