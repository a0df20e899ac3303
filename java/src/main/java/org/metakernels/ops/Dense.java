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
 * Elementwise ops with NumPy broadcasting, on F32 and F64 (the ops behind {@link Tensor}'s
 * arithmetic methods). Each op's backward rule sits beside it and is made of differentiable ops,
 * so second and higher derivatives work through all of them; gradients of broadcast operands
 * are summed back to their shapes.
 *
 * <pre>{@code
 * Tensor y = Dense.tanh(Dense.add(x, b));    // x [B, D], b [D]: y [B, D]
 * }</pre>
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
        x.address(op), x.strides(), y.address(op), p, x.launchStream()), () -> op + " " + x.describe());
    return y;
  }

  static Tensor binaryRaw(String op, int code, Tensor a, Tensor b) {
    Checks.compatible(op, a, b);
    long[] out = Checks.broadcast(op, a.shape(), b.shape());
    int[] order = sharedDenseOrder(a, b, out);
    if (order != null) {
      // a and b dense in one permuted order (head views, transposes, gradients laid out as their
      // operands): the result takes that layout and the kernel runs flat over memory, as on
      // contiguous operands, instead of walking a transposition (the layout PyTorch's
      // TensorIterator would give the result too)
      int r = out.length;
      long[] ps = new long[r];
      for (int i = 0; i < r; i++) ps[i] = out[order[i]];
      Tensor ap = Views.viewRaw(a, ps, Tensor.contiguousStrides(ps), a.offset());
      Tensor bp = Views.viewRaw(b, ps, Tensor.contiguousStrides(ps), b.offset());
      Tensor yp = binaryRaw(op, code, ap, bp);
      long[] ys = new long[r], yps = yp.strides();
      for (int i = 0; i < r; i++) ys[order[i]] = yps[i];
      return Views.viewRaw(yp, out, ys, yp.offset());
    }
    Tensor y = Tensor.empty(out, a.dtype(), a.device());
    Native.check(MkNative.mk_dense_binary_forward(a.device().code, a.dtype().code, code, out.length, out,
        a.address(op), Checks.broadcastStrides(a, out), b.address(op), Checks.broadcastStrides(b, out),
        y.address(op), a.launchStream()), () -> op + " " + a.describe() + ", " + b.describe());
    return y;
  }

  /**
   * The dim order (outermost first) in which a and b, both of the result's shape and with the same
   * strides, are dense with unit-stride innermost dim, when that is not their own order; else null.
   */
  static int[] sharedDenseOrder(Tensor a, Tensor b, long[] out) {
    if (a.isContiguous() || !Arrays.equals(a.shape(), out) || !Arrays.equals(b.shape(), out)
        || !Arrays.equals(a.strides(), b.strides()))
      return null;
    return Views.denseOrder(a);
  }

  private static Tensor unary(String op, int code, Tensor x, double p, java.util.function.BiFunction<Tensor, Tensor, Tensor> rule) {
    Tensor y = unaryRaw(op, code, x, p);
    // elementwise: the Jacobian is diagonal, so the backward rule applied to a tangent is the
    // forward rule
    return Autograd.record(op, y, new Tensor[] {x}, g -> new Tensor[] {rule.apply(g[0], y)},
        t -> new Tensor[] {rule.apply(t[0], y)});
  }

  // ---- binary -------------------------------------------------------------------------------

  /**
   * {@code a + b}, broadcast.
   * {@code Dense.add(x, b)} of [B, D] and [D] is [B, D].
   *
   * @param a left operand, F32 or F64
   * @param b right operand, same dtype and device
   * @return the result, in the broadcast shape
   */
  public static Tensor add(Tensor a, Tensor b) {
    Tensor y = binaryRaw("add", BINARY_ADD, a, b);
    return Autograd.record("add", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].sumTo(b.shape()) : null},
        t -> new Tensor[] {tangentSum(y, t[0], t[1], false)});
  }

  /**
   * {@code a − b}, broadcast.
   * {@code Dense.sub(x, mu)} of [B, D] and [B, 1] is [B, D].
   *
   * @param a left operand, F32 or F64
   * @param b right operand, same dtype and device
   * @return the result, in the broadcast shape
   */
  public static Tensor sub(Tensor a, Tensor b) {
    Tensor y = binaryRaw("sub", BINARY_SUB, a, b);
    return Autograd.record("sub", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].neg().sumTo(b.shape()) : null},
        t -> new Tensor[] {tangentSum(y, t[0], t[1], true)});
  }

  /**
   * {@code a · b}, broadcast.
   * {@code Dense.mul(x, w)} of [B, D] and [D] is [B, D].
   *
   * @param a left operand, F32 or F64
   * @param b right operand, same dtype and device
   * @return the result, in the broadcast shape
   */
  public static Tensor mul(Tensor a, Tensor b) {
    Tensor y = binaryRaw("mul", BINARY_MUL, a, b);
    return Autograd.record("mul", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].mul(b).sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].mul(a).sumTo(b.shape()) : null},
        t -> new Tensor[] {tangentSum(y, t[0] == null ? null : t[0].mul(b), t[1] == null ? null : t[1].mul(a), false)});
  }

  /**
   * {@code a / b}, broadcast.
   * {@code Dense.div(x, n)} of [B, D] and [B, 1] is [B, D].
   *
   * @param a left operand, F32 or F64
   * @param b right operand, same dtype and device
   * @return the result, in the broadcast shape
   */
  public static Tensor div(Tensor a, Tensor b) {
    Tensor y = binaryRaw("div", BINARY_DIV, a, b);
    return Autograd.record("div", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].div(b).sumTo(a.shape()) : null,
        b.requiresGrad() ? g[0].mul(a).div(b.square()).neg().sumTo(b.shape()) : null},
        t -> new Tensor[] {  // (ta − y·tb) / b
            fit(y, (t[1] == null ? t[0] : t[0] == null ? t[1].mul(y).neg() : t[0].sub(t[1].mul(y))).div(b))});
  }

  /**
   * {@code a^b}, broadcast; differentiable in both (b's gradient uses log a).
   * {@code Dense.pow(x, p)} of [B, D] and [D] is [B, D].
   *
   * @param a left operand, F32 or F64
   * @param b right operand, same dtype and device
   * @return the result, in the broadcast shape
   */
  public static Tensor pow(Tensor a, Tensor b) {
    Tensor y = binaryRaw("pow", BINARY_POW, a, b);
    return Autograd.record("pow", y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? powBaseTerm(g[0], a, b).sumTo(a.shape()) : null,
        b.requiresGrad() ? powExponentTerm(g[0], a, b, a.pow(b)).sumTo(b.shape()) : null},
        t -> new Tensor[] {tangentSum(y, t[0] == null ? null : powBaseTerm(t[0], a, b),
            t[1] == null ? null : powExponentTerm(t[1], a, b, y), false)});
  }

  // d(a^b) = b a^(b-1) da + a^b log(a) db, with PyTorch's zeros where a factor is 0 · inf: the
  // first term where b = 0 (a^0 is the constant 1, also at a = 0), the second where a = 0 and
  // b >= 0 (0^b is constant near such b > 0, and 0^0 = 1 is taken as the limit from b > 0).
  private static Tensor powBaseTerm(Tensor g, Tensor a, Tensor b) {
    Tensor term = g.mul(b).mul(a.pow(b.sub(1.0)));
    return where(compareScalar(b, 0.0, BINARY_EQ, "eq"), Tensor.scalar(0.0, term.dtype(), term.device()), term);
  }

  private static Tensor powExponentTerm(Tensor g, Tensor a, Tensor b, Tensor y) {
    Tensor term = g.mul(y).mul(a.log());
    Tensor flat = compareScalar(a, 0.0, BINARY_EQ, "eq").mul(compareScalar(b, 0.0, BINARY_GE, "ge"));
    return where(flat, Tensor.scalar(0.0, term.dtype(), term.device()), term);
  }

  /**
   * Elementwise max, broadcast; NaN where either operand is NaN (as PyTorch); on ties the
   * gradient goes to a.
   * {@code Dense.maximum(x, y)} of [B, D] and [] is [B, D].
   *
   * @param a left operand, F32 or F64
   * @param b right operand, same dtype and device
   * @return the result, in the broadcast shape
   */
  public static Tensor maximum(Tensor a, Tensor b) {
    Tensor y = binaryRaw("maximum", BINARY_MAX, a, b);
    return Autograd.record("maximum", y, new Tensor[] {a, b}, g -> {
      Tensor takeA = compare(a, b, BINARY_GE, "ge");
      return new Tensor[] {
          a.requiresGrad() ? g[0].mul(takeA).sumTo(a.shape()) : null,
          b.requiresGrad() ? g[0].mul(takeA.rsub(1.0)).sumTo(b.shape()) : null};
    }, t -> new Tensor[] {tangentWhere(y, compare(a, b, BINARY_GE, "ge"), t[0], t[1])});
  }

  /**
   * Elementwise min, broadcast; NaN where either operand is NaN (as PyTorch); on ties the
   * gradient goes to a.
   * {@code Dense.minimum(x, y)} of [B, D] and [] is [B, D].
   *
   * @param a left operand, F32 or F64
   * @param b right operand, same dtype and device
   * @return the result, in the broadcast shape
   */
  public static Tensor minimum(Tensor a, Tensor b) {
    Tensor y = binaryRaw("minimum", BINARY_MIN, a, b);
    return Autograd.record("minimum", y, new Tensor[] {a, b}, g -> {
      Tensor takeA = compare(a, b, BINARY_LE, "le");
      return new Tensor[] {
          a.requiresGrad() ? g[0].mul(takeA).sumTo(a.shape()) : null,
          b.requiresGrad() ? g[0].mul(takeA.rsub(1.0)).sumTo(b.shape()) : null};
    }, t -> new Tensor[] {tangentWhere(y, compare(a, b, BINARY_LE, "le"), t[0], t[1])});
  }

  /**
   * 1.0 where the comparison holds, else 0.0; no gradient. {@code code}: a
   * {@code Codes.BINARY_*} comparison. {@link Tensor}'s eq ... ge call it through
   * {@code Internals}.
   */
  static Tensor compare(Tensor a, Tensor b, int code, String op) {
    return binaryRaw(op, code, a, b);
  }

  /** {@link #compare} against the scalar {@code c}. */
  static Tensor compareScalar(Tensor a, double c, int code, String op) {
    Tensor cs = Tensor.scalar(c, a.dtype(), a.device());
    return binaryRaw(op, code, a, cs);
  }

  /**
   * {@code cond != 0 ? a : b}, broadcasting all three; the gradient flows to a and b, not to cond
   * (of a's dtype and device). {@code Dense.where(m, x, y)} of [B, D], [B, D], [D] is [B, D].
   *
   * @param cond the selector
   * @param a values where cond is non-zero
   * @param b values elsewhere
   * @return the selection, in the broadcast shape
   */
  public static Tensor where(Tensor cond, Tensor a, Tensor b) {
    String op = "where";
    Checks.compatible(op, a, b);
    Checks.compatible(op, cond, a);
    long[] out = Checks.broadcast(op, Checks.broadcast(op, cond.shape(), a.shape()), b.shape());
    Tensor y = Tensor.empty(out, a.dtype(), a.device());
    Native.check(MkNative.mk_dense_where_forward(a.device().code, a.dtype().code, out.length, out,
        cond.address(op), Checks.broadcastStrides(cond, out), a.address(op), Checks.broadcastStrides(a, out),
        b.address(op), Checks.broadcastStrides(b, out), y.address(op), a.launchStream()), () -> op + " " + Checks.shapes(cond, a, b));
    return Autograd.record(op, y, new Tensor[] {a, b}, g -> {
      Tensor zero = Tensor.scalar(0.0, g[0].dtype(), g[0].device());
      return new Tensor[] {
          a.requiresGrad() ? where(cond, g[0], zero).sumTo(a.shape()) : null,
          b.requiresGrad() ? where(cond, zero, g[0]).sumTo(b.shape()) : null};
    }, t -> new Tensor[] {tangentWhere(y, cond, t[0], t[1])});
  }

  // ---- scalar forms ---------------------------------------------------------------------------

  /**
   * {@code x + c}; same shape. {@code Dense.addScalar(x, 1.0)}.
   *
   * @param x an F32 or F64 tensor
   * @param c the scalar
   * @return the result
   */
  public static Tensor addScalar(Tensor x, double c) {
    return unary("add", UNARY_ADD_SCALAR, x, c, (g, y) -> g);
  }

  /**
   * {@code x − c}; same shape (errors name "sub"). {@code Dense.subScalar(x, 0.5)}.
   *
   * @param x an F32 or F64 tensor
   * @param c the scalar
   * @return the result
   */
  public static Tensor subScalar(Tensor x, double c) {
    return unary("sub", UNARY_ADD_SCALAR, x, -c, (g, y) -> g);
  }

  /**
   * {@code x · c}; same shape. {@code Dense.mulScalar(x, 0.5)}.
   *
   * @param x an F32 or F64 tensor
   * @param c the scalar
   * @return the result
   */
  public static Tensor mulScalar(Tensor x, double c) {
    return unary("mul", UNARY_MUL_SCALAR, x, c, (g, y) -> g.mul(c));
  }

  /**
   * {@code x · (1 / c)} (a multiplication by the reciprocal); same shape (errors name "div").
   * {@code Dense.divScalar(x, 4.0)}.
   *
   * @param x an F32 or F64 tensor
   * @param c the scalar
   * @return the result
   */
  public static Tensor divScalar(Tensor x, double c) {
    double r = 1.0 / c;
    return unary("div", UNARY_MUL_SCALAR, x, r, (g, y) -> g.mul(r));
  }

  /**
   * {@code c − x}; same shape. {@code Dense.rsubScalar(y, 1.0)}.
   *
   * @param x an F32 or F64 tensor
   * @param c the scalar
   * @return the result
   */
  public static Tensor rsubScalar(Tensor x, double c) {
    return unary("rsub", UNARY_RSUB_SCALAR, x, c, (g, y) -> g.neg());
  }

  /**
   * {@code x^p}; same shape ({@code p} 2 is {@link #square}, {@code p} 1 a copy).
   * {@code Dense.pow(x, 3.0)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @param p the exponent
   * @return the result
   */
  public static Tensor pow(Tensor x, double p) {
    Checks.floating("pow", x);  // before the shortcuts, so that errors name pow
    if (p == 2.0) return square(x);
    if (p == 1.0) return mulScalar(x, 1.0);
    // x^0 is the constant 1: a zero gradient (not 0 · x^-1, NaN at x = 0), as PyTorch
    return unary("pow", UNARY_POW_SCALAR, x, p, (g, y) -> p == 0.0 ? g.mul(0.0) : g.mul(x.pow(p - 1.0)).mul(p));
  }

  // ---- unary ----------------------------------------------------------------------------------

  /**
   * {@code −x}; same shape as x.
   * {@code Dense.neg(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor neg(Tensor x) { return unary("neg", UNARY_NEG, x, 0, (g, y) -> g.neg()); }

  /**
   * e^x; same shape as x.
   * {@code Dense.exp(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor exp(Tensor x) { return unary("exp", UNARY_EXP, x, 0, (g, y) -> g.mul(y)); }

  /**
   * Natural log; same shape as x.
   * {@code Dense.log(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor log(Tensor x) { return unary("log", UNARY_LOG, x, 0, (g, y) -> g.div(x)); }

  /**
   * softplus(x) = log(1 + exp(x)), computed without overflow; its derivative is sigmoid(x).
   * {@code Dense.softplus(Tensor.of(new double[] {-1, 0, 1}, 3))} gives [0.3133, 0.6931, 1.3133];
   * same shape as x.
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor softplus(Tensor x) { return unary("softplus", UNARY_SOFTPLUS, x, 0, (g, y) -> g.mul(x.sigmoid())); }

  /**
   * log(1 + x), accurate near 0; same shape as x.
   * {@code Dense.log1p(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor log1p(Tensor x) { return unary("log1p", UNARY_LOG1P, x, 0, (g, y) -> g.div(x.add(1.0))); }

  /**
   * tanh x; same shape as x.
   * {@code Dense.tanh(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor tanh(Tensor x) {
    return unary("tanh", UNARY_TANH, x, 0, (g, y) -> g.mul(y.square().rsub(1.0)));
  }

  /**
   * 1 / (1 + e^−x); same shape as x.
   * {@code Dense.sigmoid(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor sigmoid(Tensor x) {
    return unary("sigmoid", UNARY_SIGMOID, x, 0, (g, y) -> g.mul(y.mul(y.rsub(1.0))));
  }

  /**
   * max(x, 0), NaN where x is NaN (as PyTorch); same shape as x; the gradient is 1 where x &gt; 0,
   * else 0.
   * {@code Dense.relu(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor relu(Tensor x) {
    return unary("relu", UNARY_RELU, x, 0, (g, y) -> g.mul(unaryRaw("step", UNARY_STEP, x, 0)));
  }

  /**
   * GELU, tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))); its derivative is
   * composed of differentiable ops. {@code Dense.gelu(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
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

  /**
   * elu(x) + 1 (x + 1 for x &gt; 0, else e^x), linear attention's positive feature map; same shape as x.
   * {@code Dense.elu1(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor elu1(Tensor x) {
    return unary("elu1", UNARY_ELU1, x, 0, (g, y) -> g.mul(elu1Grad(x)));
  }

  // d/dx (elu(x)+1) = x > 0 ? 1 : exp(x); its own derivative is (x > 0 ? 0 : exp(x)).
  static Tensor elu1Grad(Tensor x) {
    Tensor d = unaryRaw("elu1_grad", UNARY_ELU1_GRAD, x, 0);
    return Autograd.record("elu1_grad", d, new Tensor[] {x},
        g -> new Tensor[] {g[0].mul(elu1Grad(x).sub(unaryRaw("step", UNARY_STEP, x, 0)))},
        t -> new Tensor[] {t[0].mul(elu1Grad(x).sub(unaryRaw("step", UNARY_STEP, x, 0)))});
  }

  /**
   * √x; same shape as x.
   * {@code Dense.sqrt(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor sqrt(Tensor x) { return unary("sqrt", UNARY_SQRT, x, 0, (g, y) -> g.div(y).mul(0.5)); }

  /**
   * 1 / √x; same shape as x.
   * {@code Dense.rsqrt(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor rsqrt(Tensor x) {
    return unary("rsqrt", UNARY_RSQRT, x, 0, (g, y) -> g.mul(y.mul(y).mul(y)).mul(-0.5));
  }

  /**
   * x²; same shape as x.
   * {@code Dense.square(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor square(Tensor x) { return unary("square", UNARY_SQUARE, x, 0, (g, y) -> g.mul(x).mul(2.0)); }

  /**
   * |x|; same shape as x; the gradient is sign(x).
   * {@code Dense.abs(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor abs(Tensor x) {
    return unary("abs", UNARY_ABS, x, 0, (g, y) -> g.mul(unaryRaw("sign", UNARY_SIGN, x, 0)));
  }

  /**
   * −1, 0 or 1; same shape as x; piecewise constant, so not recorded (no gradient).
   * {@code Dense.sign(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor sign(Tensor x) { return unaryRaw("sign", UNARY_SIGN, x, 0); }

  /**
   * 1 / x; same shape as x.
   * {@code Dense.reciprocal(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor reciprocal(Tensor x) {
    return unary("reciprocal", UNARY_RECIPROCAL, x, 0, (g, y) -> g.mul(y.square()).neg());
  }

  /**
   * cos x; same shape as x.
   * {@code Dense.cos(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor cos(Tensor x) { return unary("cos", UNARY_COS, x, 0, (g, y) -> g.mul(x.sin()).neg()); }

  /**
   * sin x; same shape as x.
   * {@code Dense.sin(x)} of [B, D] is [B, D].
   *
   * @param x an F32 or F64 tensor
   * @return the result
   */
  public static Tensor sin(Tensor x) { return unary("sin", UNARY_SIN, x, 0, (g, y) -> g.mul(x.cos())); }

  /**
   * max(x, lo); the gradient passes where x ≥ lo. {@code Dense.clampMin(den, 1e-6)} keeps den's
   * shape.
   *
   * @param x an F32 or F64 tensor
   * @param lo the lower bound
   * @return the result
   */
  public static Tensor clampMin(Tensor x, double lo) {
    return unary("clampMin", UNARY_CLAMP_MIN, x, lo,
        (g, y) -> g.mul(compareScalar(x, lo, BINARY_LT, "lt").rsub(1.0)));
  }

  /**
   * min(x, hi); the gradient passes where x ≤ hi. {@code Dense.clampMax(x, 1.0)} keeps x's shape.
   *
   * @param x an F32 or F64 tensor
   * @param hi the upper bound
   * @return the result
   */
  public static Tensor clampMax(Tensor x, double hi) {
    return unary("clampMax", UNARY_CLAMP_MAX, x, hi,
        (g, y) -> g.mul(compareScalar(x, hi, BINARY_GT, "gt").rsub(1.0)));
  }

  // ---- in place ---------------------------------------------------------------------------------

  private static void checkInPlace(String op, Tensor t) {
    t.address(op);
    Checks.noInternalOverlap(op, t);
    if (GradMode.isEnabled() && t.requiresGrad())
      throw new MetakernelsException(op + ": " + t.describe()
          + " requires grad; in-place writes are refused while recording (use Autograd.noGrad())");
    noTangent(op, t);
  }

  /**
   * In-place writes are not recorded: while recording, a source that requires grad would have its
   * gradient through the written tensor silently dropped (PyTorch records the write), so refuse it.
   */
  private static void noGradSource(String op, Tensor src, Tensor t) {
    if (GradMode.isEnabled() && src.requiresGrad())
      throw new MetakernelsException(op + ": the source " + src.describe() + " requires grad, and in-place writes into "
          + t.describe() + " are not recorded, so its gradient would be lost; use the out-of-place op, or "
          + "Autograd.noGrad() to write its values as constants");
  }

  /** In-place ops do not update forward-mode tangents: refuse a tensor that carries one. */
  private static void noTangent(String op, Tensor t) {
    if (org.metakernels.autograd.Forward.carriesTangent(t))
      throw new MetakernelsException(op + ": " + t.describe()
          + " carries a forward-mode tangent; in-place writes would not update it (use the out-of-place op)");
  }

  /**
   * {@code o}, or a copy of it when it views the target's memory otherwise than as the very same
   * view: the kernels write t while they read o, in parallel and in no fixed order, so
   * {@code t.addInPlace(t.mT())} or {@code t.addInPlace(t.select(0, 0))} would read elements that
   * were already written (found by FuzzBadCallsTest, 2026-12-05).
   */
  private static Tensor unaliased(Tensor t, Tensor o) {
    if (o.storage() != t.storage()) return o;
    if (o.offset() == t.offset() && Arrays.equals(o.shape(), t.shape()) && Arrays.equals(o.strides(), t.strides()))
      return o;  // the same view: element i reads and writes element i only
    return o.copyContiguous();
  }

  /**
   * t = t (op) o, o broadcast to t's shape; code: a {@code Codes.BINARY_*} op. {@link Tensor}'s
   * in-place methods call these through {@code Internals}.
   */
  static Tensor inPlace(Tensor t, Tensor o, int code, String op) {
    checkInPlace(op, t);
    Checks.compatible(op, t, o);
    long[] shape = t.shape();
    long[] out = Checks.broadcast(op, shape, o.shape());
    if (!Arrays.equals(out, shape))
      throw new MetakernelsException(op + ": " + o.describe() + " does not broadcast to " + t.describe());
    noGradSource(op, o, t);
    noTangent(op, o);
    Tensor oIn = o;
    o = unaliased(t, o);
    if (t.isContiguous()) {
      Native.check(MkNative.mk_dense_binary_forward(t.device().code, t.dtype().code, code, shape.length, shape,
          t.address(op), t.strides(), o.address(op), Checks.broadcastStrides(o, shape), t.address(op), t.launchStream()),
          op + " " + t.describe() + ", " + o.describe());
    } else {
      try (var ng = GradMode.set(false); Tensor r = binaryRaw(op, code, t, o)) {  // r: freed here, scope or none
        Internals.tensor().copyFrom(t, r);
      }
    }
    if (o != oIn) o.close();  // unaliased's copy
    Internals.tensor().bumpVersion(t.storage());
    return t;
  }

  static Tensor scalarInPlace(Tensor t, int code, double c, String op) {
    checkInPlace(op, t);
    Checks.floating(op, t);
    try (var ng = GradMode.set(false); Tensor r = unaryRaw(op, code, t, c)) {  // r: freed here, scope or none
      Internals.tensor().copyFrom(t, r);
    }
    Internals.tensor().bumpVersion(t.storage());
    return t;
  }

  static Tensor fillInPlace(Tensor t, double v) {
    checkInPlace("fillInPlace", t);
    if (t.isContiguous()) {
      Native.check(MkNative.mk_tensor_fill_forward(t.device().code, t.dtype().code, t.numel(), t.address("fillInPlace"),
          v, t.launchStream()), "fillInPlace " + t.describe());
    } else {
      try (Tensor one = Tensor.scalar(v, t.dtype(), t.device())) {
        Internals.tensor().copyFrom(t, one.expand(t.shape()));
      }
    }
    Internals.tensor().bumpVersion(t.storage());
    return t;
  }

  static Tensor inPlaceCopy(Tensor t, Tensor src) {
    checkInPlace("copyInPlace", t);
    src.address("copyInPlace");
    if (src.dtype() != t.dtype() || src.device() != t.device())
      throw new MetakernelsException("copyInPlace: " + src.describe() + " into " + t.describe());
    long[] out = Checks.broadcast("copyInPlace", t.shape(), src.shape());
    if (!Arrays.equals(out, t.shape()))
      throw new MetakernelsException("copyInPlace: " + src.describe() + " does not broadcast to " + t.describe());
    noGradSource("copyInPlace", src, t);
    noTangent("copyInPlace", src);
    Tensor from = unaliased(t, src);
    try (var ng = GradMode.set(false)) {
      Internals.tensor().copyFrom(t, from.expand(t.shape()));
    } finally {
      if (from != src) from.close();  // unaliased's copy
    }
    Internals.tensor().bumpVersion(t.storage());
    return t;
  }

  // ---- forward-mode helpers -----------------------------------------------------------------

  /** {@code t}, broadcast to y's shape (a tangent has its output's shape), or null. */
  static Tensor fit(Tensor y, Tensor t) {
    if (t == null || Arrays.equals(t.shape(), y.shape())) return t;
    return t.expand(y.shape());
  }

  /** The tangent ta ± tb of a broadcast sum (either may be null). */
  private static Tensor tangentSum(Tensor y, Tensor ta, Tensor tb, boolean minus) {
    if (tb == null) return fit(y, ta);
    if (ta == null) return fit(y, minus ? tb.neg() : tb);
    return fit(y, minus ? ta.sub(tb) : ta.add(tb));
  }

  /** where(cond, ta, tb) of tangents (null: zero), in y's shape. */
  private static Tensor tangentWhere(Tensor y, Tensor cond, Tensor ta, Tensor tb) {
    Tensor zero = Tensor.scalar(0.0, y.dtype(), y.device());
    return fit(y, where(cond, ta == null ? zero : ta, tb == null ? zero : tb));
  }
}
