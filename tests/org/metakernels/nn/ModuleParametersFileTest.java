package org.metakernels.nn;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.metakernels.autograd.Autograd;
import org.metakernels.io.NumPy;
import org.metakernels.optim.SGD;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** Module.saveParameters / loadParameters: round trips, conversions, and refusals that change nothing. */
class ModuleParametersFileTest {
  @TempDir Path dir;

  static MLP mlp(DType dtype, long seed) {
    return new MLP(new long[] {3, 5, 2}, Activation.TANH, dtype, Device.CPU, seed);
  }

  static Map<String, double[]> values(Module m) {
    Map<String, double[]> v = new LinkedHashMap<>();
    for (var e : m.namedParameters().entrySet()) v.put(e.getKey(), e.getValue().toDoubleArray());
    return v;
  }

  static void assertSameValues(Map<String, double[]> a, Map<String, double[]> b) {
    assertEquals(a.keySet(), b.keySet());
    for (String k : a.keySet()) assertArrayEquals(a.get(k), b.get(k), k);
  }

  @Test
  void roundTripGivesTheSameFunctionBitForBit() throws IOException {
    for (DType dtype : new DType[] {DType.F32, DType.F64}) {
      Path f = dir.resolve("net-" + dtype + ".npz");
      try (MLP net = mlp(dtype, 1L); MLP copy = mlp(dtype, 2L); Scope s = Scope.open()) {
        Tensor x = Tensor.randn(new long[] {4, 3}, dtype, Device.CPU, 3L);
        net.saveParameters(f);
        assertFalse(java.util.Arrays.equals(net.forward(x).toDoubleArray(), copy.forward(x).toDoubleArray()));
        copy.loadParameters(f);
        assertArrayEquals(net.forward(x).toDoubleArray(), copy.forward(x).toDoubleArray(), dtype.toString());
        assertSameValues(values(net), values(copy));
        // NumPy's view of the file: the dotted names, in order, in the parameters' type
        Map<String, NumPy.Array> raw = NumPy.readNpz(f);
        assertEquals(List.of("layer0.weight", "layer0.bias", "layer1.weight", "layer1.bias"), List.copyOf(raw.keySet()));
        assertEquals((dtype == DType.F32 ? "<f4" : "<f8") + " [5, 3]", raw.get("layer0.weight").describe());
      }
    }
  }

  @Test
  void loadedValuesAreTheParametersAnOptimizerHolds() throws IOException {
    Path f = dir.resolve("net.npz");
    try (MLP net = mlp(DType.F64, 1L); MLP copy = mlp(DType.F64, 2L); Scope s = Scope.open()) {
      net.saveParameters(f);
      List<Tensor> held = copy.parameters();
      SGD opt = new SGD(held, 0.1);
      copy.loadParameters(f);
      // the same tensor objects now hold the loaded values, and still train
      assertArrayEquals(net.namedParameters().get("layer1.bias").toDoubleArray(), held.get(3).toDoubleArray());
      assertTrue(held.get(0).requiresGrad());
      Tensor x = Tensor.randn(new long[] {4, 3}, DType.F64, Device.CPU, 3L);
      copy.forward(x).square().sum().backward();
      double before = held.get(3).toDoubleArray()[0];
      opt.step();
      assertNotEquals(before, held.get(3).toDoubleArray()[0]);
    }
  }

  @Test
  void convertsBetweenFloatingTypes() throws IOException {
    Path f = dir.resolve("net64.npz");
    try (MLP net64 = mlp(DType.F64, 1L); MLP net32 = mlp(DType.F32, 2L); MLP net16 = mlp(DType.BF16, 4L);
         Scope s = Scope.open()) {
      net64.saveParameters(f);
      net32.loadParameters(f);
      for (var e : net64.namedParameters().entrySet()) {
        Tensor want = e.getValue().to(DType.F32);  // one rounding to nearest even
        assertArrayEquals(want.toFloatArray(), net32.namedParameters().get(e.getKey()).toFloatArray(), e.getKey());
      }
      net16.loadParameters(f);
      for (var e : net64.namedParameters().entrySet()) {
        Tensor want = e.getValue().to(DType.BF16);
        assertArrayEquals(want.toFloatArray(), net16.namedParameters().get(e.getKey()).toFloatArray(), e.getKey());
      }
      // BF16 saved as <f4, exactly, and read back into BF16 unchanged
      Path g = dir.resolve("net16.npz");
      net16.saveParameters(g);
      assertEquals("<f4 [5, 3]", NumPy.readNpz(g).get("layer0.weight").describe());
      try (MLP again = mlp(DType.BF16, 5L)) {
        again.loadParameters(g);
        assertSameValues(values(net16), values(again));
      }
    }
  }

