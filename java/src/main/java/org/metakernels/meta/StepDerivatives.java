package org.metakernels.meta;

import org.metakernels.meta.InnerStep.Call;
import org.metakernels.meta.InnerStep.Kind;
import org.metakernels.runtime.Codes;
import org.metakernels.tensor.Tensor;

/**
 * The backward of a step's fused backward (second and higher derivatives of a step), in
 * differentiable tensor ops.
 *
 * <p>Let A(x) be the step (x: parameter, gradient, state, hyperparameters) and B(x, ȳ) = J_A(x)ᵀȳ
 * its vector-Jacobian product for the cotangents ȳ of A's outputs: B is the gradient in x of
 * φ(x, ȳ) = ⟨ȳ, A(x)⟩. The backward of B for cotangents t of its outputs (shaped like x) is
 *
 * <pre>
 *   for ȳ:  J_A(x)·t                    the forward-mode product of the step in direction t;
 *   for x:  ∇²ₓφ(x, ȳ)·t = d/dε B(x + εt, ȳ)   the forward-mode product of B in x, ȳ held
 * </pre>
 *
 * (the second by the symmetry of the Hessian of φ). Both are written below as forward-mode
 * (tangent) formulas of the maths in {@code kernels/include/mk/meta.h}, one tangent per
 * intermediate, with ops that record themselves under {@code createGraph}, so third and higher
 * derivatives follow. Absent tangents and cotangents are zeros; one-value hyperparameters are
 * rank-0 tensors (constants as tensors that do not require grad), and their gradients are summed
 * back to their shape.
 */
final class StepDerivatives {
  private StepDerivatives() {}

  /**
   * Gradients of the backward's inputs (the step's {@link InnerStep#INPUTS} inputs, then the
   * three cotangent slots) for the cotangents {@code t} of its outputs, indexed like the step's
   * inputs (null: none).
   */
  static Tensor[] of(Call c, Tensor[] cot, Tensor[] t) {
    return c.kind == Kind.ADAM ? adam(c, cot, t, false) : sgd(c, cot, t, false);
  }

  /**
   * The step's forward-mode product J_A·t alone (its forward rule): the tangents of its outputs
   * (p', then buf' for momentum, m' and v' for Adam) for the tangents {@code t} of its inputs,
   * indexed like them (null: zero).
   */
  static Tensor[] jvp(Call c, Tensor[] t) {
    Tensor[] noCot = new Tensor[3];
    return c.kind == Kind.ADAM ? adam(c, noCot, t, true) : sgd(c, noCot, t, true);
  }

  // ---- shared -------------------------------------------------------------------------------

  /** Operands with zeros for what is absent: the step's inputs, their tangents, the cotangents. */
  private static final class Vars {
    final Tensor[] x = new Tensor[InnerStep.INPUTS];
    final Tensor[] dx = new Tensor[InnerStep.INPUTS];
    final Tensor[] y = new Tensor[3];
    final Tensor zeros;

    Vars(Call c, Tensor[] cot, Tensor[] t) {
      Tensor p = c.inputs[InnerStep.PARAM];
      zeros = Tensor.zerosLike(p);
      Tensor scalarZero = Tensor.scalar(0.0, c.dtype, c.device);
      for (int i = 0; i < InnerStep.INPUTS; i++) {
        Tensor xi = c.inputs[i];
        if (i >= InnerStep.HYPER0 && xi == null) xi = Tensor.scalar(c.value[i - InnerStep.HYPER0], c.dtype, c.device);
        if (xi == null) xi = zeros;
        x[i] = xi;
        dx[i] = t[i] != null ? t[i] : xi.rank() == 0 ? scalarZero : zeros;
      }
      for (int i = 0; i < 3; i++) y[i] = cot[i] != null ? cot[i] : zeros;
    }

    Tensor h(int i) {
      return x[InnerStep.HYPER0 + i];
    }

    Tensor dh(int i) {
      return dx[InnerStep.HYPER0 + i];
    }
  }

  /** The gradient of input {@code i} when it requires grad (hyperparameters summed to their shape), else null. */
  private static void put(Tensor[] out, Call c, int i, Tensor g) {
    Tensor xi = c.inputs[i];
    if (xi == null || !xi.requiresGrad()) return;
    out[i] = g.sumTo(xi.shape());
  }

