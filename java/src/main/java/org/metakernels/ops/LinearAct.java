package org.metakernels.ops;

import java.util.ArrayList;
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.Tensor;

/**
 * The fused linear layer y = act(x Wᵀ + b) behind {@link Functional#linear(Tensor, Tensor, Tensor,
 * org.metakernels.nn.Activation)}: the forward op {@code linear} and its backward op
 * {@code linearBackward}, each one native call and one tape node.
 *
 * <p>The backward of {@code linear} (gy ↦ gx, gW, gb) is the op {@code linearBackward}, with inputs
 * gy, y, x, W. Writing d(y) = act'(z) in the output (1, [y &gt; 0], 1 − y², y(1 − y)) and
 * gz = gy ⊙ d(y): gx = gz W, gW = gzᵀ x, gb = Σ_rows gz. Its own rule, for upstream gradients
 * Gx, GW, Gb, goes through G_gz = Gx Wᵀ + x GWᵀ + Gb (two fused identity linears):
 * ∂/∂gy = G_gz ⊙ d(y), ∂/∂y = G_gz ⊙ gy ⊙ d'(y) (d' = −2y for tanh, 1 − 2y for sigmoid, 0 for
 * relu and the identity), ∂/∂x = gz GW, ∂/∂W = gzᵀ Gx; all differentiable ops, so any order works.
 */
final class LinearAct {
  private LinearAct() {}

  static Tensor forward(Tensor x, Tensor w, Tensor bias, int code) {
    String op = "linear";
    Tensor xc = x.isContiguous() ? x : x.contiguous();
    Tensor b = bias == null || bias.isContiguous() ? bias : bias.contiguous();
    long in = w.size(1), out = w.size(0);
    long rows = in == 0 ? Tensor.numel(leading(x)) : xc.numel() / in;
    long[] shape = x.shape();
    shape[shape.length - 1] = out;
    Tensor y = Tensor.empty(shape, x.dtype(), x.device());
    long[] ws = w.strides();
    Native.check(MkNative.mk_dense_linear_forward(x.device().code, x.dtype().code, code, rows, in, out, xc.address(op),
                     w.address(op), ws[0], ws[1], b == null ? 0 : b.address(op), y.address(op), x.launchStream()),
        () -> op + " " + Checks.shapes(x, w) + (bias == null ? "" : " bias " + bias.describe()));
    return Autograd.record(op, y, new Tensor[] {xc, w, b},
        g
        -> backward(g[0], y, xc, w, b, code),
        tan -> new Tensor[] {forwardTangent(tan[0], tan[1], tan[2], y, xc, w, code)});
  }

  private static long[] leading(Tensor x) {
    long[] s = x.shape();
    return java.util.Arrays.copyOf(s, s.length - 1);
  }

  /** gy ↦ {gx, gW, gb} (null where that input needs no gradient), one native call, one node. */
  static Tensor[] backward(Tensor gyIn, Tensor y, Tensor x, Tensor w, Tensor bias, int code) {
    String op = "linearBackward";
    boolean wantX = x.requiresGrad(), wantW = w.requiresGrad(), wantB = bias != null && bias.requiresGrad();
    Tensor[] result = new Tensor[3];
    if (!wantX && !wantW && !wantB) return result;
    Tensor gy = gyIn.isContiguous() ? gyIn : gyIn.contiguous();
    long in = w.size(1), out = w.size(0);
    long rows = Tensor.numel(leading(x));
    Tensor gx = wantX ? Tensor.empty(x.shape(), x.dtype(), x.device()) : null;
    Tensor gw = wantW ? Tensor.empty(new long[] {out, in}, x.dtype(), x.device()) : null;
    Tensor gb = wantB ? Tensor.empty(new long[] {out}, x.dtype(), x.device()) : null;
    long[] ws = w.strides();
    Native.check(MkNative.mk_dense_linear_backward(x.device().code, x.dtype().code, code, rows, in, out, gy.address(op),
                     y.address(op), x.address(op), w.address(op), ws[0], ws[1], gx == null ? 0 : gx.address(op),
                     gw == null ? 0 : gw.address(op), gb == null ? 0 : gb.address(op), x.launchStream()),
        () -> op + " " + Checks.shapes(gy, x, w));
    List<Tensor> outs = new ArrayList<>(3);
    for (Tensor t : new Tensor[] {gx, gw, gb})
      if (t != null) outs.add(t);
    final int ix = wantX ? 0 : -1, iw = wantW ? (wantX ? 1 : 0) : -1, ib = wantB ? outs.size() - 1 : -1;
    Autograd.record(op, outs.toArray(new Tensor[0]), new Tensor[] {gy, y, x, w},
        g
        -> backwardBackward(ix < 0 ? null : g[ix], iw < 0 ? null : g[iw], ib < 0 ? null : g[ib], gy, y, x, w, code),
        tan -> {
          Tensor[] t = backwardTangents(tan[0], tan[1], tan[2], tan[3], gy, y, x, w, code);
          Tensor[] r = new Tensor[outs.size()];
          if (ix >= 0) r[ix] = t[0];
          if (iw >= 0) r[iw] = t[1];
          if (ib >= 0) r[ib] = t[2];
          return r;
        });
    result[0] = gx;
    result[1] = gw;
    result[2] = gb;
    return result;
  }

