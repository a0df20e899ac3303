package org.metakernels.nn;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** Linear, MLP and LayerNorm modules: shapes, forward against loops on Java arrays, substituted weights. */
class ModulesTest {
  static final Device CPU = Device.CPU;

  static Nd nd(Tensor t) {
    long[] s = t.shape();
    int[] shape = new int[s.length];
    for (int i = 0; i < s.length; i++) shape[i] = (int) s[i];
    return new Nd(t.toDoubleArray(), shape);
  }

  /** x Wᵀ + b over the last dim, with plain loops. */
  static Nd linearRef(Nd x, Nd w, Nd b) {
    int out = w.shape[0], in = w.shape[1];
    int rows = x.numel() / in;
    double[] y = new double[rows * out];
    for (int r = 0; r < rows; r++)
      for (int o = 0; o < out; o++) {
        double s = b == null ? 0 : b.data[o];
        for (int i = 0; i < in; i++) s += x.data[r * in + i] * w.data[o * in + i];
        y[r * out + o] = s;
      }
    int[] shape = x.shape.clone();
    shape[shape.length - 1] = out;
    return new Nd(y, shape);
  }

  static double act(Activation a, double v) {
    return switch (a) {
      case RELU -> Math.max(v, 0);
      case TANH -> Math.tanh(v);
      case GELU -> 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
      case SIGMOID -> 1 / (1 + Math.exp(-v));
      case IDENTITY -> v;
    };
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void linearShapesInitAndForward(DType d) {
    try (Scope s = Scope.open(); Linear lin = new Linear(7, 3, true, d, CPU, 5);
        Linear nob = new Linear(7, 4, false, d, CPU, 6)) {
      assertEquals(7, lin.in());
      assertEquals(3, lin.out());
      Map<String, Tensor> p = lin.namedParameters();
      assertEquals(List.of("weight", "bias"), new ArrayList<>(p.keySet()));
      Ref.assertShape(p.get("weight"), 3, 7);
      Ref.assertShape(p.get("bias"), 3);
      assertEquals(d, p.get("weight").dtype());
      assertEquals(24, lin.parameterCount());
      assertEquals(List.of("weight"), new ArrayList<>(nob.namedParameters().keySet()));
      double bound = 1 / Math.sqrt(7);
      for (Tensor t : lin.parameters()) {
        assertTrue(t.requiresGrad());
        assertNull(t.storage().owner(), "parameters are owned by the module, not the scope");
        for (double v : t.toDoubleArray()) assertTrue(Math.abs(v) <= bound, "init within ±1/√in: " + v);
      }
      Nd x = Nd.uniform(new Random(1), -1, 1, 2, 5, 7);
      if (d == DType.F32) x = x.roundToFloat();
      Tensor y = lin.forward(x.tensor(d));
      Ref.assertShape(y, 2, 5, 3);
      double tol = d == DType.F64 ? 1e-13 : 1e-5;
      Ref.assertClose(y, linearRef(x, nd(p.get("weight")), nd(p.get("bias"))), tol, tol);
      Ref.assertClose(nob.forward(x.tensor(d)), linearRef(x, nd(nob.namedParameters().get("weight")), null), tol, tol);
      // same seed, same init
      try (Linear again = new Linear(7, 3, true, d, CPU, 5)) {
        Ref.assertClose(again.namedParameters().get("weight"), p.get("weight"), 0, 0);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Activation.class)
  void mlpForwardMatchesLayerByLayerLoops(Activation a) {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {4, 6, 5, 2}, a, DType.F64, CPU, 11)) {
      Map<String, Tensor> p = net.namedParameters();
      assertEquals(List.of("layer0.weight", "layer0.bias", "layer1.weight", "layer1.bias", "layer2.weight",
          "layer2.bias"), new ArrayList<>(p.keySet()));
      assertEquals(4 * 6 + 6 + 6 * 5 + 5 + 5 * 2 + 2, net.parameterCount());
      Ref.assertShape(p.get("layer1.weight"), 5, 6);
      Nd x = Nd.uniform(new Random(2), -2, 2, 9, 4);
      Nd h = x;
      for (int l = 0; l < 3; l++) {
        h = linearRef(h, nd(p.get("layer" + l + ".weight")), nd(p.get("layer" + l + ".bias")));
        if (l < 2) h = h.map(v -> act(a, v));
      }
      Tensor y = net.forward(x.f64());
      Ref.assertShape(y, 9, 2);
      Ref.assertClose(y, h, 1e-13, 1e-12);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void layerNormModule(DType d) {
    try (Scope s = Scope.open(); LayerNorm ln = new LayerNorm(6, 1e-5, d, CPU)) {
      Map<String, Tensor> p = ln.namedParameters();
      Ref.assertValues(p.get("weight"), 1, 1, 1, 1, 1, 1);
      Ref.assertValues(p.get("bias"), 0, 0, 0, 0, 0, 0);
      Nd x = Nd.uniform(new Random(3), -3, 3, 2, 4, 6);
      if (d == DType.F32) x = x.roundToFloat();
      Nd ref = x.alongDim(2, v -> {
        double m = Nd.mean(v), var = Nd.var(v, false);
        double[] o = new double[v.length];
        for (int i = 0; i < v.length; i++) o[i] = (v[i] - m) / Math.sqrt(var + 1e-5);
        return o;
      });
      double tol = d == DType.F64 ? 1e-12 : 1e-5;
      Ref.assertClose(ln.forward(x.tensor(d)), ref, tol, tol);
      // with substituted scale and shift
      Nd w = Nd.uniform(new Random(4), 0.5, 2, 6), b = Nd.uniform(new Random(5), -1, 1, 6);
      if (d == DType.F32) {
        w = w.roundToFloat();
        b = b.roundToFloat();
      }
      Nd wf = w, bf = b;
      Nd affine = ref.alongDim(2, v -> {
        double[] o = new double[v.length];
        for (int i = 0; i < v.length; i++) o[i] = v[i] * wf.data[i] + bf.data[i];
        return o;
      });
      Ref.assertClose(ln.forward(x.tensor(d), Weights.of(Map.of("weight", w.tensor(d), "bias", b.tensor(d)))), affine,
          tol * 4, tol * 4);
    }
  }

  @Test
  void substitutedWeightsEqualCopiedWeights() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {3, 8, 2}, Activation.GELU, DType.F64, CPU, 21)) {
      Tensor x = Tensor.randn(new long[] {5, 3}, DType.F64, CPU, 22);
      Map<String, Tensor> fast = new LinkedHashMap<>();
      long seed = 100;
      for (var e : net.namedParameters().entrySet())
        fast.put(e.getKey(), Tensor.randn(e.getValue().shape(), DType.F64, CPU, seed++));
      Tensor own = net.forward(x);
      Tensor substituted = net.forward(x, Weights.of(fast));
      assertFalse(Ref.maxRelErr(own.toDoubleArray(), substituted.toDoubleArray()) < 1e-3, "the weights are used");
      // the module's own parameters are untouched by a substituted forward
      Ref.assertClose(net.forward(x), own, 0, 0);
      try (var ng = Autograd.noGrad()) {
        for (var e : fast.entrySet()) net.namedParameters().get(e.getKey()).copyInPlace(e.getValue());
      }
      Ref.assertClose(net.forward(x), substituted, 0, 0);
      // a partial substitution: only layer1 from the map
      try (MLP other = new MLP(new long[] {3, 8, 2}, Activation.GELU, DType.F64, CPU, 21)) {
        Map<String, Tensor> part = Map.of("layer1.weight", fast.get("layer1.weight"), "layer1.bias",
            fast.get("layer1.bias"));
        Tensor mixed = other.forward(x, Weights.of(part));
        try (var ng = Autograd.noGrad()) {
          other.namedParameters().get("layer1.weight").copyInPlace(fast.get("layer1.weight"));
          other.namedParameters().get("layer1.bias").copyInPlace(fast.get("layer1.bias"));
        }
        Ref.assertClose(other.forward(x), mixed, 0, 0);
      }
    }
  }