  private static void putCot(Tensor[] out, Tensor[] cot, int i, Tensor g) {
    if (cot[i] == null || !cot[i].requiresGrad()) return;
    out[InnerStep.INPUTS + i] = g;
  }

  // ---- SGD ----------------------------------------------------------------------------------

  private static Tensor[] sgd(Call c, Tensor[] cot, Tensor[] t, boolean tangentOnly) {
    Vars z = new Vars(c, cot, t);
    boolean momentum = c.kind == Kind.MOMENTUM, nesterov = (c.flags & Codes.META_NESTEROV) != 0;
    Tensor p = z.x[InnerStep.PARAM], g = z.x[InnerStep.GRAD], b = z.x[InnerStep.BUF];
    Tensor tp = z.dx[InnerStep.PARAM], tg = z.dx[InnerStep.GRAD], tb = z.dx[InnerStep.BUF];
    Tensor lr = z.h(Codes.META_LR), mu = z.h(Codes.META_MOMENTUM), wd = z.h(Codes.META_WEIGHT_DECAY);
    Tensor tlr = z.dh(Codes.META_LR), tmu = z.dh(Codes.META_MOMENTUM), twd = z.dh(Codes.META_WEIGHT_DECAY);
    Tensor cp = z.y[0], cb = z.y[1];

    // the step and its tangent (the forward-mode product J_A t)
    Tensor d = g.add(wd.mul(p));
    Tensor dd = tg.add(twd.mul(p)).add(wd.mul(tp));
    Tensor bn = null, dbn = null, u, du;
    if (!momentum) {
      u = d;
      du = dd;
    } else {
      bn = mu.mul(b).add(d);
      dbn = tmu.mul(b).add(mu.mul(tb)).add(dd);
      u = nesterov ? d.add(mu.mul(bn)) : bn;
      du = nesterov ? dd.add(tmu.mul(bn)).add(mu.mul(dbn)) : dbn;
    }
    Tensor dpOut = tp.sub(tlr.mul(u)).sub(lr.mul(du));
    if (tangentOnly) return momentum ? new Tensor[] {dpOut, dbn} : new Tensor[] {dpOut};

    // its backward B and B's tangent in x
    Tensor uBar = lr.mul(cp).neg(), duBar = tlr.mul(cp).neg();  // cotangent of u
    Tensor bt = null, dbt = null, D, dD;
    if (!momentum) {
      D = uBar;
      dD = duBar;
    } else if (!nesterov) {
      bt = cb.add(uBar);
      dbt = duBar;
      D = bt;
      dD = dbt;
    } else {
      bt = cb.add(mu.mul(uBar));
      dbt = tmu.mul(uBar).add(mu.mul(duBar));
      D = uBar.add(bt);
      dD = duBar.add(dbt);
    }
    Tensor[] out = new Tensor[InnerStep.INPUTS + 3];
    put(out, c, InnerStep.PARAM, twd.mul(D).add(wd.mul(dD)));                  // p̄ = cp + wd D
    put(out, c, InnerStep.GRAD, dD);                                            // ḡ = D
    put(out, c, InnerStep.HYPER0 + Codes.META_LR, du.mul(cp).neg());            // lr̄ = −u cp
    put(out, c, InnerStep.HYPER0 + Codes.META_WEIGHT_DECAY, tp.mul(D).add(p.mul(dD)));  // wd̄ = p D
    if (momentum) {
      put(out, c, InnerStep.BUF, tmu.mul(bt).add(mu.mul(dbt)));               // b̄ = mu Bt
      Tensor dmuBar = tb.mul(bt).add(b.mul(dbt));                               // mū = b Bt (+ b' U)
      if (nesterov) dmuBar = dmuBar.add(dbn.mul(uBar)).add(bn.mul(duBar));
      put(out, c, InnerStep.HYPER0 + Codes.META_MOMENTUM, dmuBar);
      putCot(out, cot, 1, dbn);
    }
    putCot(out, cot, 0, dpOut);
    return out;
  }

  // ---- Adam ---------------------------------------------------------------------------------

