package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BiFunction;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** Elementwise unary, binary (broadcasting), scalar and comparison ops against float64 loops. */
class ElementwiseTest {
  static final Device CPU = Device.CPU;

  /** Shapes with size-1 dims, sizes that are not multiples of 8 or 16, a 0-d one and a large one (parallel path). */
  static final int[][] SHAPES = {{}, {1}, {7}, {3, 1, 5}, {17, 33}, {2, 1, 9, 13}, {211, 197}};

  /** One unary op: the library call, the reference, and the input domain. */
  record Unary(String name, BiFunction<Tensor, DType, Tensor> op, BiFunction<Double, DType, Double> ref, double lo,
      double hi, boolean awayFromZero) {
    static Unary of(String name, Function<Tensor, Tensor> op, DoubleUnaryOperator ref, double lo, double hi) {
      return new Unary(name, (t, d) -> op.apply(t), (x, d) -> ref.applyAsDouble(x), lo, hi, false);
    }

    @Override
    public String toString() {
      return name;
    }
  }

  /** A scalar parameter as the kernel sees it: rounded to float for F32. */
  static double param(double p, DType d) {
    return d == DType.F32 ? (double) (float) p : p;
  }

  static double gelu(double x) {
    double c = Math.sqrt(2.0 / Math.PI);
    return 0.5 * x * (1.0 + Math.tanh(c * (x + 0.044715 * x * x * x)));
  }