  @Test
  void gradientsFlowToSubstitutedWeightsNotToTheModule() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {3, 4, 1}, Activation.TANH, DType.F64, CPU, 31)) {
      Tensor x = Tensor.randn(new long[] {6, 3}, DType.F64, CPU, 32);
      Map<String, Tensor> fast = new LinkedHashMap<>();
      for (var e : net.namedParameters().entrySet()) fast.put(e.getKey(), e.getValue().mul(1.0));  // on the tape
      Tensor loss = net.forward(x, Weights.of(fast)).square().mean();
      List<Tensor> viaFast = Autograd.grad(loss, new ArrayList<>(fast.values()), false);
      List<Tensor> viaParams = Autograd.grad(net.forward(x).square().mean(), net.parameters(), false);
      for (int i = 0; i < viaFast.size(); i++) Ref.assertClose(viaFast.get(i), viaParams.get(i), 1e-15, 1e-13);
      // fast weights made from constants: the module's parameters get nothing
      Map<String, Tensor> constants = new LinkedHashMap<>();
      for (var e : net.namedParameters().entrySet()) constants.put(e.getKey(), e.getValue().detach().mul(2.0));
      Tensor l2 = net.forward(x, Weights.of(constants)).sum();
      assertFalse(l2.requiresGrad());
      assertThrows(MetakernelsException.class, () -> Autograd.grad(l2, net.parameters(), false));
    }
  }

  @Test
  void moduleErrors() {
    try (Scope s = Scope.open(); Linear lin = new Linear(4, 2, true, DType.F64, CPU, 1)) {
      Tensor x = Tensor.ones(new long[] {3, 5}, DType.F64, CPU);
      var e = assertThrows(MetakernelsException.class, () -> lin.forward(x));
      assertTrue(e.getMessage().contains("linear") && e.getMessage().contains("[3, 5]"), e.getMessage());
      var e2 = assertThrows(MetakernelsException.class, () -> lin.forward(Tensor.ones(new long[] {3, 4}, DType.F32, CPU)));
      assertTrue(e2.getMessage().contains("F32[3, 4]"), e2.getMessage());
    }
  }
}
