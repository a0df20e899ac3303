package org.metakernels.ops;

import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/**
 * The fused InfoNCE rows behind {@link Functional#infoNceLogits} and {@link Functional#infoNce}: the
 * forward op {@code infoNceRows} and its backward op {@code infoNceRowsBackward}, each one native call
 * (kernels/{cpu,cuda}/infonce.*) and one tape node.
 *
 * <p>For logits s [B, N], a positives' mask P (null: the diagonal) and log-weights L (null: none), with
 * u = s on the positives and s + L elsewhere: ℓ_r = log Σ_j e^{u_rj} − log Σ_{j∈P(r)} e^{s_rj}. With
 * α = softmax_j(u) and π = softmax over the positives of s (0 elsewhere), the backward maps g [B] to
 * gs = g (α − π) and gL = g α off the positives (0 on them).
 *
 * <p>The backward's own rule, for upstream Gs, GL (either may be absent): with H = Gs + GL off the
 * positives, h = Σ_j α H and k = Σ_j π Gs per row, ∂/∂s = g (α (H − h) − π (Gs − k)), ∂/∂L = g α (H − h)
 * off the positives, ∂/∂g = h − k; in differentiable ops (softmaxes of masked logits), so the loss
 * differentiates to any order. Forward mode: ℓ̇ = Σ_j gs(1) ṡ + gL(1) L̇ through the fused backward with
 * g = 1, and the backward's tangent composed likewise.
 */
final class InfoNce {
  private InfoNce() {}

  /** Whether the fused kernels take this dtype (F32, F64); the others run the composed form. */
  static boolean fused(DType d) {
    return d == DType.F32 || d == DType.F64;
  }

  /**
   * The per-row losses [B] of contiguous-or-not logits s [B, N]; pos, logW [B, N] or null. The caller
   * has checked shapes, dtypes and devices.
   */
  static Tensor rows(Tensor logits, Tensor pos, Tensor logW) {
    String op = "infoNceRows";
    Tensor s = logits.isContiguous() ? logits : logits.contiguous();
    Tensor p = pos == null ? null : (pos.isContiguous() ? pos : pos.contiguous()).detach();
    Tensor w = logW == null ? null : (logW.isContiguous() ? logW : logW.contiguous());
    long b = s.size(0), n = s.size(1);
    Tensor loss = Tensor.empty(new long[] {b}, s.dtype(), s.device());
    Tensor stats = Tensor.empty(new long[] {b, 2}, s.dtype(), s.device());
    Native.check(MkNative.mk_dense_infonce_forward(s.device().code, s.dtype().code, b, n, s.address(op),
                     p == null ? 0 : p.address(op), w == null ? 0 : w.address(op), loss.address(op),
                     stats.address(op), s.launchStream()),
        () -> op + " " + Checks.shapes(logits, pos, logW));
    Tensor[] inputs = w == null ? new Tensor[] {s} : new Tensor[] {s, w};
    return Autograd.record(op, loss, inputs, g -> {
      Tensor[] gs = backwardFor(s, p, w, stats, g[0], s.requiresGrad(), w != null && w.requiresGrad());
      return w == null ? new Tensor[] {gs[0]} : gs;
    }, tan -> {
      // ℓ̇ = Σ_j gs(1) ṡ + gL(1) L̇: the backward with g = 1
      Tensor ones = Tensor.ones(new long[] {b}, s.dtype(), s.device());
      Tensor[] unit = backwardFor(s, p, w, stats, ones, tan[0] != null, w != null && tan[1] != null);
      Tensor d = tan[0] == null ? null : unit[0].mul(tan[0]).sum(1, false);
      if (w != null && tan[1] != null) {
        Tensor e = unit[1].mul(tan[1]).sum(1, false);
        d = d == null ? e : d.add(e);
      }
      return new Tensor[] {d};
    });
  }

  /**
   * g [B] ↦ {gs, gL} (null where not wanted), one native call, one node: the backward of
   * {@link #rows}, and with g = 1 its forward-mode rule.
   */
  private static Tensor[] backwardFor(Tensor s, Tensor p, Tensor w, Tensor stats, Tensor gIn, boolean wantS,
      boolean wantW) {
    String op = "infoNceRowsBackward";
    if (!wantS && !wantW) return new Tensor[2];
    Tensor g = gIn.isContiguous() ? gIn : gIn.contiguous();
    long b = s.size(0), n = s.size(1);
    Tensor gs = wantS ? Tensor.empty(s.shape(), s.dtype(), s.device()) : null;
    Tensor gw = wantW ? Tensor.empty(s.shape(), s.dtype(), s.device()) : null;
    Native.check(MkNative.mk_dense_infonce_backward(s.device().code, s.dtype().code, b, n, s.address(op),
                     p == null ? 0 : p.address(op), w == null ? 0 : w.address(op), stats.address(op),
                     g.address(op), gs == null ? 0 : gs.address(op), gw == null ? 0 : gw.address(op),
                     s.launchStream()),
        () -> op + " " + Checks.shapes(s, p, w, g));
    Tensor[] outs = wantS && wantW ? new Tensor[] {gs, gw} : new Tensor[] {wantS ? gs : gw};
    Tensor[] inputs = w == null ? new Tensor[] {s, g} : new Tensor[] {s, w, g};
    Autograd.record(op, outs, inputs,
        up -> {
          Tensor upS = wantS ? up[0] : null, upW = wantW ? up[wantS ? 1 : 0] : null;
          Tensor[] grads = secondOrder(s, p, w, g, upS, upW);
          return w == null ? new Tensor[] {grads[0], grads[2]} : grads;
        },
        tan -> {
          Tensor tS = tan[0], tW = w == null ? null : tan[1], tG = tan[w == null ? 1 : 2];
          Tensor[] d = tangent(s, p, w, g, tS, tW, tG);
          return wantS && wantW ? d : new Tensor[] {wantS ? d[0] : d[1]};
        });
    return new Tensor[] {gs, gw};
  }

