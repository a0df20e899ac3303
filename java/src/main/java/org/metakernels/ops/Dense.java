package org.metakernels.ops;

import static org.metakernels.runtime.Codes.*;

import java.util.Arrays;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradMode;
import org.metakernels.internal.Internals;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.Tensor;

/**
 * Elementwise ops with broadcasting. Each op's backward rule sits beside it and is made of
 * differentiable ops, so second derivatives work through all of them.
 */
public final class Dense {
  private Dense() {}

  static {
    Internals.setDenseAccess(new DenseAccessImpl());
  }

  // ---- raw kernels (no autograd) ------------------------------------------------------------

  static Tensor unaryRaw(String op, int code, Tensor x, double p) {
    Checks.floating(op, x);
    Tensor y = Tensor.empty(x.shape(), x.dtype(), x.device());
    long[] shape = x.shape();
    Native.check(MkNative.mk_dense_unary_forward(x.device().code, x.dtype().code, code, shape.length, shape,
        x.address(op), x.strides(), y.address(op), p, x.stream()), op + " " + x.describe());
    return y;
  }

  static Tensor binaryRaw(String op, int code, Tensor a, Tensor b) {
    Checks.compatible(op, a, b);
    long[] out = Checks.broadcast(op, a.shape(), b.shape());
    Tensor y = Tensor.empty(out, a.dtype(), a.device());
    Native.check(MkNative.mk_dense_binary_forward(a.device().code, a.dtype().code, code, out.length, out,
        a.address(op), Checks.broadcastStrides(a, out), b.address(op), Checks.broadcastStrides(b, out),
        y.address(op), a.stream()), op + " " + a.describe() + ", " + b.describe());
    return y;
  }

  private static Tensor unary(String op, int code, Tensor x, double p, java.util.function.BiFunction<Tensor, Tensor, Tensor> rule) {
    Tensor y = unaryRaw(op, code, x, p);
    return Autograd.record(op, y, new Tensor[] {x}, g -> new Tensor[] {rule.apply(g[0], y)});
  }

  // ---- binary -------------------------------------------------------------------------------