  @Test
  void mismatchesAreRefusedAndChangeNothing() throws IOException {
    try (MLP net = mlp(DType.F64, 1L); Scope s = Scope.open()) {
      Map<String, double[]> before = values(net);
      // a wider network: same names, other shapes (layer1.weight is checked after layer0's)
      Path wide = dir.resolve("wide.npz");
      try (MLP other = new MLP(new long[] {3, 5, 4}, Activation.TANH, DType.F64, Device.CPU, 9L)) {
        other.saveParameters(wide);
      }
      MetakernelsException e = assertThrows(MetakernelsException.class, () -> net.loadParameters(wide));
      assertTrue(e.getMessage().contains("wide.npz") && e.getMessage().contains("'layer1.weight'")
          && e.getMessage().contains("[4, 5]") && e.getMessage().contains("[2, 5]"), e.getMessage());
      assertSameValues(before, values(net));
      // a missing and an unexpected name
      Map<String, Tensor> w = new LinkedHashMap<>(net.namedParameters());
      w.remove("layer1.bias");
      w.put("layer2.weight", Tensor.zeros(new long[] {1}, DType.F64, Device.CPU));
      Path names = dir.resolve("names.npz");
      NumPy.writeTensors(names, w);
      e = assertThrows(MetakernelsException.class, () -> net.loadParameters(names));
      assertTrue(e.getMessage().contains("missing: [layer1.bias]") && e.getMessage().contains("unexpected: [layer2.weight]"),
          e.getMessage());
      assertSameValues(before, values(net));
      // integers are not parameters
      Map<String, Tensor> ints = new LinkedHashMap<>();
      for (var p : net.namedParameters().entrySet())
        ints.put(p.getKey(), Tensor.zeros(p.getValue().shape(), DType.I64, Device.CPU));
      Path i64 = dir.resolve("ints.npz");
      NumPy.writeTensors(i64, ints);
      e = assertThrows(MetakernelsException.class, () -> net.loadParameters(i64));
      assertTrue(e.getMessage().contains("<i8") && e.getMessage().contains("not floating point"), e.getMessage());
      assertSameValues(before, values(net));
      // not a file at all
      Path junk = dir.resolve("junk.npz");
      Files.writeString(junk, "not a zip");
      IOException io = assertThrows(IOException.class, () -> net.loadParameters(junk));
      assertTrue(io.getMessage().contains("junk.npz"), io.getMessage());
      assertSameValues(before, values(net));
    }
  }

  @Test
  void aClosedModuleIsRefused() throws IOException {
    Path f = dir.resolve("net.npz");
    MLP net = mlp(DType.F64, 1L);
    net.saveParameters(f);
    net.close();
    MetakernelsException e = assertThrows(MetakernelsException.class, () -> net.loadParameters(f));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
    assertThrows(MetakernelsException.class, () -> net.saveParameters(dir.resolve("again.npz")));
    assertTrue(Files.notExists(dir.resolve("again.npz")));
  }

  @Test
  void loadingInsideAGradientComputationRecordsNothing() throws IOException {
    Path f = dir.resolve("net.npz");
    try (MLP net = mlp(DType.F64, 1L); MLP copy = mlp(DType.F64, 2L); Scope s = Scope.open()) {
      net.saveParameters(f);
      copy.loadParameters(f);
      for (Tensor p : copy.parameters()) assertNull(p.grad());
      Tensor x = Tensor.randn(new long[] {2, 3}, DType.F64, Device.CPU, 3L);
      List<Tensor> g = Autograd.grad(copy.forward(x).sum(), copy.parameters(), false);
      List<Tensor> h = Autograd.grad(net.forward(x).sum(), net.parameters(), false);
      for (int i = 0; i < g.size(); i++) assertArrayEquals(h.get(i).toDoubleArray(), g.get(i).toDoubleArray());
    }
  }
}
