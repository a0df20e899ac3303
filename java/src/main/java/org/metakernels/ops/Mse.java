package org.metakernels.ops;

import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.Tensor;

/**
 * The fused mean squared error behind {@link Functional#mse}: the forward op {@code mse} and its
 * backward op {@code mseBackward}, each one native call and one tape node.
 *
 * <p>With n elements and c = 2/n, the backward of {@code mse} maps g (shape []) to gp = c g (p − t)
 * and gt = −gp, recorded as {@code mseBackward} with inputs p, t, g. Its rule, for upstream
 * gradients Gp, Gt: with D = Gp − Gt, ∂/∂p = c g D, ∂/∂t = −c g D, ∂/∂g = c Σ D ⊙ (p − t), in
 * differentiable ops.
 */
final class Mse {
  private Mse() {}

  static Tensor forward(Tensor pred, Tensor target) {
    String op = "mse";
    Tensor p = pred.isContiguous() ? pred : pred.contiguous();
    Tensor t = target.isContiguous() ? target : target.contiguous();
    Tensor out = Tensor.empty(new long[0], p.dtype(), p.device());
    Native.check(MkNative.mk_dense_mse_forward(p.device().code, p.dtype().code, p.numel(), p.address(op), t.address(op),
                     out.address(op), p.launchStream()),
        () -> op + " " + Checks.shapes(pred, target));
    // forward mode: (2/n) Σ (p − t) ⊙ (ṗ − ṫ)
    return Autograd.record(op, out, new Tensor[] {p, t}, g -> backward(p, t, g[0]), tan -> {
      Tensor d = difference(tan[0], tan[1]);
      return new Tensor[] {d == null ? null : p.sub(t).mul(d).sum().mul(2.0 / p.numel())};
    });
  }

  /** g ↦ {gp, gt} (null where that input needs no gradient), one native call, one node. */
  static Tensor[] backward(Tensor p, Tensor t, Tensor gIn) {
    String op = "mseBackward";
    boolean wantP = p.requiresGrad(), wantT = t.requiresGrad();
    if (!wantP && !wantT) return new Tensor[2];
    Tensor g = gIn.isContiguous() ? gIn : gIn.contiguous();
    Tensor gp = wantP ? Tensor.empty(p.shape(), p.dtype(), p.device()) : null;
    Tensor gt = wantT ? Tensor.empty(t.shape(), t.dtype(), t.device()) : null;
    Native.check(
        MkNative.mk_dense_mse_backward(p.device().code, p.dtype().code, p.numel(), p.address(op), t.address(op),
            g.address(op), gp == null ? 0 : gp.address(op), gt == null ? 0 : gt.address(op), p.launchStream()),
        () -> op + " " + Checks.shapes(p, t, g));
    Tensor[] outs = wantP && wantT ? new Tensor[] {gp, gt} : new Tensor[] {wantP ? gp : gt};
    double c = 2.0 / p.numel();
    Autograd.record(op, outs, new Tensor[] {p, t, g},
        up
        -> {
          Tensor gP = wantP ? up[0] : null, gT = wantT ? up[wantP ? 1 : 0] : null;
          Tensor d = gP == null ? (gT == null ? null : gT.neg()) : (gT == null ? gP : gP.sub(gT));
          if (d == null) return new Tensor[3];
          Tensor cd = d.mul(c);
          Tensor dp = p.requiresGrad() ? cd.mul(g) : null;
          Tensor dt = t.requiresGrad() ? cd.mul(g).neg() : null;
          Tensor dg = g.requiresGrad() ? cd.mul(p.sub(t)).sum() : null;
          return new Tensor[] {dp, dt, dg};
        },
        tan -> {
          // forward mode: ġp = c (ġ (p − t) + g (ṗ − ṫ)), ġt = −ġp
          Tensor d = difference(tan[0], tan[1]);
          Tensor dot = d == null ? null : d.mul(g);
          if (tan[2] != null) {
            Tensor e = p.sub(t).mul(tan[2]);
            dot = dot == null ? e : dot.add(e);
          }
          if (dot == null) return new Tensor[outs.length];
          Tensor tp = dot.mul(c);
          return wantP && wantT ? new Tensor[] {tp, tp.neg()} : new Tensor[] {wantP ? tp : tp.neg()};
        });
    return new Tensor[] {gp, gt};
  }

  /** ṗ − ṫ, either null for zero; null when both are. */
  private static Tensor difference(Tensor tp, Tensor tt) {
    if (tp == null) return tt == null ? null : tt.neg();
    return tt == null ? tp : tp.sub(tt);
  }
}
