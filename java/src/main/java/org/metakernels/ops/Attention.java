package org.metakernels.ops;

import org.metakernels.runtime.Codes;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.Forward;
import org.metakernels.autograd.GradMode;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Fused softmax attention, flash-style (tiled, online softmax, no Nq×Nk matrix), with a fused
 * backward and a fused backward-of-the-backward, so second derivatives (MAML through attention,
 * Hessian-vector products) stay on fused kernels, in F32 and F64:
 *
 * <pre>
 *   S = scale·q kᵀ + bias (masked)     P = softmax(S)     out = P v
 * </pre>
 *
 * q: [B, H, Nq, D]; k, v: [B, Hkv, Nk, D|Dv] with Hkv dividing H (grouped-query attention);
 * Nq ≠ Nk allowed; D, Dv ≤ 256. Options: scale (default 1/√D), causal (bottom-right aligned, or
 * top-left: {@link CausalAlignment}), per-batch key lengths (padding), an additive bias [B|1, H|1, Nq, Nk] that also gets a
 * gradient. Rows that see no key give zeros.
 *
 * <p>Strided operands. On the CPU in F32 and F64 every pass (forward, backward, double backward,
 * JVP) reads q, k, v, dout, the cotangents and the tangents through their strides wherever the last
 * dim is unit-stride: head views of [B, N, H, D] projections ({@code x.reshape(b, n, h, d).permute(0,
 * 2, 1, 3)}), row windows, keys and values expanded across heads cost no copies; the output is laid
 * out as q (so {@code out.permute(0, 2, 1, 3).reshape(b, n, h * dv)} is a view) and each gradient,
 * second-order cotangent and tangent as its operand. The bits are those of contiguous copies.
 * Other layouts, the CUDA device and 16-bit types take contiguous copies.
 *
 * <pre>{@code
 * Tensor out = Attention.softmax(q, k, v, Attention.Options.causal());           // [B, H, Nq, Dv]
 * List<Tensor> g = Autograd.grad(out.square().sum(), List.of(q, k, v), true);    // fused backward
 * Tensor hv = Autograd.grad(g.get(0).mul(u).sum(), List.of(q), false).get(0);    // fused double backward
 * }</pre>
 *
 * <p>Double backward: the vector-Jacobian product of the backward (dq, dk, dv, dbias) is one fused
 * op of three tiled passes (row statistics, queries, keys), derived in
 * {@code kernels/cpu/attention/backward_backward.cpp}. Third derivatives are not implemented and
 * fail loudly.
 *
 * <p>TF32. With {@link org.metakernels.runtime.Backend#setAllowTf32} (or {@code -Dmetakernels.tf32=true})
 * the F32 forward and backward on CUDA run on TF32 tensor cores (products of 10-bit-mantissa
 * operands, F32 sums) where the GPU's shared memory holds their tiles, else on the F32 SIMT
 * kernels; the double backward and the JVP stay in F32. The CPU ignores it.
 *
 * <p>BF16 and F16. q, k, v (and the bias) may all be BF16 or all F16 (no mixing): the forward and
 * the backward run fused 16-bit kernels (tensor cores on CUDA; F32 arithmetic inside, the results
 * rounded to nearest even), the output and the gradients of q, k, v and the bias are in the
 * 16-bit type, and the row log-sum-exp is F32. The double backward and {@link #jvp} run 16-bit
 * tensor-core kernels on CUDA where max(D, Dv) is at most 128 (F32 accumulation; the environment
 * variable MK_ATTN_TC_DD=0 turns them off); elsewhere the native layer casts their operands (q, k, v,
 * bias, the saved output, dout, the cotangents or tangents) to F32, runs the F32 fused kernels and
 * casts the results back to the 16-bit type (the lse tangent stays F32). Either way {@code
 * Autograd.grad(..., createGraph = true)} followed by a second grad works on 16-bit tensors.
 *
 * <pre>{@code
 * Tensor qh = q.to(DType.BF16), kh = k.to(DType.BF16), vh = v.to(DType.BF16);   // requiresGrad as needed
 * Attention.Output r = Attention.forward(qh, kh, vh, Attention.Options.causal());   // out BF16, lse F32
 * }</pre>
 */
public final class Attention {
  private Attention() {}

  /**
   * Where the causal mask's diagonal sits when the queries and the keys differ in number (Nq ≠ L_b,
   * L_b the key length of batch b; where they are equal both give the usual lower triangle).
   */
  public enum CausalAlignment {
    /**
     * Query i sees keys j ≤ i + (L_b − Nq): the last query sees every key, as queries that continue
     * a sequence do (decoding with a key/value cache, chunked prefill). FlashAttention's convention
     * since 2.1 and PyTorch's {@code causal_lower_right}; the default. Rows i &lt; Nq − L_b see no
     * key and give zeros.
     */
    BOTTOM_RIGHT,
    /**
     * Query i sees keys j ≤ i (and j &lt; L_b): the first query sees the first key, as in causal
     * self-attention over right-padded sequences. PyTorch's {@code is_causal=True} ({@code
     * causal_upper_left}). Every row sees key 0 where L_b &gt; 0.
     */
    TOP_LEFT
  }

  /**
   * The options of a call: scale, causal mask, per-batch key lengths (padding) and an additive
   * bias. Build them from {@link #defaults()} or {@link #causal()}:
   * {@code Attention.Options.causal().withKeyLengths(len).withScale(0.125)}.
   *
   * @param scale multiplier of q kᵀ; NaN means 1/√D
   * @param causalMask query i sees keys j ≤ i + (L_b − Nq), L_b the key length of batch b
   *     (bottom-right aligned), or j ≤ i with {@link CausalAlignment#TOP_LEFT}
   * @param keyLengths I64 [B] on the tensors' device: batch b sees keys [0, L_b); or null (all Nk).
   *     What k and v (and their tangents) hold past L_b never reaches a result, NaN included, and
   *     their gradients there are zero
   * @param bias additive [B|1, H|1, Nq, Nk], or null; it gets a gradient when it requires grad
   * @param alignment where the causal mask's diagonal sits (ignored without the mask); null means
   *     {@link CausalAlignment#BOTTOM_RIGHT}
   */
  public record Options(double scale, boolean causalMask, Tensor keyLengths, Tensor bias, CausalAlignment alignment) {
    /**
     * The canonical constructor; a null alignment becomes {@link CausalAlignment#BOTTOM_RIGHT}.
     *
     * @param scale multiplier of q kᵀ; NaN means 1/√D
     * @param causalMask whether to mask keys after each query (aligned by {@code alignment})
     * @param keyLengths I64 [B] on the tensors' device, or null
     * @param bias additive [B|1, H|1, Nq, Nk], or null
     * @param alignment where the causal mask's diagonal sits, or null (bottom-right)
     */
    public Options {
      if (alignment == null) alignment = CausalAlignment.BOTTOM_RIGHT;
    }

    /**
     * Options with the bottom-right causal alignment (the constructor from before the alignment was
     * an option).
     *
     * @param scale multiplier of q kᵀ; NaN means 1/√D
     * @param causalMask query i sees keys j ≤ i + (L_b − Nq)
     * @param keyLengths I64 [B] on the tensors' device, or null
     * @param bias additive [B|1, H|1, Nq, Nk], or null
     */
    public Options(double scale, boolean causalMask, Tensor keyLengths, Tensor bias) {
      this(scale, causalMask, keyLengths, bias, CausalAlignment.BOTTOM_RIGHT);
    }

    /**
     * Scale 1/√D, no mask, no key lengths, no bias.
     *
     * @return the default options
     */
    public static Options defaults() {
      return new Options(Double.NaN, false, null, null);
    }

    /**
     * {@link #defaults()} with the causal mask (bottom-right aligned).
     *
     * @return causal options
     */
    public static Options causal() {
      return new Options(Double.NaN, true, null, null);
    }

    /**
     * {@link #defaults()} with the causal mask top-left aligned (query i sees keys j ≤ i, as
     * PyTorch's {@code is_causal=True}).
     *
     * @return causal options, top-left aligned
     */
    public static Options causalTopLeft() {
      return new Options(Double.NaN, true, null, null, CausalAlignment.TOP_LEFT);
    }

    /**
     * These options with the causal mask on or off (the alignment kept).
     *
     * @param c whether to mask keys after the query
     * @return new options
     */
    public Options withCausal(boolean c) {
      return new Options(scale, c, keyLengths, bias, alignment);
    }

    /**
     * These options with another alignment of the causal mask (which it leaves on or off).
     *
     * @param a the alignment (null: bottom-right)
     * @return new options
     */
    public Options withAlignment(CausalAlignment a) {
      return new Options(scale, causalMask, keyLengths, bias, a);
    }

    /**
     * These options with another scale of q kᵀ.
     *
     * @param s the scale (NaN: 1/√D)
     * @return new options
     */
    public Options withScale(double s) {
      return new Options(s, causalMask, keyLengths, bias, alignment);
    }

    /**
     * These options with per-batch key lengths (padding).
     *
     * @param lengths I64 [B] on the tensors' device, or null
     * @return new options
     */
    public Options withKeyLengths(Tensor lengths) {
      return new Options(scale, causalMask, lengths, bias, alignment);
    }

    /**
     * These options with an additive bias.
     *
     * @param b [B|1, H|1, Nq, Nk] of q's dtype and device, or null
     * @return new options
     */
    public Options withBias(Tensor b) {
      return new Options(scale, causalMask, keyLengths, b, alignment);
    }
  }

  /**
   * The output and the row log-sum-exp, kept for the backward.
   *
   * @param out [B, H, Nq, Dv] in q's dtype; differentiable in q, k, v and the bias
   * @param lse [B, H, Nq], log Σ_j exp(S_ij) over the keys each row sees (not differentiable; F32
   *     when the inputs are BF16/F16)
   */
  public record Output(Tensor out, Tensor lse) {}

  /**
   * Attention with {@link Options#defaults()} (scale 1/√D, no mask):
   * {@code Attention.softmax(q, k, v)} of q [B, H, Nq, D], k [B, Hkv, Nk, D], v [B, Hkv, Nk, Dv]
   * is [B, H, Nq, Dv].
   *
   * @param q queries [B, H, Nq, D]
   * @param k keys [B, Hkv, Nk, D], Hkv dividing H
   * @param v values [B, Hkv, Nk, Dv]
   * @return the output [B, H, Nq, Dv]
   */
  public static Tensor softmax(Tensor q, Tensor k, Tensor v) {
    return softmax(q, k, v, Options.defaults());
  }

  /**
   * Attention output: {@code Attention.softmax(q, k, v, Attention.Options.causal())} is
   * [B, H, Nq, Dv].
   *
   * @param q queries [B, H, Nq, D]
   * @param k keys [B, Hkv, Nk, D], Hkv dividing H
   * @param v values [B, Hkv, Nk, Dv]
   * @param o the options
   * @return the output [B, H, Nq, Dv]
   */
  public static Tensor softmax(Tensor q, Tensor k, Tensor v, Options o) {
    Output r = forward(q, k, v, o);
    // the lse no one will read (no backward recorded, tangents already taken): freed now, as
    // outside a scope the caller could not free it
    if (!r.out().requiresGrad()) r.lse().close();
    return r.out();
  }

  /**
   * Output and row log-sum-exp; the output is differentiable in q, k, v and the bias.
   * {@code Attention.forward(q, k, v, o)}: out [B, H, Nq, Dv], lse [B, H, Nq].
   *
   * @param q queries [B, H, Nq, D]
   * @param k keys [B, Hkv, Nk, D], Hkv dividing H
   * @param v values [B, Hkv, Nk, Dv]
   * @param o the options
   * @return the output and the log-sum-exp
   */
  public static Output forward(Tensor q, Tensor k, Tensor v, Options o) {
    Geometry g = new Geometry("attention", q, k, v, o);
    // laid out as q where the kernels read strides (a head view's output merges back as a view)
    Tensor out = g.like(g.q, new long[] {g.b, g.h, g.nq, g.dv});
    Tensor lse = Tensor.empty(new long[] {g.b, g.h, g.nq}, lseType(q.dtype()), q.device());
    try (Scope tmp = Scope.open(); MkNative.mk_attention_params p = g.block(g.op)) {
      Tensor ws = g.workspace();  // freed with tmp, right after the call
      p.out(out.address(g.op)).lse(lse.address(g.op));
      strides(p::out_strides, out);
      Native.check(MkNative.mk_attention_softmax_forward(g.device, g.dtype, p, ws.address(g.op), g.wsBytes, ws.launchStream()),
          g.context());
    }
    Tensor bias = o.bias();
    Tensor[] ins = {q, k, v, bias};
    Autograd.record("attention", out, ins, gr -> backward(g, q, k, v, bias, out, lse, gr[0]),
        t -> forwardTangent(g, out, lse, ins, t));
    return new Output(out, lse);
  }

  /**
   * The backward as a differentiable op: gradients of (q, k, v, bias) for {@code dout}. When
   * recorded (createGraph), its own backward is the fused double-backward kernel.
   */
  static Tensor[] backward(Geometry g, Tensor q, Tensor k, Tensor v, Tensor bias, Tensor out, Tensor lse, Tensor dout) {
    if (dout.dtype() != out.dtype()) dout = dout.to(out.dtype());  // (differentiable) cast of a foreign cotangent
    Tensor dO = g.readable(dout) ? dout : dout.copyContiguous();
    boolean biasGrad = bias != null && bias.requiresGrad();
    // laid out as the operands the kernels read (head views: their gradients merge back as views)
    Tensor dq = g.like(g.q, q.shape());
    Tensor dk = g.like(g.k, k.shape());
    Tensor dv = g.like(g.v, v.shape());
    Tensor dbFull = biasGrad ? Tensor.empty(new long[] {g.b, g.h, g.nq, g.nk}, q.dtype(), q.device()) : null;
    String op = "attention_backward";
    Tensor doutIn = dout;
    runBackward(g, out, lse, dO, dq, dk, dv, dbFull);
    Tensor[] outs = dbFull == null ? new Tensor[] {dq, dk, dv} : new Tensor[] {dq, dk, dv, dbFull};
    Tensor[] ins = {q, k, v, bias, doutIn};
    Autograd.record(op, outs, ins, gr -> backwardBackward(g, q, k, v, bias, out, lse, dO, gr),
        t -> backwardTangent(g, out, lse, dO, dbFull != null, ins, t));
    Tensor db = dbFull == null ? null : dbFull.sumTo(bias.shape());
    return new Tensor[] {dq, dk, dv, db};
  }

  /** The fused backward kernel into the given outputs (dbFull may be null). */
  private static void runBackward(Geometry g, Tensor out, Tensor lse, Tensor dO, Tensor dq, Tensor dk, Tensor dv,
      Tensor dbFull) {
    String op = "attention_backward";
    try (Scope tmp = Scope.open(); MkNative.mk_attention_params p = g.block(op)) {
      Tensor ws = g.workspace();
      p.out(out.address(op)).lse(lse.address(op)).dout(dO.address(op));
      p.grad_q(dq.address(op)).grad_k(dk.address(op)).grad_v(dv.address(op)).grad_bias_full(addr(dbFull, op));
      strides(p::out_strides, out);
      strides(p::dout_strides, dO);
      strides(p::grad_q_strides, dq);
      strides(p::grad_k_strides, dk);
      strides(p::grad_v_strides, dv);
      Native.check(MkNative.mk_attention_softmax_backward(g.device, g.dtype, p, ws.address(op), g.wsBytes, ws.launchStream()),
          g.context());
    }
  }

  // ---- forward-mode rules -------------------------------------------------------------------

  /**
   * Whether a fused tangent (a raw kernel result, neither recorded nor carrying outer tangents)
   * is enough: no outer forward level is visible, and nothing would be recorded for reverse mode.
   */
  private static boolean fusedTangentOk(Tensor[] ins, Tensor[] t) {
    if (Forward.active()) return false;
    if (!GradMode.isEnabled()) return true;
    for (Tensor x : ins) if (x != null && x.requiresGrad()) return false;
    for (Tensor x : t) if (x != null && x.requiresGrad()) return false;
    return true;
  }

  /** The tangent of the bias, expanded to [B, H, Nq, Nk] and contiguous, or null. */
  private static Tensor fullBias(Geometry g, Tensor tb) {
    return tb == null ? null : tb.expand(g.b, g.h, g.nq, g.nk).contiguous();
  }

  /**
   * Forward rule of "attention": the fused JVP kernel (one pass); null (the generic rule, two
   * fused backward passes, differentiable) where the tangent must itself be differentiable.
   */
  private static Tensor[] forwardTangent(Geometry g, Tensor out, Tensor lse, Tensor[] ins, Tensor[] t) {
    if (Forward.active()) return null;  // an outer forward level: the generic rule
    Tensor bias = ins[3];
    // a tangent of the bias to differentiate while the bias itself is not: the backward below has
    // no bias gradient to give it (rare; the generic rule covers it)
    if (t[3] != null && t[3].requiresGrad() && (bias == null || !bias.requiresGrad()) && GradMode.isEnabled())
      return null;
    Output r = runJvp(g, out, lse, t[0], t[1], t[2], fullBias(g, t[3]));
    if (fusedTangentOk(ins, t)) return new Tensor[] {r.out()};
    // The tangent J(q, k, v, bias) t must be differentiable (grad of jvp: second order): record it.
    // For its cotangent u, the gradient in t is Jᵀu, the backward with dout = u (itself recorded,
    // so differentiable again); in (q, k, v, bias) it is H_u t, H_u the Hessian of ⟨attention, u⟩:
    // the double backward with u as dout and t as the cotangents of the gradients (fused; the
    // generic rule's tangent went through that kernel's node, so its gradient needed third order).
    Tensor q = ins[0], k = ins[1], v = ins[2];
    Tensor tq = t[0], tk = t[1], tv = t[2], tb = t[3];
    Tensor[] recIns = {q, k, v, bias, tq, tk, tv, tb};
    Autograd.record("attention_jvp", r.out(), recIns, gr -> {
      Tensor u = gr[0].dtype() != out.dtype() ? gr[0].to(out.dtype()) : gr[0];  // cast once for both passes
      Tensor[] jtu = backward(g, q, k, v, bias, out, lse, u);
      Tensor[] hu = backwardBackward(g, q, k, v, bias, out, lse, g.operand(u),
          new Tensor[] {tq, tk, tv, fullBias(g, tb)});
      return new Tensor[] {hu[0], hu[1], hu[2], hu[3], jtu[0], jtu[1], jtu[2], jtu[3]};
    });
    return new Tensor[] {r.out()};
  }

  /**
   * Forward rule of "attention_backward" (outputs dq, dk, dv and the full bias gradient: the
   * gradient of L = ⟨attention(q, k, v, bias), dout⟩). Its tangent is H·(tq, tk, tv, tbias) +
   * ∇⟨attention, tdout⟩; H, the Hessian of L, is symmetric, so H·t is the double-backward
   * kernel with t as the cotangent of the gradients, and the second term is the backward kernel
   * with tdout: two fused passes. Null (the generic rule) where the tangent must be differentiable.
   */
  private static Tensor[] backwardTangent(Geometry g, Tensor out, Tensor lse, Tensor dO, boolean biasOut, Tensor[] ins,
      Tensor[] t) {
    if (!fusedTangentOk(ins, t)) return null;
    Tensor[] r = new Tensor[biasOut ? 4 : 3];
    Tensor tb = fullBias(g, t[3]);
    if (t[0] != null || t[1] != null || t[2] != null || tb != null) {
      Tensor[] bb = runBackwardBackward(g, biasOut, out, lse, dO, t[0], t[1], t[2], tb);
      r[0] = bb[0];
      r[1] = bb[1];
      r[2] = bb[2];
      if (biasOut) r[3] = bb[4];
    }
    if (t[4] != null) {
      Tensor td = t[4].dtype() != out.dtype() ? t[4].to(out.dtype()) : t[4];
      td = contiguousOrNull(td);
      Tensor dq = Tensor.empty(g.q.shape(), g.q.dtype(), g.dev), dk = Tensor.empty(g.k.shape(), g.k.dtype(), g.dev);
      Tensor dv = Tensor.empty(g.v.shape(), g.v.dtype(), g.dev);
      Tensor db = biasOut ? Tensor.empty(new long[] {g.b, g.h, g.nq, g.nk}, g.q.dtype(), g.dev) : null;
      runBackward(g, out, lse, td, dq, dk, dv, db);
      Tensor[] add = {dq, dk, dv, db};
      for (int i = 0; i < r.length; i++) r[i] = r[i] == null ? add[i] : r[i].add(add[i]);
    }
    return r;
  }

  private static Tensor[] backwardBackward(Geometry g, Tensor q, Tensor k, Tensor v, Tensor bias, Tensor out, Tensor lse,
      Tensor dO, Tensor[] cot) {
    String op = "attention_backward_backward";
    Tensor gdq = cot[0], gdk = cot[1], gdv = cot[2];
    Tensor gdb = cot.length > 3 ? contiguousOrNull(cot[3]) : null;
    boolean biasGrad = bias != null && bias.requiresGrad();
    // 16-bit: tensor cores on CUDA where they apply, else native runs the F32 kernel on F32 copies
    Tensor[] r = runBackwardBackward(g, biasGrad, out, lse, dO, gdq, gdk, gdv, gdb);
    Tensor gq = r[0], gk = r[1], gv = r[2], gdout = r[3], gbFull = r[4];
    Tensor[] outs = gbFull == null ? new Tensor[] {gq, gk, gv, gdout} : new Tensor[] {gq, gk, gv, gdout, gbFull};
    Autograd.record(op, outs, new Tensor[] {q, k, v, bias, dO, cot[0], cot[1], cot[2]}, gr -> {
      throw new UnsupportedOperationException(
          "third-order derivatives through fused attention ('attention_backward_backward') are not implemented");
    });
    Tensor gb = gbFull == null ? null : gbFull.sumTo(bias.shape());
    // inputs of attention_backward: (q, k, v, bias, dout)
    return new Tensor[] {gq, gk, gv, gb, gdout};
  }

  /**
   * The fused double-backward kernel: {gq, gk, gv, gdout, gbias full or null}. On the CPU in F32 and
   * F64 it reads q, k, v, out, dout and the cotangents through their strides and writes each
   * result laid out as its operand (head views in, head views out); elsewhere on contiguous copies.
   */
  private static Tensor[] runBackwardBackward(Geometry g, boolean biasGrad, Tensor out, Tensor lse, Tensor dO,
      Tensor gdq, Tensor gdk, Tensor gdv, Tensor gdb) {
    String op = "attention_backward_backward";
    Tensor gq = g.like(g.q, g.q.shape());
    Tensor gk = g.like(g.k, g.k.shape());
    Tensor gv = g.like(g.v, g.v.shape());
    Tensor gdout = g.like(dO, dO.shape());
    Tensor gbFull = biasGrad ? Tensor.empty(new long[] {g.b, g.h, g.nq, g.nk}, g.q.dtype(), g.dev) : null;
    try (Scope tmp = Scope.open(); MkNative.mk_attention_params p = g.block(op)) {
      // (copies, where needed, in the call's scope)
      Tensor outR = g.operand(out), dOR = g.operand(dO);
      Tensor gdqR = g.operand(gdq), gdkR = g.operand(gdk), gdvR = g.operand(gdv);
      Tensor ws = g.workspace();
      p.out(outR.address(op)).lse(lse.address(op)).dout(dOR.address(op));
      p.cot_grad_q(addr(gdqR, op)).cot_grad_k(addr(gdkR, op)).cot_grad_v(addr(gdvR, op))
          .cot_grad_bias_full(addr(gdb, op));
      p.cot_q(gq.address(op)).cot_k(gk.address(op)).cot_v(gv.address(op)).cot_dout(gdout.address(op))
          .cot_bias_full(addr(gbFull, op));
      strides(p::out_strides, outR);
      strides(p::dout_strides, dOR);
      strides(p::cot_grad_q_strides, gdqR);
      strides(p::cot_grad_k_strides, gdkR);
      strides(p::cot_grad_v_strides, gdvR);
      strides(p::cot_q_strides, gq);
      strides(p::cot_k_strides, gk);
      strides(p::cot_v_strides, gv);
      strides(p::cot_dout_strides, gdout);
      Native.check(MkNative.mk_attention_softmax_backward_backward(g.device, g.dtype, p, ws.address(op), g.wsBytes,
          ws.launchStream()), g.context());
    }
    return new Tensor[] {gq, gk, gv, gdout, gbFull};
  }

  /** The dtype of the row log-sum-exp: F32 for 16-bit inputs, else the inputs' dtype. */
  static DType lseType(DType t) {
    return t.isHalf() ? DType.F32 : t;
  }

  /**
   * Forward-mode product: the tangent of the output (and of the row log-sum-exp) for tangents of
   * q, k, v and the bias (any may be null). One fused pass: tO = Σ P tS v − (Σ P tS) O + P tv
   * with tS = scale(tq kᵀ + q tkᵀ) + tbias. Not recorded for reverse mode. For BF16/F16 inputs
   * (tangents of the same type) the forward runs in 16 bit, the product on 16-bit tensor cores on CUDA
   * where max(D, Dv) is at most 128 (F32 accumulation), else on F32 copies (made in the native layer) with the
   * F32 kernel; the output tangent is rounded to the 16-bit type, the lse tangent is F32.
   * {@code Attention.jvp(q, k, v, o, tq, null, null, null)}: tangents [B, H, Nq, Dv] and [B, H, Nq].
   *
   * @param q queries [B, H, Nq, D]
   * @param k keys [B, Hkv, Nk, D]
   * @param v values [B, Hkv, Nk, Dv]
   * @param o the options
   * @param tq tangent of q (q's shape, dtype and device), or null
   * @param tk tangent of k, or null
   * @param tv tangent of v, or null
   * @param tbias tangent of the bias (needs a bias in {@code o}), or null
   * @return the tangents of the output and of the lse
   */
  public static Output jvp(Tensor q, Tensor k, Tensor v, Options o, Tensor tq, Tensor tk, Tensor tv, Tensor tbias) {
    Output f;
    try (var ng = Autograd.noGrad()) {
      f = forward(q, k, v, o);
    }
    Geometry g = new Geometry("attention_jvp", q, k, v, o);
    checkLike(g.op, "tq", tq, q);
    checkLike(g.op, "tk", tk, k);
    checkLike(g.op, "tv", tv, v);
    Tensor tb = null;
    if (tbias != null) {
      if (o.bias() == null) throw new MetakernelsException(g.op + ": a bias tangent needs a bias");
      checkLike(g.op, "tbias", tbias, o.bias());
      tb = tbias.expand(g.b, g.h, g.nq, g.nk).contiguous();
    }
    // 16-bit: tensor cores on CUDA where they apply, else native widens to F32 and rounds the output
    // tangent back (the lse tangent is F32)
    return runJvp(g, f.out(), f.lse(), tq, tk, tv, tb);
  }

  /**
   * The fused JVP kernel. On the CPU in F32 and F64 it reads q, k, v, out and the tangents through
   * their strides and lays the output tangent out as out; elsewhere on contiguous copies.
   */
  private static Output runJvp(Geometry g, Tensor out, Tensor lse, Tensor tq, Tensor tk, Tensor tv, Tensor tb) {
    Tensor tout = g.like(out, out.shape());
    Tensor tlse = Tensor.empty(lse.shape(), lseType(g.q.dtype()), g.dev);
    String op = g.op;
    try (Scope tmp = Scope.open(); MkNative.mk_attention_params p = g.block(op)) {
      Tensor outR = g.operand(out), tqR = g.operand(tq), tkR = g.operand(tk), tvR = g.operand(tv);
      Tensor ws = g.workspace();
      p.out(outR.address(op)).lse(lse.address(op));
      p.tan_q(addr(tqR, op)).tan_k(addr(tkR, op)).tan_v(addr(tvR, op)).tan_bias_full(addr(tb, op));
      p.tan_out(tout.address(op)).tan_lse(tlse.address(op));
      strides(p::out_strides, outR);
      strides(p::tan_q_strides, tqR);
      strides(p::tan_k_strides, tkR);
      strides(p::tan_v_strides, tvR);
      strides(p::tan_out_strides, tout);
      Native.check(MkNative.mk_attention_softmax_jvp(g.device, g.dtype, p, ws.address(op), g.wsBytes, ws.launchStream()),
          g.context());
    }
    return new Output(tout, tlse);
  }

  private static void checkLike(String op, String name, Tensor t, Tensor like) {
    if (t == null) return;
    if (!java.util.Arrays.equals(t.shape(), like.shape()) || t.dtype() != like.dtype() || t.device() != like.device())
      throw new MetakernelsException(op + ": " + name + " " + t.describe() + " does not match " + like.describe());
  }

  private static Tensor contiguousOrNull(Tensor t) {
    return t == null ? null : t.isContiguous() ? t : t.copyContiguous();
  }

  private static long addr(Tensor t, String op) {
    return t == null ? 0L : t.address(op);
  }

  /** A setter of one of the block's stride triples, e.g. {@code p::q_strides}. */
  @FunctionalInterface
  private interface StrideSetter {
    Object set(int i, long stride);
  }

  /** t's (batch, head, row) strides through {@code set} where t is not contiguous (a contiguous one leaves them 0). */
  private static void strides(StrideSetter set, Tensor t) {
    if (t == null || t.isContiguous()) return;
    long[] st = t.strides();
    for (int i = 0; i < 3; i++) set.set(i, st[i]);
  }

  /**
   * Validated sizes, the operands as the kernels read them and the per-call constants. On the CPU
   * in F32 and F64 the forward and the backward read strided operands in place (head views of
   * [B, N, H, D] projections, windows, k and v shared across heads): q, k, v are the caller's
   * tensors wherever their columns are unit-stride; elsewhere, and for the other passes, contiguous
   * copies.
   */
  static final class Geometry {
    final String op;
    final Tensor q, k, v, bias, lengths;
    /** Whether the kernels of this call read strides (CPU, F32 or F64). */
    final boolean strided;
    final long b, h, hkv, nq, nk, d, dv, biasBs, biasHs, wsBytes;
    final double scale;
    final boolean causal, topLeft;
    /**
     * Codes.ATTENTION_CAUSAL when causal, with ATTENTION_TOP_LEFT when top-left aligned (native adds
     * TF32 on CUDA while {@link Backend#allowTf32()})
     */
    final int flags;
    final int device, dtype;
    final Device dev;

    Geometry(String op, Tensor q, Tensor k, Tensor v, Options o) {
      this.op = op;
      java.util.Objects.requireNonNull(o, op + ": options (Attention.Options.defaults() for none)");
      operands(op, q, k, v, o.bias());
      if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
        throw new MetakernelsException(op + ": expected q [B, H, Nq, D], k [B, Hkv, Nk, D], v [B, Hkv, Nk, Dv], got "
            + Checks.shapes(q, k, v));
      long[] qs = q.shape(), ks = k.shape(), vs = v.shape();
      b = qs[0];
      h = qs[1];
      nq = qs[2];
      d = qs[3];
      hkv = ks[1];
      nk = ks[2];
      dv = vs[3];
      if (ks[0] != b || vs[0] != b || vs[1] != hkv || vs[2] != nk || ks[3] != d)
        throw new MetakernelsException(op + ": shapes do not fit: " + Checks.shapes(q, k, v));
      if (h < 1)  // native requires heads >= 1 too; said here with the shapes
        throw new MetakernelsException(op + ": no query heads (H = 0): " + Checks.shapes(q, k, v));
      if (hkv < 1 || h % hkv != 0)
        throw new MetakernelsException(op + ": " + hkv + " key/value heads do not divide " + h + " query heads: "
            + Checks.shapes(q, k, v));
      if (d < 1 || d > Codes.ATTENTION_MAX_HEAD_DIM || dv < 1 || dv > Codes.ATTENTION_MAX_HEAD_DIM)
        throw new MetakernelsException(op + ": head dims must be in [1, " + Codes.ATTENTION_MAX_HEAD_DIM + "]: " + Checks.shapes(q, k, v));
      strided = q.device() == Device.CPU && (q.dtype() == DType.F32 || q.dtype() == DType.F64);
      this.q = readable(q) ? q : q.copyContiguous();
      this.k = readable(k) ? k : k.copyContiguous();
      this.v = readable(v) ? v : v.copyContiguous();
      scale = Double.isNaN(o.scale()) ? 1.0 / Math.sqrt(d) : o.scale();
      causal = o.causalMask();
      topLeft = causal && o.alignment() == CausalAlignment.TOP_LEFT;
      // TF32: the runtime's switch, applied in native
      flags = (causal ? Codes.ATTENTION_CAUSAL : 0) | (topLeft ? Codes.ATTENTION_TOP_LEFT : 0);
      dev = q.device();
      device = dev.code;
      dtype = q.dtype().code;
      Tensor bb = o.bias();
      if (bb != null) {
        long[] bsh = bb.shape();
        if (bb.rank() != 4 || (bsh[0] != 1 && bsh[0] != b) || (bsh[1] != 1 && bsh[1] != h) || bsh[2] != nq
            || bsh[3] != nk)
          throw new MetakernelsException(op + ": bias " + bb.describe() + " must be [" + b + " or 1, " + h + " or 1, "
              + nq + ", " + nk + "] for " + Checks.shapes(q, k, v));
        Tensor bc = bb.isContiguous() ? bb : bb.copyContiguous();
        bias = bc;
        biasBs = bsh[0] == 1 ? 0 : bc.strides()[0];
        biasHs = bsh[1] == 1 ? 0 : bc.strides()[1];
      } else {
        bias = null;
        biasBs = 0;
        biasHs = 0;
      }
      Tensor len = o.keyLengths();
      if (len != null) {
        Checks.indices(op, len);
        Checks.sameDevice(op, q, len);
        if (len.rank() != 1 || len.size(0) != b)
          throw new MetakernelsException(op + ": key lengths " + len.describe() + " must be [" + b + "]");
        lengths = len.isContiguous() ? len : len.copyContiguous();
      } else {
        lengths = null;
      }
      long ws;
      try (MkNative.mk_attention_params p = sizes(new MkNative.mk_attention_params())) {
        ws = MkNative.mk_attention_softmax_workspace(device, dtype, p);
      }
      if (ws < 0) Native.check(Codes.ERR_NO_DEVICE, op);
      wsBytes = ws;
    }

    /**
     * q, k, v and the bias: open, on one device, and all of one floating-point type (F32, F64,
     * BF16 or F16).
     */
    static void operands(String op, Tensor q, Tensor k, Tensor v, Tensor bias) {
      q.address(op);
      k.address(op);
      v.address(op);
      if (bias != null) bias.address(op);
      DType t = q.dtype();
      boolean same = k.dtype() == t && v.dtype() == t && (bias == null || bias.dtype() == t);
      if (!t.isFloatingPoint() || !same)
        throw new MetakernelsException(op + ": q, k, v" + (bias == null ? "" : " and the bias")
            + " must have one dtype, F32, F64, BF16 or F16, got " + Checks.shapes(q, k, v)
            + (bias == null ? "" : ", bias " + bias.describe()));
      boolean oneDevice = k.device() == q.device() && v.device() == q.device()
          && (bias == null || bias.device() == q.device());
      if (!oneDevice)
        throw new MetakernelsException(op + ": device mismatch " + Checks.shapes(q, k, v)
            + (bias == null ? "" : ", bias " + bias.describe()));
    }

    private MkNative.mk_attention_params sizes(MkNative.mk_attention_params p) {
      return p.batch(b).heads(h).kv_heads(hkv).nq(nq).nk(nk).d(d).dv(dv).flags(flags);
    }

    /**
     * The C parameter block of this call with the inputs every pass shares (sizes, q, k, v, bias,
     * key lengths, scale, flags); the caller adds its pass's named fields and closes it.
     */
    MkNative.mk_attention_params block(String op) {
      MkNative.mk_attention_params p = sizes(new MkNative.mk_attention_params());
      p.q(q.address(op)).k(k.address(op)).v(v.address(op)).bias(biasAddr()).bias_bs(biasBs).bias_hs(biasHs)
          .key_lengths(lengthsAddr()).scale(scale);
      strides(p::q_strides, q);
      strides(p::k_strides, k);
      strides(p::v_strides, v);
      return p;
    }

    /**
     * t as the kernels of this call read it: t itself where {@link #readable}, else a contiguous
     * copy (made in the caller's scope); null stays null.
     */
    Tensor operand(Tensor t) {
      return t == null || readable(t) ? t : t.copyContiguous();
    }

    /**
     * Whether the forward and the backward can take t [B, H, N, D] as it is: contiguous, or, where
     * the kernels read strides, unit-stride columns and (batch, head, row) strides that are not all
     * 0 (the block's word for contiguous) unless t holds one row.
     */
    boolean readable(Tensor t) {
      if (t.isContiguous()) return true;
      if (!strided || t.rank() != 4) return false;
      long[] sh = t.shape(), st = t.strides();
      if (sh[3] > 1 && st[3] != 1) return false;
      for (long x : st) if (x < 0) return false;
      return st[0] != 0 || st[1] != 0 || st[2] != 0 || sh[0] * sh[1] * sh[2] <= 1;
    }

    /**
     * A new output of {@code shape} laid out as {@code t} where the kernels read strides and t is a
     * permuted dense layout (see {@link LinearAttention#like}); else contiguous.
     */
    Tensor like(Tensor t, long[] shape) {
      return strided ? LinearAttention.like(t, shape) : Tensor.empty(shape, t.dtype(), t.device());
    }

    Tensor workspace() {
      return Workspace.allocate(dev, wsBytes);
    }

    long biasAddr() {
      return bias == null ? 0L : bias.address(op);
    }

    long lengthsAddr() {
      return lengths == null ? 0L : lengths.address(op);
    }

    String context() {
      return op + " q " + q.describe() + ", k " + k.describe() + ", v " + v.describe()
          + (bias == null ? "" : ", bias " + bias.describe()) + (causal ? (topLeft ? ", causal (top-left)" : ", causal") : "");
    }
  }

  /**
   * Chooses the 16-bit (BF16/F16) tensor-core attention kernels on CUDA from code, before the
   * environment variables {@code MK_ATTN_TC} (forward), {@code MK_ATTN_TC_BWD} (backward) and
   * {@code MK_ATTN_TC_DD} (double backward and JVP), which a running JVM cannot change. One
   * process-wide choice, kept by the native runtime ({@code mk_attention_tc_select}) and read by every
   * call from the next one on; {@code metakernels info} prints it. A forced v2 (or tensor-core second
   * order) still runs only where it applies (BF16/F16, max(D, Dv) ≤ 128, sm_80+; elsewhere v1 or the
   * F32 copies). All variants compute the same function to rounding; the CPU ignores the choice.
   *
   * <pre>{@code
   * Attention.TensorCoreKernels.select(TensorCoreKernels.Forward.V2, TensorCoreKernels.Backward.V2,
   *     TensorCoreKernels.Second.DEFAULT);
   * try { ... } finally { Attention.TensorCoreKernels.reset(); }
   * }</pre>
   */
  public static final class TensorCoreKernels {
    private TensorCoreKernels() {}

    /** The forward kernel. */
    public enum Forward {
      /** The environment's choice ({@code MK_ATTN_TC}) or the default (v1). */
      DEFAULT(Codes.ATTN_TC_SELECT_DEFAULT),
      /** 64 query rows per block, every head dim up to 256. */
      V1(Codes.ATTN_TC_SELECT_FORWARD_V1),
      /** 128 query rows per block, cp.async double-buffered K/V tiles of 64 keys. */
      V2(Codes.ATTN_TC_SELECT_FORWARD_V2),
      /** v2 with 32 keys per tile and two blocks per SM. */
      V2K32(Codes.ATTN_TC_SELECT_FORWARD_V2K32),
      /**
       * Hopper (sm_90a): wgmma fed by TMA, producer/consumer warpgroups, 128 query rows per block;
       * BF16/F16 with D = Dv of 64 or 128 on a compute capability 9.0 device, elsewhere {@link #V2}
       * (or v1 where v2 does not apply). F32 with TF32 allowed ({@code Backend.setAllowTf32}): a
       * Hopper kernel with one TF32 product per MMA (64 query rows per block, same D and device),
       * elsewhere v1; not yet timed on a GPU.
       */
      SM90(Codes.ATTN_TC_SELECT_FORWARD_SM90);

      final int code;

      Forward(int code) {
        this.code = code;
      }
    }

    /** The backward kernels (dq; dk, dv). */
    public enum Backward {
      /** The environment's choice ({@code MK_ATTN_TC_BWD}) or the default (v1). */
      DEFAULT(Codes.ATTN_TC_SELECT_DEFAULT),
      /** The v1 backward (dk/dv by 64-row blocks). */
      V1(Codes.ATTN_TC_SELECT_BACKWARD_V1),
      /** The v2 backward (cp.async tiles, 128 keys per dk/dv block; deterministic). */
      V2(Codes.ATTN_TC_SELECT_BACKWARD_V2),
      /**
       * Hopper (sm_90a): the dq pass and the dk/dv pass on wgmma fed by TMA, producer/consumer
       * warpgroups, deterministic; BF16/F16 with D = Dv of 64 or 128 on a compute capability 9.0
       * device, elsewhere {@link #V2} (or v1 where v2 does not apply).
       */
      SM90(Codes.ATTN_TC_SELECT_BACKWARD_SM90);

      final int code;

      Backward(int code) {
        this.code = code;
      }
    }

    /**
     * The 16-bit double backward and JVP, and the F32 ones with TF32 allowed ({@link
     * org.metakernels.runtime.Backend#setAllowTf32}: TF32 tensor cores where they apply; {@code F32}
     * forces the exact F32 kernels).
     */
    public enum Second {
      /** The environment's choice ({@code MK_ATTN_TC_DD=0}: F32 copies) or the default (tensor cores). */
      DEFAULT(Codes.ATTN_TC_SELECT_DEFAULT),
      /** Tensor cores where they apply (the m16n8k16 passes). */
      TENSOR_CORES(Codes.ATTN_TC_SELECT_SECOND_TC),
      /** F32 kernels on F32 copies of the operands. */
      F32(Codes.ATTN_TC_SELECT_SECOND_F32),
      /**
       * Tensor cores, the double backward through its Hopper passes (sm_90a: wgmma fed by TMA,
       * producer/consumer warpgroups; stats, q', dO', k', v') where they apply: BF16/F16 with D = Dv
       * of 64 or 128 (with or without a bias) on a compute capability 9.0 device; elsewhere {@link #TENSOR_CORES}.
       * Opt-in until timed on a GPU ({@code MK_ATTN_TC_DD=sm90} in the environment). The JVP the
       * same way (its Hopper pass where the double backward's apply).
       */
      SM90(Codes.ATTN_TC_SELECT_SECOND_SM90);

      final int code;

      Second(int code) {
        this.code = code;
      }
    }

    /**
     * The current choice (each pass {@code DEFAULT} unless {@link #select} chose it).
     *
     * @param forward the forward kernel
     * @param backward the backward kernels
     * @param second the double backward and JVP
     */
    public record Choice(Forward forward, Backward backward, Second second) {}

    /**
     * Chooses the kernels of every later 16-bit attention call on CUDA ({@code DEFAULT}: that pass's
     * environment variable or default).
     *
     * @param forward the forward kernel, not null
     * @param backward the backward kernels, not null
     * @param second the double backward and JVP, not null
     * @throws NullPointerException when an argument is null (nothing changed)
     */
    public static void select(Forward forward, Backward backward, Second second) {
      java.util.Objects.requireNonNull(forward, "Attention.TensorCoreKernels.select: forward");
      java.util.Objects.requireNonNull(backward, "Attention.TensorCoreKernels.select: backward");
      java.util.Objects.requireNonNull(second, "Attention.TensorCoreKernels.select: second");
      Native.ensureLoaded();
      Native.check(MkNative.mk_attention_tc_select(forward.code, backward.code, second.code),
          "Attention.TensorCoreKernels.select(" + forward + ", " + backward + ", " + second + ")");
    }

    /** Back to the environment variables and defaults for every pass. */
    public static void reset() {
      select(Forward.DEFAULT, Backward.DEFAULT, Second.DEFAULT);
    }

    /**
     * The choice in force (as {@link #select} left it).
     *
     * @return the current choice
     */
    public static Choice current() {
      Native.ensureLoaded();
      int[] f = new int[1], b = new int[1], s = new int[1];
      Native.check(MkNative.mk_attention_tc_selected(f, b, s), "Attention.TensorCoreKernels.current");
      return new Choice(Forward.values()[f[0]], backwardOf(b[0]), Second.values()[s[0]]);
    }

    // the backward codes skip 3 (v2k32 has no backward): by code, not by ordinal
    private static Backward backwardOf(int code) {
      for (Backward x : Backward.values())
        if (x.code == code) return x;
      throw new IllegalStateException("Attention.TensorCoreKernels.current: backward code " + code);
    }

    /**
     * The choice per dtype, head dim, architecture and mask with the environment and {@link #select}
     * applied, as {@code metakernels info} prints it.
     *
     * @return lines of text
     */
    public static String describe() {
      Native.ensureLoaded();
      return MkNative.mk_attention_tc_kernels().getString();
    }
  }

  /**
   * Chooses the CUDA SIMT attention kernels (F32 without TF32, and F64) from code, before the
   * environment variables {@code MK_ATTN_SIMT} (forward) and {@code MK_ATTN_SIMT_BWD} (backward),
   * which a running JVM cannot change. One process-wide choice, kept by the native runtime
   * ({@code mk_attention_simt_select}) and read by every call from the next one on; {@code
   * metakernels info} prints it. A forced v2 still runs only where it applies (D and Dv multiples of
   * 4, at most 256 in F32 or 128 in F64, 16-byte aligned tensors, sm_80+, tiles that fit the device;
   * elsewhere v1); a forced X3 (F32 on Hopper tensor cores, 3xTF32) only for F32 with D = Dv in
   * {64, 128} on a 9.0 device (elsewhere v2). Every version computes the same function to F32
   * rounding; the CPU ignores the choice.
   *
   * <pre>{@code
   * Attention.SimtKernels.select(SimtKernels.Version.V2, SimtKernels.Version.V2);
   * try { ... } finally { Attention.SimtKernels.reset(); }
   * }</pre>
   */
  public static final class SimtKernels {
    private SimtKernels() {}

    /** A kernel version of one pass. */
    public enum Version {
      /** The environment's choice ({@code MK_ATTN_SIMT}, {@code MK_ATTN_SIMT_BWD}) or the default (v1). */
      DEFAULT(Codes.ATTN_SIMT_SELECT_DEFAULT),
      /** Every tile and accumulator in shared memory; every shape. */
      V1(Codes.ATTN_SIMT_SELECT_V1),
      /** Accumulators in registers, 16-byte shared loads, cp.async tiles; deterministic. */
      V2(Codes.ATTN_SIMT_SELECT_V2),
      /**
       * F32 on Hopper tensor cores (forward, and the backward's dQ and dK/dV passes), each product
       * as three TF32 MMAs of a hi/lo split of its operands (F32-class accuracy, as PyTorch's F32
       * SDPA computes), for F32 with D = Dv in {64, 128} on a compute capability 9.0 device;
       * elsewhere {@code V2} (or {@code V1} where V2 does not apply). Not yet timed on a GPU.
       */
      X3(Codes.ATTN_SIMT_SELECT_X3);

      final int code;

      Version(int code) {
        this.code = code;
      }
    }

    /**
     * The current choice (each pass {@code DEFAULT} unless {@link #select} chose it).
     *
     * @param forward the forward kernel
     * @param backward the backward kernels
     */
    public record Choice(Version forward, Version backward) {}

    /**
     * Chooses the kernels of every later F32/F64 SIMT attention call on CUDA ({@code DEFAULT}: that
     * pass's environment variable or default).
     *
     * @param forward the forward kernel, not null
     * @param backward the backward kernels, not null
     * @throws NullPointerException when an argument is null (nothing changed)
     */
    public static void select(Version forward, Version backward) {
      java.util.Objects.requireNonNull(forward, "Attention.SimtKernels.select: forward");
      java.util.Objects.requireNonNull(backward, "Attention.SimtKernels.select: backward");
      Native.ensureLoaded();
      Native.check(MkNative.mk_attention_simt_select(forward.code, backward.code),
          "Attention.SimtKernels.select(" + forward + ", " + backward + ")");
    }

    /** Back to the environment variables and defaults for both passes. */
    public static void reset() {
      select(Version.DEFAULT, Version.DEFAULT);
    }

    /**
     * The choice in force (as {@link #select} left it).
     *
     * @return the current choice
     */
    public static Choice current() {
      Native.ensureLoaded();
      int[] f = new int[1], b = new int[1];
      Native.check(MkNative.mk_attention_simt_selected(f, b), "Attention.SimtKernels.current");
      return new Choice(Version.values()[f[0]], Version.values()[b[0]]);
    }

    /**
     * The choice per dtype and head dim with the environment and {@link #select} applied, as {@code
     * metakernels info} prints it.
     *
     * @return lines of text
     */
    public static String describe() {
      Native.ensureLoaded();
      return MkNative.mk_attention_simt_kernels().getString();
    }
  }
}