  /** The rule of {@code linearBackward}: upstream Gx, GW, Gb (null where none) ↦ {∂gy, ∂y, ∂x, ∂W}. */
  private static Tensor[] backwardBackward(
      Tensor gX, Tensor gW, Tensor gB, Tensor gy, Tensor y, Tensor x, Tensor w, int code) {
    Tensor d = derivative(y, code); // act'(z) in y; null for the identity
    // G_gz = Gx Wᵀ + x GWᵀ + Gb, each product a fused identity linear (one node each)
    Tensor gGz = null;
    if (gX != null) gGz = Functional.linear(gX, w, gB);
    if (gW != null) {
      Tensor t = Functional.linear(x, gW, gX == null ? gB : null);
      gGz = gGz == null ? t : gGz.add(t);
    }
    if (gGz == null && gB != null) gGz = gB.expand(gy.shape());
    Tensor dGy = null, dY = null, dX = null, dW = null;
    if (gGz != null) {
      if (gy.requiresGrad()) dGy = d == null ? gGz : gGz.mul(d);
      if (y.requiresGrad() && (code == Codes.LINEAR_ACT_TANH || code == Codes.LINEAR_ACT_SIGMOID)) {
        // d' in y: tanh (1 − y²)' = −2y, sigmoid (y − y²)' = 1 − 2y
        Tensor dd = code == Codes.LINEAR_ACT_TANH ? y.mul(-2.0) : y.mul(-2.0).add(1.0);
        dY = gGz.mul(gy).mul(dd);
      }
    }
    if ((gW != null && x.requiresGrad()) || (gX != null && w.requiresGrad())) {
      Tensor gz = d == null ? gy : gy.mul(d);
      long in = w.size(1), out = w.size(0);
      if (gW != null && x.requiresGrad()) dX = gz.matmul(gW); // [..., out] x [out, in]
      if (gX != null && w.requiresGrad()) dW = gz.reshape(-1, out).mT().matmul(gX.reshape(-1, in));
    }
    return new Tensor[] {dGy, dY, dX, dW};
  }

  /**
   * Forward mode of {@code linear}: ż = ẋ Wᵀ + x Ẇᵀ + ḃ (fused identity linears), ẏ = ż ⊙ act'(z);
   * null when no input carries a tangent.
   */
  private static Tensor forwardTangent(Tensor tx, Tensor tw, Tensor tb, Tensor y, Tensor x, Tensor w, int code) {
    Tensor tz = null;
    if (tx != null) tz = Functional.linear(tx, w, tb);
    if (tw != null) {
      Tensor t = Functional.linear(x, tw, tx == null ? tb : null);
      tz = tz == null ? t : tz.add(t);
    }
    if (tz == null && tb != null) tz = tb.expand(y.shape());
    if (tz == null) return null;
    Tensor d = derivative(y, code);
    return d == null ? tz : tz.mul(d);
  }

  /**
   * Forward mode of {@code linearBackward}: with gz = gy ⊙ d(y) and ġz = ġy ⊙ d(y) + gy ⊙ d'(y) ⊙ ẏ,
   * {ġx = ġz W + gz Ẇ, ġW = ġzᵀ x + gzᵀ ẋ, ġb = Σ_rows ġz} (each null when zero).
   */
  private static Tensor[] backwardTangents(
      Tensor tgy, Tensor ty, Tensor tx, Tensor tw, Tensor gy, Tensor y, Tensor x, Tensor w, int code) {
    Tensor d = derivative(y, code);
    Tensor tgz = tgy == null ? null : d == null ? tgy : tgy.mul(d);
    if (ty != null && (code == Codes.LINEAR_ACT_TANH || code == Codes.LINEAR_ACT_SIGMOID)) {
      Tensor dd = code == Codes.LINEAR_ACT_TANH ? y.mul(-2.0) : y.mul(-2.0).add(1.0);
      Tensor e = gy.mul(dd).mul(ty);
      tgz = tgz == null ? e : tgz.add(e);
    }
    long in = w.size(1), out = w.size(0);
    Tensor gz = tw != null || tx != null ? (d == null ? gy : gy.mul(d)) : null;
    Tensor tgx = null, tgw = null, tgb = null;
    if (tgz != null) {
      tgx = tgz.matmul(w);
      tgw = tgz.reshape(-1, out).mT().matmul(x.reshape(-1, in));
      tgb = tgz.reshape(-1, out).sum(0, false);
    }
    if (tw != null) tgx = tgx == null ? gz.matmul(tw) : tgx.add(gz.matmul(tw));
    if (tx != null) {
      Tensor e = gz.reshape(-1, out).mT().matmul(tx.reshape(-1, in));
      tgw = tgw == null ? e : tgw.add(e);
    }
    return new Tensor[] {tgx, tgw, tgb};
  }

  /** act'(z) written in y as a differentiable tensor, or null for the identity (1). */
  private static Tensor derivative(Tensor y, int code) {
    if (code == Codes.LINEAR_ACT_TANH) return y.square().rsub(1.0);
    if (code == Codes.LINEAR_ACT_SIGMOID) return y.mul(y.rsub(1.0));
    if (code == Codes.LINEAR_ACT_RELU) return y.detach().gt(0.0);
    return null;
  }
}