  static List<Unary> unaryOps() {
    List<Unary> u = new ArrayList<>();
    u.add(Unary.of("neg", Tensor::neg, x -> -x, -3, 3));
    u.add(Unary.of("exp", Tensor::exp, Math::exp, -6, 6));
    u.add(Unary.of("log", Tensor::log, Math::log, 0.01, 20));
    u.add(Unary.of("log1p", Tensor::log1p, Math::log1p, -0.9, 5));
    u.add(Unary.of("tanh", Tensor::tanh, Math::tanh, -5, 5));
    // the tails: x << 0 (softplus ~ exp(x), relative accuracy through the Goldberg log1p) and x >> 0
    u.add(Unary.of("softplus", Tensor::softplus, x -> x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)), -60, 60));
    u.add(Unary.of("sigmoid", Tensor::sigmoid, x -> 1.0 / (1.0 + Math.exp(-x)), -30, 30));
    u.add(new Unary("relu", (t, d) -> t.relu(), (x, d) -> x > 0 ? x : 0.0, 0.05, 3, true));
    u.add(Unary.of("gelu", Tensor::gelu, ElementwiseTest::gelu, -4, 4));
    u.add(Unary.of("elu1", Tensor::elu1, x -> x > 0 ? x + 1 : Math.exp(x), -5, 5));
    u.add(Unary.of("sqrt", Tensor::sqrt, Math::sqrt, 0.0, 50));
    u.add(Unary.of("rsqrt", Tensor::rsqrt, x -> 1 / Math.sqrt(x), 0.01, 50));
    u.add(Unary.of("square", Tensor::square, x -> x * x, -4, 4));
    for (double p : new double[] {3.0, 0.5, -1.5, 2.0, 1.0, 0.0})
      u.add(Unary.of("pow(" + p + ")", t -> t.pow(p), x -> Math.pow(x, p), 0.05, 4));
    u.add(new Unary("abs", (t, d) -> t.abs(), (x, d) -> Math.abs(x), 0.01, 3, true));
    u.add(new Unary("sign", (t, d) -> t.sign(), (x, d) -> Math.signum(x), 0.01, 3, true));
    u.add(new Unary("reciprocal", (t, d) -> t.reciprocal(), (x, d) -> 1 / x, 0.05, 5, true));
    u.add(Unary.of("cos", Tensor::cos, Math::cos, -7, 7));
    u.add(Unary.of("sin", Tensor::sin, Math::sin, -7, 7));
    u.add(new Unary("clampMin(0.3)", (t, d) -> t.clampMin(0.3), (x, d) -> Math.max(x, param(0.3, d)), -2, 2, false));
    u.add(new Unary("clampMax(-0.2)", (t, d) -> t.clampMax(-0.2), (x, d) -> Math.min(x, param(-0.2, d)), -2, 2, false));
    // scalar forms
    u.add(new Unary("add(0.7)", (t, d) -> t.add(0.7), (x, d) -> x + param(0.7, d), -3, 3, false));
    u.add(new Unary("sub(1.3)", (t, d) -> t.sub(1.3), (x, d) -> x + param(-1.3, d), -3, 3, false));
    u.add(new Unary("mul(-2.5)", (t, d) -> t.mul(-2.5), (x, d) -> x * param(-2.5, d), -3, 3, false));
    u.add(new Unary("div(3.0)", (t, d) -> t.div(3.0), (x, d) -> x * param(1.0 / 3.0, d), -3, 3, false));
    u.add(new Unary("rsub(0.25)", (t, d) -> t.rsub(0.25), (x, d) -> param(0.25, d) - x, -3, 3, false));
    return u;
  }

  static Stream<Arguments> unaryCases() {
    List<Arguments> a = new ArrayList<>();
    for (Unary u : unaryOps()) for (DType d : new DType[] {DType.F64, DType.F32}) a.add(Arguments.of(u, d));
    return a.stream();
  }

  static Nd input(Random r, Unary u, DType d, int... shape) {
    Nd x = u.awayFromZero() ? Nd.awayFromZero(r, u.lo(), u.hi(), shape) : Nd.uniform(r, u.lo(), u.hi(), shape);
    return d == DType.F32 ? x.roundToFloat() : x;
  }

  static Nd refUnary(Unary u, DType d, Nd x) {
    return x.map(v -> u.ref().apply(v, d));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("unaryCases")
  void unaryMatchesReference(Unary u, DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(u.name().hashCode() * 31L + d.ordinal());
      for (int[] shape : SHAPES) {
        Nd x = input(r, u, d, shape);
        Tensor t = x.tensor(d);
        Tensor y = u.op().apply(t, d);
        assertEquals(d, y.dtype(), u.name());
        Ref.assertClose(y, refUnary(u, d, x));
        Ref.assertValues(t, x.data);  // input untouched
      }
      // a non-contiguous (transposed) and an offset (narrowed) input
      Nd x = input(r, u, d, 9, 14);
      Tensor t = x.tensor(d);
      Ref.assertClose(u.op().apply(t.mT(), d), refUnary(u, d, x.transpose(0, 1)));
      Ref.assertClose(u.op().apply(t.narrow(1, 3, 7), d), refUnary(u, d, x.narrow(1, 3, 7)));
      Ref.assertClose(u.op().apply(t.narrow(0, 2, 5), d), refUnary(u, d, x.narrow(0, 2, 5)));
    }
  }

  /**
   * softplus keeps its relative accuracy in both tails: for x << 0 it is ~exp(x), which a plain
   * log(1 + exp(x)) rounds to 0 (guards the Goldberg log1p of kernels/cpu/elementwise.cpp), and
   * for x >> 0 it is x without overflow.
   */
  @Test
  void softplusKeepsRelativeAccuracyInTheTails() {
    try (Scope s = Scope.open()) {
      double[] xs = {-800, -700, -80, -40, -17, -5, -0.5, 0, 0.5, 5, 17, 40, 80, 800};
      for (DType d : new DType[] {DType.F64, DType.F32}) {
        double[] y = Tensor.of(xs, xs.length).to(d).softplus().toDoubleArray();
        double rel = d == DType.F64 ? 1e-14 : 1e-6;
        double tiny = d == DType.F64 ? Double.MIN_NORMAL : Float.MIN_NORMAL;
        for (int i = 0; i < xs.length; i++) {
          double x = d == DType.F64 ? xs[i] : (float) xs[i];
          double ref = x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
          if (Math.abs(ref) < tiny) assertEquals(0.0, y[i], tiny, d + " softplus(" + x + ")");
          else assertEquals(ref, y[i], rel * ref, d + " softplus(" + x + ")");
        }
      }
    }
  }

  @Test
  void sigmoidIsStableForLargeMagnitudes() {
    try (Scope s = Scope.open()) {
      Nd x = new Nd(new double[] {-800, -50, -30, 0, 30, 50, 800}, 7);
      for (DType d : new DType[] {DType.F64, DType.F32}) {
        double[] y = x.tensor(d).sigmoid().toDoubleArray();
        for (double v : y) assertTrue(Double.isFinite(v) && v >= 0 && v <= 1, d + " " + v);
        assertEquals(0.5, y[3], 0);
        assertEquals(1.0, y[6], 0);
        assertEquals(0.0, y[0], 1e-300);
      }
      Ref.assertClose(x.f64().sigmoid(), x.map(v -> 1 / (1 + Math.exp(-v))), 1e-300, 1e-12);
    }
  }

  @Test
  void signOfZeroIsZeroAndReluOfNegativeIsZero() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.of(new double[] {-2, -0.0, 0, 3}, 4);
      Ref.assertValues(x.sign(), -1, 0, 0, 1);
      Ref.assertValues(x.relu(), 0, 0, 0, 3);
      Ref.assertValues(x.abs(), 2, 0, 0, 3);
      Ref.assertValues(x.clampMin(-1), -1, -0.0, 0, 3);
    }
  }

  /**
   * NaN propagates through relu, maximum and minimum whichever side it is on, as in PyTorch (it was
   * dropped when on the left of maximum / minimum, and relu(NaN) was 0), in the fused linear
   * layer's ReLU as well, in F32 and F64, on vector-width rows and their tails.
   */
  @Test
  void nanPropagatesThroughReluMaximumAndMinimum() {
    for (DType d : new DType[] {DType.F64, DType.F32}) {
      try (Scope s = Scope.open()) {
        int n = 37;
        double[] a = new double[n], b = new double[n];
        for (int i = 0; i < n; i++) {
          a[i] = i % 3 == 0 ? Double.NaN : i - 18;
          b[i] = i % 5 == 0 ? Double.NaN : 18 - i;
        }
        Tensor ta = Tensor.of(a, n).to(d), tb = Tensor.of(b, n).to(d);
        double[] mx = ta.maximum(tb).toDoubleArray(), mn = ta.minimum(tb).toDoubleArray();
        double[] mxr = tb.maximum(ta).toDoubleArray(), mnr = tb.minimum(ta).toDoubleArray();
        double[] relu = ta.relu().toDoubleArray();
        for (int i = 0; i < n; i++) {
          boolean nan = Double.isNaN(a[i]) || Double.isNaN(b[i]);
          String at = d + " [" + i + "] of " + a[i] + ", " + b[i];
          assertEquals(nan ? Double.NaN : Math.max(a[i], b[i]), mx[i], 0, "maximum " + at);
          assertEquals(nan ? Double.NaN : Math.max(a[i], b[i]), mxr[i], 0, "maximum reversed " + at);
          assertEquals(nan ? Double.NaN : Math.min(a[i], b[i]), mn[i], 0, "minimum " + at);
          assertEquals(nan ? Double.NaN : Math.min(a[i], b[i]), mnr[i], 0, "minimum reversed " + at);
          assertEquals(Double.isNaN(a[i]) ? Double.NaN : Math.max(a[i], 0), relu[i], 0, "relu " + at);
        }
        // the fused linear layer's ReLU: x = [[0, -1, 2]], W = I, the NaN from the bias
        Tensor x = Tensor.of(new double[] {0, -1, 2}, 1, 3).to(d);
        Tensor w = Tensor.of(new double[] {1, 0, 0, 0, 1, 0, 0, 0, 1}, 3, 3).to(d);
        Tensor bias = Tensor.of(new double[] {Double.NaN, 0, 0}, 3).to(d);
        double[] y = org.metakernels.ops.Functional.linear(x, w, bias, org.metakernels.nn.Activation.RELU).toDoubleArray();
        assertTrue(Double.isNaN(y[0]), d + " fused linear ReLU of NaN: " + y[0]);
        assertEquals(0, y[1], 0);
        assertEquals(2, y[2], 0);
      }
    }
  }

  /**
   * pow's derivatives are 0 where PyTorch's are, not 0 · inf = NaN: d(x^0)/dx at x = 0, d(a^b)/da
   * where b = 0, d(a^b)/db where a = 0 and b >= 0; elsewhere b a^(b-1) and a^b log a.
   */
  @Test
  void powDerivativesAtZero() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.of(new double[] {0, 1, 2}, 3).requiresGrad(true);
      Ref.assertValues(org.metakernels.autograd.Autograd.grad(x.pow(0.0).sum(), List.of(x), false).get(0), 0, 0, 0);
      Tensor a = Tensor.of(new double[] {0, 0, 0, 2, 2}, 5).requiresGrad(true);
      Tensor b = Tensor.of(new double[] {0, 2, -1, 0, 3}, 5).requiresGrad(true);
      var g = org.metakernels.autograd.Autograd.grad(a.pow(b).sum(), List.of(a, b), false);
      // da: b a^(b-1): 0 (b = 0), 2 · 0 = 0, -1 · 0^-2 = -inf, 0 (b = 0), 3 · 4 = 12
      Ref.assertValues(g.get(0), 0, 0, Double.NEGATIVE_INFINITY, 0, 12);
      // db: a^b log a: 0 (a = 0, b >= 0) twice, inf · -inf = -inf, 1 · log 2, 8 log 2
      assertArrayEquals(new double[] {0, 0, Double.NEGATIVE_INFINITY, Math.log(2), 8 * Math.log(2)},
          g.get(1).toDoubleArray(), 1e-14);
    }
  }

  // ---- binary ------------------------------------------------------------------------------

  record Binary(String name, BiFunction<Tensor, Tensor, Tensor> op, DoubleBinaryOperator ref, String domain) {
    @Override
    public String toString() {
      return name;
    }
  }

  static List<Binary> binaryOps() {
    return List.of(
        new Binary("add", Tensor::add, Double::sum, "any"),
        new Binary("sub", Tensor::sub, (a, b) -> a - b, "any"),
        new Binary("mul", Tensor::mul, (a, b) -> a * b, "any"),
        new Binary("div", Tensor::div, (a, b) -> a / b, "divisor"),
        new Binary("pow", Tensor::pow, Math::pow, "pow"),
        new Binary("maximum", Tensor::maximum, Math::max, "any"),
        new Binary("minimum", Tensor::minimum, Math::min, "any"),
        new Binary("eq", Tensor::eq, (a, b) -> a == b ? 1 : 0, "ties"),
        new Binary("ne", Tensor::ne, (a, b) -> a != b ? 1 : 0, "ties"),
        new Binary("lt", Tensor::lt, (a, b) -> a < b ? 1 : 0, "ties"),
        new Binary("le", Tensor::le, (a, b) -> a <= b ? 1 : 0, "ties"),
        new Binary("gt", Tensor::gt, (a, b) -> a > b ? 1 : 0, "ties"),
        new Binary("ge", Tensor::ge, (a, b) -> a >= b ? 1 : 0, "ties"));
  }

  /** Pairs of broadcastable shapes, 0-d and large ones included. */
  static final int[][][] PAIRS = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{5, 1, 7}, {1, 6, 1}}, {{1}, {9, 2}}, {{}, {3, 2}}, {{4, 3}, {}},
      {{2, 3, 1, 17}, {3, 16, 1}}, {{1, 1}, {1}}, {{13, 1}, {1, 11}}, {{200, 210}, {210}}, {{201, 1}, {201, 209}}};

  static Stream<Arguments> binaryCases() {
    List<Arguments> a = new ArrayList<>();
    for (Binary b : binaryOps()) for (DType d : new DType[] {DType.F64, DType.F32}) a.add(Arguments.of(b, d));
    return a.stream();
  }

  static Nd operand(Random r, String domain, boolean second, DType d, int... shape) {
    Nd x = switch (domain) {
      case "divisor" -> second ? Nd.awayFromZero(r, 0.2, 3, shape) : Nd.uniform(r, -3, 3, shape);
      case "pow" -> second ? Nd.uniform(r, -2, 2, shape) : Nd.uniform(r, 0.1, 3, shape);
      case "ties" -> Nd.uniform(r, 0, 4, shape).map(v -> Math.floor(v) - 1);
      default -> Nd.uniform(r, -3, 3, shape);
    };
    return d == DType.F32 ? x.roundToFloat() : x;
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("binaryCases")
  void binaryBroadcastsLikeReference(Binary op, DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(op.name().hashCode() + 7L * d.ordinal());
      for (int[][] pair : PAIRS) {
        Nd a = operand(r, op.domain(), false, d, pair[0]), b = operand(r, op.domain(), true, d, pair[1]);
        Tensor ta = a.tensor(d), tb = b.tensor(d);
        Tensor y = op.op().apply(ta, tb);
        assertEquals(d, y.dtype());
        Ref.assertClose(y, Nd.zip(a, b, op.ref()));
        // operands swapped (broadcast on the other side)
        if (!op.domain().equals("divisor") && !op.domain().equals("pow"))
          Ref.assertClose(op.op().apply(tb, ta), Nd.zip(b, a, op.ref()));
      }
      // non-contiguous operands: a transposed matrix against a broadcast row and a transposed one
      Nd a = operand(r, op.domain(), false, d, 12, 9), b = operand(r, op.domain(), true, d, 9, 12);
      Nd row = operand(r, op.domain(), true, d, 12);
      Ref.assertClose(op.op().apply(a.tensor(d).mT(), b.tensor(d)), Nd.zip(a.transpose(0, 1), b, op.ref()));
      Ref.assertClose(op.op().apply(a.tensor(d).mT(), row.tensor(d).narrow(0, 3, 9).unsqueeze(1)),
          Nd.zip(a.transpose(0, 1), row.narrow(0, 3, 9).reshape(9, 1), op.ref()));
      Ref.assertClose(op.op().apply(b.tensor(d).mT(), a.tensor(d).mT().mT()),
          Nd.zip(b.transpose(0, 1), a, op.ref()));
    }
  }

  @Test
  void comparisonsWithScalarAndNoGradient() {
    for (DType d : new DType[] {DType.F64, DType.F32}) {
      try (Scope s = Scope.open()) {
        Nd x = new Nd(new double[] {-1, 0, 0.5, 1, 2, 0.5}, 2, 3);
        Tensor t = x.tensor(d);
        Ref.assertClose(t.gt(0.5), x.map(v -> v > 0.5 ? 1 : 0), 0, 0);
        Ref.assertClose(t.lt(0.5), x.map(v -> v < 0.5 ? 1 : 0), 0, 0);
        Tensor g = Tensor.of(new double[] {1, 2}, 2).to(d).requiresGrad(true);
        assertFalse(g.gt(Tensor.scalar(1.5, d, CPU)).requiresGrad(), "comparisons carry no gradient");
        assertFalse(g.sign().requiresGrad(), "sign carries no gradient");
      }
    }
  }

  @Test
  void whereBroadcastsAllThree() {
    for (DType d : new DType[] {DType.F64, DType.F32}) {
      try (Scope s = Scope.open()) {
        Random r = new Random(5);
        int[][][] triples = {{{3, 4}, {3, 4}, {3, 4}}, {{3, 1}, {4}, {3, 4}}, {{5, 1, 6}, {1, 7, 1}, {}},
            {{}, {2, 3}, {3}}, {{210, 1}, {1, 200}, {200}}};
        for (int[][] tr : triples) {
          Nd c = Nd.uniform(r, 0, 1, tr[0]).map(v -> v < 0.5 ? 0 : (v < 0.75 ? 1 : -2));
          Nd a = Nd.uniform(r, -3, 3, tr[1]).roundToFloat(), b = Nd.uniform(r, -3, 3, tr[2]).roundToFloat();
          Tensor y = Tensor.where(c.tensor(d), a.tensor(d), b.tensor(d));
          Ref.assertClose(y, Nd.where(c, a, b), 0, 0);
        }
        // non-contiguous condition
        Nd c = Nd.uniform(r, 0, 1, 6, 5).map(v -> v < 0.5 ? 0 : 1);
        Nd a = Nd.uniform(r, -3, 3, 5, 6).roundToFloat(), b = Nd.uniform(r, -3, 3, 5).roundToFloat();
        Ref.assertClose(Tensor.where(c.tensor(d).mT(), a.tensor(d), b.tensor(d).unsqueeze(1)),
            Nd.where(c.transpose(0, 1), a, b.reshape(5, 1)), 0, 0);
      }
    }
  }

  @Test
  void scalarOpsAgreeWithTensorOps() {
    try (Scope s = Scope.open()) {
      Nd x = Nd.uniform(new Random(3), -2, 2, 4, 5);
      Tensor t = x.f64();
      Tensor c = Tensor.scalar(1.75, DType.F64, CPU);
      Ref.assertClose(t.add(1.75), t.add(c), 0, 0);
      Ref.assertClose(t.sub(1.75), t.sub(c), 0, 0);
      Ref.assertClose(t.mul(1.75), t.mul(c), 0, 0);
      Ref.assertClose(t.div(1.75), t.div(c), 1e-16, 1e-15);
      Ref.assertClose(t.rsub(1.75), c.sub(t), 0, 0);
      Ref.assertClose(t.pow(3.0), t.pow(Tensor.scalar(3.0, DType.F64, CPU)), 1e-15, 1e-14);
    }
  }

  @Test
  void inPlaceOpsWriteThroughViews() {
    try (Scope s = Scope.open()) {
      Nd x = Nd.uniform(new Random(9), -2, 2, 4, 6), o = Nd.uniform(new Random(10), -2, 2, 6);
      Tensor t = x.f64();
      t.addInPlace(o.f64());
      Ref.assertClose(t, Nd.zip(x, o, Double::sum));
      Tensor u = x.f64();
      u.mT().mulInPlace(2.0);  // strided in-place write
      Ref.assertClose(u, x.map(v -> 2 * v));
      Tensor w = x.f64();
      w.narrow(1, 1, 3).fillInPlace(7);
      Nd expect = x.copy();
      for (int i = 0; i < 4; i++) for (int j = 1; j < 4; j++) expect.data[i * 6 + j] = 7;
      Ref.assertClose(w, expect);
      Tensor z = x.f64();
      z.subInPlace(o.f64()).mulInPlace(o.f64());
      Ref.assertClose(z, Nd.zip(Nd.zip(x, o, (a, b) -> a - b), o, (a, b) -> a * b));
      Tensor q = Tensor.zeros(new long[] {4, 6}, DType.F64, CPU);
      q.copyInPlace(o.f64());
      Ref.assertClose(q, o.expand(4, 6));
    }
  }

  /**
   * Binary ops on two operands dense in one permuted order (head views of [B, N, H, D] tensors, a
   * transpose) give the result in that layout, computed flat over memory; the values are those of
   * contiguous copies. Mixed layouts, expanded dims and broadcasts keep a contiguous result.
   */
  @Test
  void binaryOpsKeepASharedPermutedLayout() {
    try (Scope s = Scope.open()) {
      Tensor a0 = Tensor.randn(new long[] {2, 7, 3, 5}, DType.F64, CPU, 1), b0 = Tensor.randn(new long[] {2, 7, 3, 5}, DType.F64, CPU, 2);
      Tensor a = a0.permute(0, 2, 1, 3), b = b0.permute(0, 2, 1, 3);  // [2, 3, 7, 5] head views
      Tensor ac = a.copyContiguous(), bc = b.copyContiguous();
      for (var op : List.<BiFunction<Tensor, Tensor, Tensor>>of(Tensor::add, Tensor::sub, Tensor::mul, Tensor::div,
          Tensor::maximum)) {
        Tensor y = op.apply(a, b);
        assertTrue(y.permute(0, 2, 1, 3).isContiguous(), "laid out as the operands");
        assertArrayEquals(op.apply(ac, bc).toDoubleArray(), y.toDoubleArray());
      }
      // a size-1 dim and a transpose of a matrix batch
      Tensor m = Tensor.randn(new long[] {4, 1, 3, 6}, DType.F64, CPU, 3).mT();  // [4, 1, 6, 3]
      Tensor n = Tensor.randn(new long[] {4, 1, 3, 6}, DType.F64, CPU, 4).mT();
      Tensor y = m.add(n);
      assertFalse(y.isContiguous());
      assertArrayEquals(m.copyContiguous().add(n.copyContiguous()).toDoubleArray(), y.toDoubleArray());
      // mixed layouts, a broadcast and an expanded operand: contiguous results, as before
      assertTrue(a.add(bc).isContiguous());
      assertTrue(a.add(Tensor.randn(new long[] {5}, DType.F64, CPU, 5)).isContiguous());
      Tensor e = Tensor.randn(new long[] {2, 3, 1, 5}, DType.F64, CPU, 6).expand(2, 3, 7, 5);
      assertTrue(e.add(e).isContiguous());
      assertArrayEquals(e.copyContiguous().mul(2.0).toDoubleArray(), e.add(e).toDoubleArray());
      // gradients through it
      Tensor x = a0.detach().requiresGrad(true);
      Tensor g = org.metakernels.autograd.Autograd.grad(x.permute(0, 2, 1, 3).mul(b).sum(), List.of(x), false).get(0);
      assertArrayEquals(b0.toDoubleArray(), g.copyContiguous().toDoubleArray());
    }
  }
}
