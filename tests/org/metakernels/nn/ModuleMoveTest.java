package org.metakernels.nn;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.metakernels.optim.Adam;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** Module.copyParametersFrom and Module.to: values, ownership, autograd, and refusals that change nothing. */
class ModuleMoveTest {
  static MLP mlp(DType dtype, long seed) {
    return new MLP(new long[] {3, 5, 2}, Activation.TANH, dtype, Device.CPU, seed);
  }

  /** Two linear layers that share one weight under two names (tying). */
  static final class Tied extends Module {
    Tied(long seed) {
      Tensor w = register("a", Tensor.randn(new long[] {3, 3}, DType.F64, Device.CPU, seed));
      register("b", w);
    }

    @Override
    public Tensor forward(Tensor x, Weights w) {
      return x.matmul(p("a", w)).matmul(p("b", w));
    }
  }

  @Test
  void copyParametersFromGivesTheSameFunctionAndKeepsOptimizersWorking() {
    try (MLP net = mlp(DType.F64, 1L); MLP copy = mlp(DType.F64, 2L); Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {4, 3}, DType.F64, Device.CPU, 3L);
      List<Tensor> before = copy.parameters();
      try (Adam opt = new Adam(copy.parameters(), 1e-2)) {
        assertSame(copy, copy.copyParametersFrom(net));
        assertArrayEquals(net.forward(x).toDoubleArray(), copy.forward(x).toDoubleArray());
        assertEquals(before, copy.parameters());  // the same tensors, new values
        for (Tensor p : copy.parameters()) assertTrue(p.requiresGrad() && p.gradFn() == null);
        copy.forward(x).square().sum().backward();
        opt.step();  // the optimizer built before the copy updates the copied values
        assertFalse(Arrays.equals(net.forward(x).toDoubleArray(), copy.forward(x).toDoubleArray()));
      }
      // the source is untouched and shares nothing with the copy
      for (var e : net.namedParameters().entrySet()) assertNotSame(e.getValue(), copy.namedParameters().get(e.getKey()));
      assertSame(net, net.copyParametersFrom(net));
    }
  }

  @Test
  void copyParametersFromConvertsTheElementType() {
    try (MLP wide = mlp(DType.F64, 1L); MLP narrow = mlp(DType.F32, 2L); MLP back = mlp(DType.F64, 3L)) {
      narrow.copyParametersFrom(wide);
      for (var e : wide.namedParameters().entrySet()) {
        double[] w = e.getValue().toDoubleArray();
        float[] n = narrow.namedParameters().get(e.getKey()).toFloatArray();
        for (int i = 0; i < w.length; i++) assertEquals((float) w[i], n[i], e.getKey());  // round to nearest even
      }
      back.copyParametersFrom(narrow);
      for (var e : back.namedParameters().entrySet()) {
        float[] n = narrow.namedParameters().get(e.getKey()).toFloatArray();
        double[] b = e.getValue().toDoubleArray();
        for (int i = 0; i < n.length; i++) assertEquals(n[i], b[i], 0.0, e.getKey());  // exact widening
      }
    }
  }

  @Test
  void copyParametersFromRefusesOtherNamesShapesOrClosedTensorsAndChangesNothing() {
    try (MLP net = mlp(DType.F64, 1L);
        MLP deeper = new MLP(new long[] {3, 5, 5, 2}, Activation.TANH, DType.F64, Device.CPU, 2L);
        MLP wider = new MLP(new long[] {3, 7, 2}, Activation.TANH, DType.F64, Device.CPU, 3L);
        MLP other = mlp(DType.F64, 4L)) {
      Map<String, double[]> kept = ModuleParametersFileTest.values(net);
      MetakernelsException e = assertThrows(MetakernelsException.class, () -> net.copyParametersFrom(deeper));
      assertTrue(e.getMessage().contains("MLP.copyParametersFrom(MLP)") && e.getMessage().contains("only in the source: [layer2.bias, layer2.weight]"),
          e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> net.copyParametersFrom(wider));
      assertTrue(e.getMessage().contains("'layer0.weight'") && e.getMessage().contains("[5, 3]") && e.getMessage().contains("[7, 3]"),
          e.getMessage());
      other.parameters().get(3).close();
      e = assertThrows(MetakernelsException.class, () -> net.copyParametersFrom(other));
      assertTrue(e.getMessage().contains("'layer1.bias' of the source is closed"), e.getMessage());
      ModuleParametersFileTest.assertSameValues(kept, ModuleParametersFileTest.values(net));
    }
  }

  @Test
  void toDTypeReplacesEveryParameterByAnOwnedLeafAndFreesTheOld() {
    try (MLP net = mlp(DType.F64, 1L); Scope s = Scope.open()) {
      Tensor x64 = Tensor.randn(new long[] {4, 3}, DType.F64, Device.CPU, 3L);
      List<Tensor> old = net.parameters();
      double[][] oldValues = old.stream().map(Tensor::toDoubleArray).toArray(double[][]::new);
      net.forward(x64).sum().backward();  // old gradients, freed with the old tensors
      assertSame(net, net.to(DType.F32));
      List<Tensor> now = net.parameters();
      for (int i = 0; i < now.size(); i++) {
        Tensor p = now.get(i);
        assertTrue(old.get(i).isClosed());
        assertEquals(DType.F32, p.dtype());
        assertTrue(p.requiresGrad() && p.gradFn() == null && p.grad() == null);
        float[] v = p.toFloatArray();
        for (int j = 0; j < v.length; j++) assertEquals((float) oldValues[i][j], v[j]);
      }
      try (Scope inner = Scope.open()) {
        net.forward(x64.to(DType.F32)).sum().backward();
      }
      for (Tensor p : now) assertFalse(p.isClosed(), "owned by the module, not by the scope");
      for (Tensor p : now) assertNotNull(p.grad());
      List<Tensor> same = net.parameters();
      net.to(DType.F32);  // nothing to do: the same tensors stay
      assertEquals(same, net.parameters());
      for (Tensor p : same) assertFalse(p.isClosed());
      MetakernelsException e = assertThrows(MetakernelsException.class, () -> net.to(DType.I64));
      assertTrue(e.getMessage().contains("MLP.to(I64)"), e.getMessage());
    }
  }

  @Test
  void toKeepsATiedParameterOneTensor() {
    try (Tied t = new Tied(1L); Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {2, 3}, DType.F32, Device.CPU, 2L);
      t.to(DType.F32);
      Map<String, Tensor> ps = t.namedParameters();
      assertSame(ps.get("a"), ps.get("b"));
      assertEquals(DType.F32, ps.get("a").dtype());
      assertEquals(2, t.forward(x).shape()[0]);
    }
  }

  /**
   * An optimizer built before to(...) holds the freed parameters: its step, clipGradNorm and
   * saveState throw (they skipped the gradient-less freed tensors and training silently stalled);
   * and MLP sizes of fewer than two are refused.
   */
  @Test
  void anOptimizerOfTheReplacedParametersThrows() {
    try (MLP net = mlp(DType.F32, 1L); Adam adam = new Adam(net.parameters(), 1e-2);
         org.metakernels.optim.SGD sgd = new org.metakernels.optim.SGD(net.parameters(), 0.1)) {
      net.to(DType.F64);
      for (org.metakernels.optim.Optimizer o : List.of(adam, sgd)) {
        IllegalStateException e = assertThrows(IllegalStateException.class, o::step);
        assertTrue(e.getMessage().contains("parameter 0 was freed") && e.getMessage().contains("build the optimizer after"),
            e.getMessage());
        assertThrows(IllegalStateException.class, () -> o.clipGradNorm(1.0));
      }
    }
    for (long[] sizes : new long[][] {{}, {5}}) {
      MetakernelsException e = assertThrows(MetakernelsException.class,
          () -> new MLP(sizes, Activation.TANH, DType.F32, Device.CPU, 1L));
      assertTrue(e.getMessage().startsWith("MLP: sizes"), e.getMessage());
    }
  }

  @Test
  void toRefusesAClosedParameterAndChangesNothing() {
    try (MLP net = mlp(DType.F64, 1L)) {
      List<Tensor> before = net.parameters();
      before.get(2).close();
      MetakernelsException e = assertThrows(MetakernelsException.class, () -> net.to(DType.F32));
      assertTrue(e.getMessage().contains("MLP.to(F32): parameter 'layer1.weight' of this module is closed"), e.getMessage());
      assertEquals(before, net.parameters());
      assertFalse(before.get(0).isClosed());
      assertEquals(DType.F64, before.get(0).dtype());
    }
  }

  @Test
  void toAMissingDeviceFailsCleanlyAndChangesNothing() {
    if (Backend.get().cudaAvailable()) return;  // the move itself is CudaCheckpointTest's
    try (MLP net = mlp(DType.F64, 1L)) {
      List<Tensor> before = net.parameters();
      Map<String, double[]> kept = ModuleParametersFileTest.values(net);
      assertThrows(MetakernelsException.class, () -> net.to(Device.CUDA));
      assertEquals(before, net.parameters());
      for (Tensor p : before) assertFalse(p.isClosed());
      ModuleParametersFileTest.assertSameValues(kept, ModuleParametersFileTest.values(net));
    }
  }
  /**
   * A tied tensor is one parameter: listed twice by parameters(), an optimizer updated it twice per
   * step (twice the learning rate) and parameterCount counted it twice. PyTorch lists it once.
   */
  @Test
  void aTiedParameterIsListedOnceAndStepsOnce() {
    try (Scope s = Scope.open(); Tied t = new Tied(3)) {
      assertEquals(1, t.parameters().size());
      assertEquals(9, t.parameterCount());
      assertEquals(2, t.namedParameters().size());
      Tensor w = t.parameters().get(0);
      double[] before = w.toDoubleArray();
      t.forward(Tensor.ones(new long[] {1, 3}, DType.F64, Device.CPU)).sum().backward();
      double[] g = w.grad().toDoubleArray();
      try (org.metakernels.optim.SGD opt = new org.metakernels.optim.SGD(t.parameters(), 0.1)) {
        opt.step();
      }
      double[] after = w.toDoubleArray();
      for (int i = 0; i < 9; i++) assertEquals(before[i] - 0.1 * g[i], after[i], 1e-15);
    }
  }

  /** Names with '.' could shadow a child's parameter (its tensor then never trained nor freed). */
  @Test
  void dottedOrEmptyNamesAndRefusedParametersAreRefusedCleanly() {
    long live = org.metakernels.runtime.MkNative.mk_host_live_bytes();
    class Dotted extends Module {
      Dotted(String name) {
        register(name, Tensor.zeros(new long[] {2}, DType.F64, Device.CPU));
      }

      @Override
      public Tensor forward(Tensor x, Weights w) {
        return x;
      }
    }
    for (String bad : new String[] {"layer0.weight", "", "a."}) {
      try (Scope s = Scope.open()) {
        var e = assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> new Dotted(bad));
        assertTrue(e.getMessage().contains("'" + bad + "'"), e.getMessage());
      }
    }
    try (Scope s = Scope.open()) {  // an I64 parameter: refused, and left to the scope
      assertThrows(RuntimeException.class, () -> new LayerNorm(4, 1e-5, DType.I64, Device.CPU));
    }
    // sizes checked before any layer is made (layers 0 and 1 were left unowned by a refused layer 2)
    var e = assertThrows(org.metakernels.runtime.MetakernelsException.class,
        () -> new MLP(new long[] {4, 8, 0, 3}, Activation.TANH, DType.F64, Device.CPU, 1));
    assertTrue(e.getMessage().contains("MLP"), e.getMessage());
    e = assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> new Linear(0, 3, true, DType.F64, Device.CPU, 1));
    assertTrue(e.getMessage().contains("Linear: in 0"), e.getMessage());
    assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> new SemanticAttention(0, 3, DType.F64, Device.CPU, 1));
    assertEquals(live, org.metakernels.runtime.MkNative.mk_host_live_bytes());
  }
}