  /** The composed probabilities {α, π} [B, N] of the forward, differentiable in s and w. */
  private static Tensor[] probabilities(Tensor s, Tensor p, Tensor w) {
    Tensor mask = mask(s, p);
    Tensor u = w == null ? s : Tensor.where(mask, s, s.add(w));
    Tensor minusInf = Tensor.full(new long[] {1, 1}, Double.NEGATIVE_INFINITY, s.dtype(), s.device());
    return new Tensor[] {u.softmax(1), Tensor.where(mask, s, minusInf).softmax(1), mask};
  }

  /** The rule of the backward op: {∂/∂s, ∂/∂w, ∂/∂g} for upstream upS, upW (either null). */
  private static Tensor[] secondOrder(Tensor s, Tensor p, Tensor w, Tensor g, Tensor upS, Tensor upW) {
    if (upS == null && upW == null) return new Tensor[3];
    Tensor[] pr = probabilities(s, p, w);
    Tensor alpha = pr[0], pi = pr[1], mask = pr[2];
    Tensor zero = Tensor.zeros(new long[] {1, 1}, s.dtype(), s.device());
    Tensor upWq = upW == null ? null : Tensor.where(mask, zero, upW);
    Tensor h = upS == null ? upWq : (upWq == null ? upS : upS.add(upWq));
    Tensor hBar = alpha.mul(h).sum(1, true);
    Tensor termA = alpha.mul(h.sub(hBar));
    Tensor termP = null, kBar = null;
    if (upS != null) {
      kBar = pi.mul(upS).sum(1, true);
      termP = pi.mul(upS.sub(kBar));
    }
    Tensor g2 = g.reshape(g.size(0), 1);
    Tensor ds = s.requiresGrad() ? g2.mul(termP == null ? termA : termA.sub(termP)) : null;
    Tensor dw = w != null && w.requiresGrad() ? Tensor.where(mask, zero, g2.mul(termA)) : null;
    Tensor dg = null;
    if (g.requiresGrad()) {
      Tensor d = kBar == null ? hBar : hBar.sub(kBar);
      dg = d.reshape(g.size(0));
    }
    return new Tensor[] {ds, dw, dg};
  }

  /** The backward's tangent {d gs, d gL} for tangents tS, tW, tG (any null: zero). */
  private static Tensor[] tangent(Tensor s, Tensor p, Tensor w, Tensor g, Tensor tS, Tensor tW, Tensor tG) {
    Tensor[] pr = probabilities(s, p, w);
    Tensor alpha = pr[0], pi = pr[1], mask = pr[2];
    Tensor zero = Tensor.zeros(new long[] {1, 1}, s.dtype(), s.device());
    Tensor g2 = g.reshape(g.size(0), 1);
    // u̇ = ṡ on the positives, ṡ + L̇ elsewhere
    Tensor tWq = tW == null ? null : Tensor.where(mask, zero, tW);
    Tensor uDot = tS == null ? tWq : (tWq == null ? tS : tS.add(tWq));
    Tensor dA = null; // α (u̇ − Σ α u̇)
    if (uDot != null) dA = alpha.mul(uDot.sub(alpha.mul(uDot).sum(1, true)));
    Tensor dP = tS == null ? null : pi.mul(tS.sub(pi.mul(tS).sum(1, true)));
    Tensor dS = null, dW = null;
    if (dA != null || dP != null) {
      Tensor inner = dA == null ? dP.neg() : (dP == null ? dA : dA.sub(dP));
      dS = g2.mul(inner);
      if (dA != null) dW = g2.mul(dA);
    }
    if (tG != null) {
      Tensor t2 = tG.reshape(tG.size(0), 1);
      Tensor a = t2.mul(alpha.sub(pi));
      dS = dS == null ? a : dS.add(a);
      Tensor c = t2.mul(alpha);
      dW = dW == null ? c : dW.add(c);
    }
    if (dW != null) dW = Tensor.where(mask, zero, dW);
    if (dS == null) dS = Tensor.zeros(s.shape(), s.dtype(), s.device());
    if (dW == null) dW = Tensor.zeros(s.shape(), s.dtype(), s.device());
    return new Tensor[] {dS, dW};
  }

  /** P, or the diagonal of s's shape (second order only). */
  private static Tensor mask(Tensor s, Tensor p) {
    return p != null ? p : diagonal(s.size(0), s.size(1), s);
  }

  /**
   * The 0/1 diagonal [rows, cols] in like's dtype and on its device: the positives when none are
   * given (the composed forms and the second order).
   */
  static Tensor diagonal(long rows, long cols, Tensor like) {
    if (rows * cols > Integer.MAX_VALUE)
      throw new MetakernelsException("infoNce: a diagonal mask [" + rows + ", " + cols + "] of more than 2^31 entries");
    double[] eye = new double[(int) (rows * cols)];
    for (int i = 0; i < Math.min(rows, cols); i++) eye[i * (int) cols + i] = 1;
    return Tensor.of(eye, rows, cols).to(like.dtype()).to(like.device());
  }
}