  private static Tensor[] adam(Call c, Tensor[] cot, Tensor[] t, boolean tangentOnly) {
    Vars z = new Vars(c, cot, t);
    boolean decoupled = (c.flags & Codes.META_DECOUPLED_WEIGHT_DECAY) != 0;
    long step = c.step;
    Tensor p = z.x[InnerStep.PARAM], g = z.x[InnerStep.GRAD], m = z.x[InnerStep.M], v = z.x[InnerStep.V];
    Tensor tp = z.dx[InnerStep.PARAM], tg = z.dx[InnerStep.GRAD], tm = z.dx[InnerStep.M], tv = z.dx[InnerStep.V];
    Tensor lr = z.h(Codes.META_LR), wd = z.h(Codes.META_WEIGHT_DECAY);
    Tensor b1 = z.h(Codes.META_BETA1), b2 = z.h(Codes.META_BETA2), eps = z.h(Codes.META_EPS);
    Tensor tlr = z.dh(Codes.META_LR), twd = z.dh(Codes.META_WEIGHT_DECAY);
    Tensor tb1 = z.dh(Codes.META_BETA1), tb2 = z.dh(Codes.META_BETA2), teps = z.dh(Codes.META_EPS);
    Tensor cp = z.y[0], cm = z.y[1], cv = z.y[2];

    // scalars of the step: c = 1 − βᵗ, dc/dβ = −t βᵗ⁻¹, and its derivative −t(t−1)βᵗ⁻²
    Tensor w1 = b1.rsub(1.0), w2 = b2.rsub(1.0);
    Tensor c1 = b1.pow((double) step).rsub(1.0), c2 = b2.pow((double) step).rsub(1.0);
    Tensor k1 = power(b1, step - 1).mul(-(double) step), k2 = power(b2, step - 1).mul(-(double) step);  // dc/dβ
    Tensor tc1 = k1.mul(tb1), tc2 = k2.mul(tb2);
    Tensor tk1 = step == 1 ? null : power(b1, step - 2).mul(-(double) step * (step - 1)).mul(tb1);
    Tensor tk2 = step == 1 ? null : power(b2, step - 2).mul(-(double) step * (step - 1)).mul(tb2);
    Tensor rc2 = c2.sqrt(), trc2 = tc2.div(rc2.mul(2.0));

    // the step and its tangent (the forward-mode product J_A t)
    Tensor d = decoupled ? g : g.add(wd.mul(p));
    Tensor dd = decoupled ? tg : tg.add(twd.mul(p)).add(wd.mul(tp));
    Tensor mn = b1.mul(m).add(w1.mul(d));
    Tensor dmn = tb1.mul(m.sub(d)).add(b1.mul(tm)).add(w1.mul(dd));
    Tensor vn = b2.mul(v).add(w2.mul(d.square()));
    Tensor dvn = tb2.mul(v.sub(d.square())).add(b2.mul(tv)).add(w2.mul(d).mul(dd).mul(2.0));
    Tensor s = vn.sqrt(), ds = dvn.div(s.mul(2.0));
    Tensor sigma = s.div(rc2).add(eps);
    Tensor dsigma = ds.div(rc2).sub(s.mul(trc2).div(rc2.square())).add(teps);
    Tensor q = mn.div(sigma), dq = dmn.sub(q.mul(dsigma)).div(sigma);
    Tensor r = q.div(c1), dr = dq.sub(r.mul(tc1)).div(c1);
    Tensor dpOut = decoupled
        ? tp.mul(lr.mul(wd).rsub(1.0)).sub(p.mul(tlr.mul(wd).add(lr.mul(twd))))
        : tp;
    dpOut = dpOut.sub(tlr.mul(r)).sub(lr.mul(dr));
    if (tangentOnly) return new Tensor[] {dpOut, dmn, dvn};

    // its backward B and B's tangent in x
    Tensor c1s = c1.mul(sigma);
    Tensor a = lr.mul(cp).div(c1s);
    Tensor da = tlr.mul(cp).div(c1s).sub(a.mul(tc1.div(c1).add(dsigma.div(sigma))));
    Tensor mt = cm.sub(a), dmt = da.neg();
    Tensor sig = a.mul(q), dsig = da.mul(q).add(a.mul(dq));
    Tensor srt = s.mul(rc2);                                   // √v' √c₂
    Tensor zv = sig.div(srt.mul(2.0));                         // Vt − cv
    Tensor dzv = dsig.div(srt.mul(2.0)).sub(zv.mul(ds.div(s).add(trc2.div(rc2))));
    Tensor vt = cv.add(zv), dvt = dzv;
    Tensor c1b = a.mul(mn).div(c1);
    Tensor dc1b = da.mul(mn).add(a.mul(dmn)).div(c1).sub(c1b.mul(tc1).div(c1));
    Tensor den2 = rc2.mul(c2).mul(2.0);                        // 2 √c₂ c₂
    Tensor c2b = sig.mul(s).div(den2).neg();
    Tensor dc2b = dsig.mul(s).add(sig.mul(ds)).div(den2).neg()
        .sub(c2b.mul(trc2.div(rc2).add(tc2.div(c2))));
    Tensor D = w1.mul(mt).add(w2.mul(d).mul(vt).mul(2.0));
    Tensor dD = tb1.neg().mul(mt).add(w1.mul(dmt))
        .add(tb2.neg().mul(d).mul(vt).add(w2.mul(dd).mul(vt)).add(w2.mul(d).mul(dvt)).mul(2.0));

    Tensor[] out = new Tensor[InnerStep.INPUTS + 3];
    put(out, c, InnerStep.M, tb1.mul(mt).add(b1.mul(dmt)));                      // m̄ = β₁ Mt
    put(out, c, InnerStep.V, tb2.mul(vt).add(b2.mul(dvt)));                      // v̄ = β₂ Vt
    put(out, c, InnerStep.GRAD, dD);                                              // ḡ = D
    Tensor db1 = tm.sub(dd).mul(mt).add(m.sub(d).mul(dmt)).add(k1.mul(dc1b));     // β̄₁ = (m − d) Mt + k₁ c₁b
    if (tk1 != null) db1 = db1.add(tk1.mul(c1b));
    put(out, c, InnerStep.HYPER0 + Codes.META_BETA1, db1);
    Tensor db2 = tv.sub(d.mul(dd).mul(2.0)).mul(vt).add(v.sub(d.square()).mul(dvt)).add(k2.mul(dc2b));
    if (tk2 != null) db2 = db2.add(tk2.mul(c2b));
    put(out, c, InnerStep.HYPER0 + Codes.META_BETA2, db2);                       // β̄₂ = (v − d²) Vt + k₂ c₂b
    put(out, c, InnerStep.HYPER0 + Codes.META_EPS, dsig);                         // ε̄ = sig
    if (decoupled) {
      Tensor dwdp = twd.mul(p).add(wd.mul(tp));
      put(out, c, InnerStep.HYPER0 + Codes.META_LR, dr.mul(cp).add(dwdp.mul(cp)).neg());      // lr̄ = −r cp − wd p cp
      put(out, c, InnerStep.PARAM, cp.mul(tlr.mul(wd).add(lr.mul(twd))).neg());              // p̄ = cp (1 − lr wd)
      put(out, c, InnerStep.HYPER0 + Codes.META_WEIGHT_DECAY, tlr.mul(p).add(lr.mul(tp)).mul(cp).neg());  // wd̄ = −lr p cp
    } else {
      put(out, c, InnerStep.HYPER0 + Codes.META_LR, dr.mul(cp).neg());                         // lr̄ = −r cp
      put(out, c, InnerStep.PARAM, twd.mul(D).add(wd.mul(dD)));                               // p̄ = cp + wd D
      put(out, c, InnerStep.HYPER0 + Codes.META_WEIGHT_DECAY, tp.mul(D).add(p.mul(dD)));      // wd̄ = p D
    }
    putCot(out, cot, 0, dpOut);
    putCot(out, cot, 1, dmn);
    putCot(out, cot, 2, dvn);
    return out;
  }

  /** βᵉ, with β⁰ = 1 exactly (its derivative 0, also at β = 0). */
  private static Tensor power(Tensor beta, long e) {
    return e == 0 ? Tensor.onesLike(beta) : beta.pow((double) e);
  }
}