  public static Tensor add(Tensor a, Tensor b) {
    Tensor y = binaryRaw("add", BINARY_ADD, a, b);
    return Autograd.record("add", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].sumTo(b.shape()) : null});
  }

  public static Tensor sub(Tensor a, Tensor b) {
    Tensor y = binaryRaw("sub", BINARY_SUB, a, b);
    return Autograd.record("sub", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].neg().sumTo(b.shape()) : null});
  }

  public static Tensor mul(Tensor a, Tensor b) {
    Tensor y = binaryRaw("mul", BINARY_MUL, a, b);
    return Autograd.record("mul", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].mul(b).sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].mul(a).sumTo(b.shape()) : null});
  }

  public static Tensor div(Tensor a, Tensor b) {
    Tensor y = binaryRaw("div", BINARY_DIV, a, b);
    return Autograd.record("div", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].div(b).sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].mul(a).div(b.square()).neg().sumTo(b.shape()) : null});
  }

  public static Tensor pow(Tensor a, Tensor b) {
    Tensor y = binaryRaw("pow", BINARY_POW, a, b);
    return Autograd.record("pow", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].mul(b).mul(a.pow(b.sub(1.0))).sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].mul(a.pow(b)).mul(a.log()).sumTo(b.shape()) : null});
  }

  public static Tensor maximum(Tensor a, Tensor b) {
    Tensor y = binaryRaw("maximum", BINARY_MAX, a, b);
    return Autograd.record("maximum", y, new Tensor[] {a, b}, g -> {
      Tensor takeA = compare(a, b, BINARY_GE, "ge");
      return new Tensor[] {
          a.requiresGrad() ? g[0].mul(takeA).sumTo(a.shape()) : null,
          b.requiresGrad() ? g[0].mul(takeA.rsub(1.0)).sumTo(b.shape()) : null};
    });
  }

  public static Tensor minimum(Tensor a, Tensor b) {
    Tensor y = binaryRaw("minimum", BINARY_MIN, a, b);
    return Autograd.record("minimum", y, new Tensor[] {a, b}, g -> {
      Tensor takeA = compare(a, b, BINARY_LE, "le");
      return new Tensor[] {
          a.requiresGrad() ? g[0].mul(takeA).sumTo(a.shape()) : null,
          b.requiresGrad() ? g[0].mul(takeA.rsub(1.0)).sumTo(b.shape()) : null};
    });
  }

  /** 1.0 where the comparison holds, else 0.0; no gradient. */
  static Tensor compare(Tensor a, Tensor b, int code, String op) {
    return binaryRaw(op, code, a, b);
  }

  static Tensor compareScalar(Tensor a, double c, int code, String op) {
    Tensor cs = Tensor.scalar(c, a.dtype(), a.device());
    return binaryRaw(op, code, a, cs);
  }

  /** cond != 0 ? a : b with broadcasting; gradient flows to a and b, not to cond. */
  public static Tensor where(Tensor cond, Tensor a, Tensor b) {
    String op = "where";
    Checks.compatible(op, a, b);
    Checks.compatible(op, cond, a);
    long[] out = Checks.broadcast(op, Checks.broadcast(op, cond.shape(), a.shape()), b.shape());
    Tensor y = Tensor.empty(out, a.dtype(), a.device());
    Native.check(MkNative.mk_dense_where_forward(a.device().code, a.dtype().code, out.length, out,
        cond.address(op), Checks.broadcastStrides(cond, out), a.address(op), Checks.broadcastStrides(a, out),
        b.address(op), Checks.broadcastStrides(b, out), y.address(op), a.stream()), op + " " + Checks.shapes(cond, a, b));
    return Autograd.record(op, y, new Tensor[] {a, b}, g -> {
      Tensor zero = Tensor.scalar(0.0, g[0].dtype(), g[0].device());
      return new Tensor[] {
          a.requiresGrad() ? where(cond, g[0], zero).sumTo(a.shape()) : null,
          b.requiresGrad() ? where(cond, zero, g[0]).sumTo(b.shape()) : null};
    });
  }

  // ---- scalar forms ---------------------------------------------------------------------------

  public static Tensor addScalar(Tensor x, double c) {
    return unary("add", UNARY_ADD_SCALAR, x, c, (g, y) -> g);
  }

  public static Tensor mulScalar(Tensor x, double c) {
    return unary("mul", UNARY_MUL_SCALAR, x, c, (g, y) -> g.mul(c));
  }

  public static Tensor rsubScalar(Tensor x, double c) {
    return unary("rsub", UNARY_RSUB_SCALAR, x, c, (g, y) -> g.neg());
  }

  public static Tensor pow(Tensor x, double p) {
    if (p == 2.0) return square(x);
    if (p == 1.0) return mulScalar(x, 1.0);
    return unary("pow", UNARY_POW_SCALAR, x, p, (g, y) -> g.mul(x.pow(p - 1.0)).mul(p));
  }

  // ---- unary ----------------------------------------------------------------------------------

  public static Tensor neg(Tensor x) { return unary("neg", UNARY_NEG, x, 0, (g, y) -> g.neg()); }

  public static Tensor exp(Tensor x) { return unary("exp", UNARY_EXP, x, 0, (g, y) -> g.mul(y)); }

  public static Tensor log(Tensor x) { return unary("log", UNARY_LOG, x, 0, (g, y) -> g.div(x)); }

  /**
   * softplus(x) = log(1 + exp(x)), computed without overflow; its derivative is sigmoid(x).
   * Example: {@code Dense.softplus(Tensor.of(new double[] {-1, 0, 1}, 3))} gives
   * [0.3133, 0.6931, 1.3133]; same shape as x.
   */
  public static Tensor softplus(Tensor x) { return unary("softplus", UNARY_SOFTPLUS, x, 0, (g, y) -> g.mul(x.sigmoid())); }

  public static Tensor log1p(Tensor x) { return unary("log1p", UNARY_LOG1P, x, 0, (g, y) -> g.div(x.add(1.0))); }

  public static Tensor tanh(Tensor x) {
    return unary("tanh", UNARY_TANH, x, 0, (g, y) -> g.mul(y.square().rsub(1.0)));
  }

  public static Tensor sigmoid(Tensor x) {
    return unary("sigmoid", UNARY_SIGMOID, x, 0, (g, y) -> g.mul(y.mul(y.rsub(1.0))));
  }

  public static Tensor relu(Tensor x) {
    return unary("relu", UNARY_RELU, x, 0, (g, y) -> g.mul(unaryRaw("step", UNARY_STEP, x, 0)));
  }

  /** GELU (tanh approximation); its derivative is composed of differentiable ops. */
  public static Tensor gelu(Tensor x) {
    return unary("gelu", UNARY_GELU, x, 0, (g, y) -> {
      final double c = Math.sqrt(2.0 / Math.PI), k = 0.044715;
      Tensor x2 = x.square();
      Tensor t = x.add(x.mul(x2).mul(k)).mul(c).tanh();
      Tensor left = t.add(1.0).mul(0.5);
      Tensor right = x.mul(0.5).mul(t.square().rsub(1.0)).mul(x2.mul(3 * k).add(1.0).mul(c));
      return g.mul(left.add(right));
    });
  }

  /** elu(x) + 1. */
  public static Tensor elu1(Tensor x) {
    return unary("elu1", UNARY_ELU1, x, 0, (g, y) -> g.mul(elu1Grad(x)));
  }

  // d/dx (elu(x)+1) = x > 0 ? 1 : exp(x); its own derivative is (x > 0 ? 0 : exp(x)).
  static Tensor elu1Grad(Tensor x) {
    Tensor d = unaryRaw("elu1_grad", UNARY_ELU1_GRAD, x, 0);
    return Autograd.record("elu1_grad", d, new Tensor[] {x},
        g -> new Tensor[] {g[0].mul(elu1Grad(x).sub(unaryRaw("step", UNARY_STEP, x, 0)))});
  }

  public static Tensor sqrt(Tensor x) { return unary("sqrt", UNARY_SQRT, x, 0, (g, y) -> g.div(y).mul(0.5)); }

  public static Tensor rsqrt(Tensor x) {
    return unary("rsqrt", UNARY_RSQRT, x, 0, (g, y) -> g.mul(y.mul(y).mul(y)).mul(-0.5));
  }

  public static Tensor square(Tensor x) { return unary("square", UNARY_SQUARE, x, 0, (g, y) -> g.mul(x).mul(2.0)); }

  public static Tensor abs(Tensor x) {
    return unary("abs", UNARY_ABS, x, 0, (g, y) -> g.mul(unaryRaw("sign", UNARY_SIGN, x, 0)));
  }

  /** sign(x): piecewise constant, no gradient. */
  public static Tensor sign(Tensor x) { return unaryRaw("sign", UNARY_SIGN, x, 0); }

  public static Tensor reciprocal(Tensor x) {
    return unary("reciprocal", UNARY_RECIPROCAL, x, 0, (g, y) -> g.mul(y.square()).neg());
  }

  public static Tensor cos(Tensor x) { return unary("cos", UNARY_COS, x, 0, (g, y) -> g.mul(x.sin()).neg()); }

  public static Tensor sin(Tensor x) { return unary("sin", UNARY_SIN, x, 0, (g, y) -> g.mul(x.cos())); }

  public static Tensor clampMin(Tensor x, double lo) {
    return unary("clampMin", UNARY_CLAMP_MIN, x, lo,
        (g, y) -> g.mul(compareScalar(x, lo, BINARY_LT, "lt").rsub(1.0)));
  }

  public static Tensor clampMax(Tensor x, double hi) {
    return unary("clampMax", UNARY_CLAMP_MAX, x, hi,
        (g, y) -> g.mul(compareScalar(x, hi, BINARY_GT, "gt").rsub(1.0)));
  }

  // ---- in place ---------------------------------------------------------------------------------

  private static void checkInPlace(String op, Tensor t) {
    t.address(op);
    if (GradMode.isEnabled() && t.requiresGrad())
      throw new MetakernelsException(op + ": " + t.describe()
          + " requires grad; in-place writes are refused while recording (use Autograd.noGrad())");
  }

  /** t = t (op) o, o broadcast to t's shape. */
  static Tensor inPlace(Tensor t, Tensor o, int code, String op) {
    checkInPlace(op, t);
    Checks.compatible(op, t, o);
    long[] shape = t.shape();
    long[] out = Checks.broadcast(op, shape, o.shape());
    if (!Arrays.equals(out, shape))
      throw new MetakernelsException(op + ": " + o.describe() + " does not broadcast to " + t.describe());
    if (t.isContiguous()) {
      Native.check(MkNative.mk_dense_binary_forward(t.device().code, t.dtype().code, code, shape.length, shape,
          t.address(op), t.strides(), o.address(op), Checks.broadcastStrides(o, shape), t.address(op), t.stream()),
          op + " " + t.describe() + ", " + o.describe());
    } else {
      try (var ng = GradMode.set(false)) {
        Tensor r = binaryRaw(op, code, t, o);
        Internals.tensor().copyFrom(t, r);
      }
    }
    Internals.tensor().bumpVersion(t.storage());
    return t;
  }

  static Tensor scalarInPlace(Tensor t, int code, double c, String op) {
    checkInPlace(op, t);
    Checks.floating(op, t);
    try (var ng = GradMode.set(false)) {
      Tensor r = unaryRaw(op, code, t, c);
      Internals.tensor().copyFrom(t, r);
    }
    Internals.tensor().bumpVersion(t.storage());
    return t;
  }

  static Tensor fillInPlace(Tensor t, double v) {
    checkInPlace("fillInPlace", t);
    if (t.isContiguous()) {
      Native.check(MkNative.mk_tensor_fill_forward(t.device().code, t.dtype().code, t.numel(), t.address("fillInPlace"),
          v, t.stream()), "fillInPlace " + t.describe());
    } else {
      Internals.tensor().copyFrom(t, Tensor.scalar(v, t.dtype(), t.device()).expand(t.shape()));
    }
    Internals.tensor().bumpVersion(t.storage());
    return t;
  }

  static Tensor inPlaceCopy(Tensor t, Tensor src) {
    checkInPlace("copyInPlace", t);
    if (src.dtype() != t.dtype() || src.device() != t.device())
      throw new MetakernelsException("copyInPlace: " + src.describe() + " into " + t.describe());
    long[] out = Checks.broadcast("copyInPlace", t.shape(), src.shape());
    if (!Arrays.equals(out, t.shape()))
      throw new MetakernelsException("copyInPlace: " + src.describe() + " does not broadcast to " + t.describe());
    try (var ng = GradMode.set(false)) {
      Internals.tensor().copyFrom(t, src.expand(t.shape()));
    }
    Internals.tensor().bumpVersion(t.storage());
    return t;
  }
}
