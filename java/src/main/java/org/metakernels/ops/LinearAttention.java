package org.metakernels.ops;

import java.util.Arrays;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.Forward;
import org.metakernels.autograd.GradMode;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Linear self-attention (von Oswald et al. 2022; Katharopoulos et al. 2020):
 *
 * <pre>
 *   out_j = Σ_{i ∈ M(j)} v_i φ(k_i)ᵀ φ(q_j)      [/ N, or / Σ_{i ∈ M(j)} φ(k_i)ᵀ φ(q_j)]
 * </pre>
 *
 * computed as (φ(K)ᵀV)ᵀφ(q) in O(N·Dk·Dv), never N×N; causal (i ≤ j) in chunked prefix form.
 * q, k: [..., N, Dk], v: [..., N, Dv] (leading dims are batch and heads; q may have its own
 * length when not causal). Everything is built on one fused op, {@link #product}, whose
 * gradient is three more products: first, second and higher derivatives all run on the same
 * kernel.
 *
 * <pre>{@code
 * Tensor out = LinearAttention.apply(q, k, v, FeatureMap.IDENTITY, false);      // [B, H, Nq, Dv]
 * Tensor ca = LinearAttention.apply(q, k, v, LinearAttention.Options.causal(FeatureMap.ELU_PLUS_ONE)
 *     .withNormalization(Normalization.NORMALIZER));                              // [B, H, N, Dv]
 * }</pre>
 *
 * <p>BF16 and F16. q, k and v may all be BF16 or all F16: {@link #product} and {@link #momentum}
 * compute in F32 (the running state too) and round each output once to the input type; on CUDA
 * the product runs on tensor cores (m16n8k16 MMAs, chunk-parallel, F32 states) where the key dim is
 * at most 256, with the chunk's masked q kᵀ block and the prefix state rounded to the input type as
 * MMA operands. Their gradients are the same products, so every derivative order stays in 16 bit.
 * {@link #apply} applies feature maps, normalization and the momentum term in F32 and rounds
 * φ(q), φ(k) and the result to the input type.
 *
 * <pre>{@code
 * Tensor qh = q.to(DType.BF16), kh = k.to(DType.BF16), vh = v.to(DType.BF16);
 * Tensor oh = LinearAttention.product(qh, kh, vh, LinearAttention.Mask.CAUSAL);   // BF16 [B, H, N, Dv]
 * }</pre>
 *
 * <p>TF32. With {@link org.metakernels.runtime.Backend#setAllowTf32} (or {@code -Dmetakernels.tf32=true})
 * the F32 {@link #product} on CUDA runs on TF32 tensor cores (m16n8k8 MMAs, chunk-parallel, F32
 * states and sums; q, k, v, the prefix state and the masked q kᵀ block rounded to 10 mantissa bits as
 * MMA operands) where the key dim is at most 256 and the GPU's shared memory holds the tiles, else on
 * the exact F32 SIMT form. Its gradients and double backward are the same product, so they follow the
 * switch too (so does momentum attention's product; the momentum term itself is an F32 scan). Off by
 * default: F32 stays exact. The CPU and F64 ignore it. Expect ~1e-3 relative error, as PyTorch's
 * TF32 matmuls.
 *
 * <pre>{@code
 * Backend.setAllowTf32(true);
 * Tensor o = LinearAttention.product(q.to(Device.CUDA), k.to(Device.CUDA), v.to(Device.CUDA), Mask.CAUSAL);
 * }</pre>
 */
public final class LinearAttention {
  private LinearAttention() {}

  /** φ, applied to queries and keys before the product. */
  public enum FeatureMap {
    /** φ(x) = x: the LSA of "Transformers learn in-context by gradient descent". */
    IDENTITY,
    /** φ(x) = elu(x) + 1 (Katharopoulos et al.): positive, so the normalizer is too. */
    ELU_PLUS_ONE,
    /** φ(x) = max(x, 0). */
    RELU;

    /**
     * φ(x), elementwise and differentiable: {@code FeatureMap.ELU_PLUS_ONE.apply(q)} keeps q's shape.
     *
     * @param x queries or keys
     * @return φ(x) (x itself for {@link #IDENTITY})
     */
    public Tensor apply(Tensor x) {
      return switch (this) {
        case IDENTITY -> x;
        case ELU_PLUS_ONE -> x.elu1();
        case RELU -> x.relu();
      };
    }

    boolean positive() {
      return this != IDENTITY;
    }
  }

  /** What the sum is divided by. */
  public enum Normalization {
    /** No division: the plain sum. */
    NONE,
    /** By the number of attended keys (N, or j + 1 when causal). */
    BY_LENGTH,
    /** By Σ φ(k_i)ᵀφ(q_j) over the attended keys, guarded away from zero. */
    NORMALIZER
  }

  /** Which keys query j sees. */
  public enum Mask {
    /** Every key. */
    NONE(Codes.LINEAR_MASK_NONE),
    /** Keys i ≤ j. */
    CAUSAL(Codes.LINEAR_MASK_CAUSAL),
    /** Keys i ≥ j: the mirror of causal, which the causal form's gradients use. */
    ANTI_CAUSAL(Codes.LINEAR_MASK_ANTICAUSAL);

    final int code;

    Mask(int code) {
      this.code = code;
    }

    Mask mirror() {
      return this == CAUSAL ? ANTI_CAUSAL : this == ANTI_CAUSAL ? CAUSAL : NONE;
    }
  }

  /**
   * Options of {@link #apply(Tensor, Tensor, Tensor, Options)}: build them with {@link #of} or
   * {@link #causal}, then the {@code with} methods.
   *
   * @param featureMap φ applied to q and k
   * @param causal query j sees keys i ≤ j (q and k of equal length)
   * @param normalization what the sum is divided by
   * @param momentum decay η of the momentum term Σ_{i &lt; j} η^{j−i} v_i added to the causal output
   *     (Dai et al. 2022, momentum attention); 0 turns it off
   * @param eps guard of the normalizer's denominator
   */
  public record Options(FeatureMap featureMap, boolean causal, Normalization normalization, double momentum,
      double eps) {
    /**
     * No normalization, no momentum, eps 1e-6.
     *
     * @param fm the feature map
     * @param causal whether query j sees only keys i ≤ j
     * @return the options
     */
    public static Options of(FeatureMap fm, boolean causal) {
      return new Options(fm, causal, Normalization.NONE, 0.0, 1e-6);
    }

    /**
     * {@code of(fm, true)}.
     *
     * @param fm the feature map
     * @return causal options
     */
    public static Options causal(FeatureMap fm) {
      return of(fm, true);
    }

    /**
     * These options with another normalization.
     *
     * @param n what the sum is divided by
     * @return new options
     */
    public Options withNormalization(Normalization n) {
      return new Options(featureMap, causal, n, momentum, eps);
    }

    /**
     * These options with a momentum term (causal form only).
     *
     * @param decay η in [0, 1]; 0 turns it off
     * @return new options
     */
    public Options withMomentum(double decay) {
      return new Options(featureMap, causal, normalization, decay, eps);
    }

    /**
     * These options with another guard of the normalizer.
     *
     * @param e the guard
     * @return new options
     */
    public Options withEps(double e) {
      return new Options(featureMap, causal, normalization, momentum, e);
    }
  }

  /**
   * Unnormalised linear attention with feature map {@code fm}:
   * {@code LinearAttention.apply(q, k, v, FeatureMap.IDENTITY, false)} of q [B, H, Nq, Dk],
   * k [B, H, Nk, Dk], v [B, H, Nk, Dv] is [B, H, Nq, Dv].
   *
   * @param q queries [..., Nq, Dk]
   * @param k keys [..., Nk, Dk]
   * @param v values [..., Nk, Dv]
   * @param fm φ applied to q and k
   * @param causal query j sees keys i ≤ j (then Nq = Nk)
   * @return the output [..., Nq, Dv]
   */
  public static Tensor apply(Tensor q, Tensor k, Tensor v, FeatureMap fm, boolean causal) {
    return apply(q, k, v, Options.of(fm, causal));
  }

  /**
   * Linear attention with a feature map, an optional normalization and an optional momentum term:
   * {@code LinearAttention.apply(q, k, v, Options.causal(FeatureMap.ELU_PLUS_ONE)
   * .withNormalization(Normalization.NORMALIZER))} of q, k [B, H, N, Dk] and v [B, H, N, Dv] is
   * [B, H, N, Dv].
   *
   * @param q queries [..., Nq, Dk]
   * @param k keys [..., Nk, Dk]
   * @param v values [..., Nk, Dv]
   * @param o the options
   * @return the output [..., Nq, Dv]
   * @throws MetakernelsException for momentum without the causal form, or shapes that do not fit
   */
  public static Tensor apply(Tensor q, Tensor k, Tensor v, Options o) {
    java.util.Objects.requireNonNull(o, "linearAttention.apply: options");
    boolean recorded = Forward.active() || (GradMode.isEnabled() && (q.requiresGrad() || k.requiresGrad()
        || v.requiresGrad()));
    if (recorded) return composed(q, k, v, o);  // the tape keeps its intermediates
    // nothing recorded: the intermediates (feature maps, denominators) go with a scope of their
    // own; outside any scope the caller could not have freed them
    try (Scope tmp = Scope.open()) {
      return tmp.keep(composed(q, k, v, o));
    }
  }

  private static Tensor composed(Tensor q, Tensor k, Tensor v, Options o) {
    String op = "linearAttention";
    checkShapes(op, q, k, v, o.causal() ? Mask.CAUSAL : Mask.NONE);
    if (o.momentum() != 0 && !o.causal())
      throw new MetakernelsException(op + ": momentum needs the causal form: " + Checks.shapes(q, k, v));
    Mask mask = o.causal() ? Mask.CAUSAL : Mask.NONE;
    DType half = q.dtype().isHalf() ? q.dtype() : null;  // 16-bit: φ, the division and the sum in F32
    Tensor fq = featureMap(o.featureMap(), q, half);
    Tensor fk = featureMap(o.featureMap(), k, half);
    Tensor out = product(fq, fk, v, mask);
    if (half != null && (o.normalization() != Normalization.NONE || o.momentum() != 0)) out = out.to(DType.F32);
    long nk = k.size(-2), nq = q.size(-2);
    switch (o.normalization()) {
      case NONE -> { }
      case BY_LENGTH -> {
        if (!o.causal()) out = out.mul(1.0 / Math.max(nk, 1));
        else {
          double[] inv = new double[(int) nq];
          for (int j = 0; j < nq; j++) inv[j] = 1.0 / (j + 1);
          out = out.mul(Tensor.of(inv, nq, 1).to(out.dtype()).to(out.device()));
        }
      }
      case NORMALIZER -> {
        long[] ones = k.shape();
        ones[ones.length - 1] = 1;
        Tensor den = product(fq, fk, Tensor.ones(ones, k.dtype(), k.device()), mask).to(out.dtype());  // [..., Nq, 1]
        Tensor safe = o.featureMap().positive() ? den.clampMin(o.eps())
            : Tensor.where(den.abs().lt(o.eps()), Tensor.scalar(o.eps(), den.dtype(), den.device()), den);
        out = out.div(safe);
      }
    }
    if (o.momentum() != 0) out = out.add(momentum(v, o.momentum(), false).to(out.dtype()));
    return half != null ? out.to(half) : out;
  }

  // φ(x); for 16-bit x computed in F32 and rounded back (the identity stays x itself)
  private static Tensor featureMap(FeatureMap fm, Tensor x, DType half) {
    if (half == null || fm == FeatureMap.IDENTITY) return fm.apply(x);
    return fm.apply(x.to(DType.F32)).to(half);
  }

  // same dtype and device, F32, F64, BF16 or F16, open
  private static void sameFloatTypes(String op, Tensor a, Tensor b) {
    Checks.sameDtypeAndDevice(op, a, b);
    if (!a.dtype().isFloatingPoint())
      throw new MetakernelsException(op + ": expected F32, F64, BF16 or F16 tensors, got " + a.describe());
  }

  private static void checkShapes(String op, Tensor q, Tensor k, Tensor v, Mask mask) {
    java.util.Objects.requireNonNull(mask, op + ": mask");
    sameFloatTypes(op, q, k);
    sameFloatTypes(op, q, v);
    if (q.rank() < 2 || k.rank() != q.rank() || v.rank() != q.rank())
      throw new MetakernelsException(op + ": expected q, k, v of equal rank >= 2, got " + Checks.shapes(q, k, v));
    int r = q.rank();
    long[] qs = q.shape(), ks = k.shape(), vs = v.shape();
    for (int i = 0; i < r - 2; i++)
      if (qs[i] != ks[i] || qs[i] != vs[i])
        throw new MetakernelsException(op + ": leading dims differ: " + Checks.shapes(q, k, v));
    if (qs[r - 1] != ks[r - 1])
      throw new MetakernelsException(op + ": q and k feature dims differ: " + Checks.shapes(q, k, v));
    if (ks[r - 2] != vs[r - 2])
      throw new MetakernelsException(op + ": k and v lengths differ: " + Checks.shapes(q, k, v));
    if (mask != Mask.NONE && qs[r - 2] != ks[r - 2])
      throw new MetakernelsException(op + ": causal attention needs equal q and k lengths: " + Checks.shapes(q, k, v));
    if (qs[r - 1] < 1 || vs[r - 1] < 1)
      throw new MetakernelsException(op + ": empty feature dim: " + Checks.shapes(q, k, v));
  }

  /**
   * The fused product out_j = Σ_{i ∈ M(j)} (q_j·k_i) v_i (no feature map, no normalization).
   * Its backward is made of the same op:
   * dq = product(g, v, k, M), dk = product(v, g, q, M'), dv = product(k, q, g, M'), with M'
   * the mirrored mask (anti-causal for causal); so it is differentiable to any order.
   * {@code LinearAttention.product(q, k, v, Mask.CAUSAL)} of [B, H, N, Dk], [B, H, N, Dk],
   * [B, H, N, Dv] is [B, H, N, Dv].
   *
   * <p>Views are read in place: where the leading dims of every operand collapse into a batch
   * stride and a head stride and the last dim has unit stride (the heads of a [B, N, H·D]
   * projection seen as [B, H, N, D], a window of rows, k or v expanded across heads), the kernel
   * takes the strides ({@code mk_linear_attention_product_strided_forward}), with the bits of contiguous
   * copies; other layouts are copied first. The output is laid out as q where q is a permutation of
   * a dense layout, so {@code out.permute(0, 2, 1, 3).reshape(B, N, H * Dv)} of head views is a view
   * too; else contiguous. (On CUDA the native layer packs strided operands into device scratch.)
   *
   * @param q [..., Nq, Dk], Dk at most 1024 ({@code MK_LINEAR_ATTENTION_MAX_HEAD_DIM}: the kernels
   *     keep a Dk × Dv state per group)
   * @param k [..., Nk, Dk]
   * @param v [..., Nk, Dv], Dv at most 1024
   * @param mask which keys each query sees (masked forms need Nq = Nk)
   * @return [..., Nq, Dv]
   */
  public static Tensor product(Tensor q, Tensor k, Tensor v, Mask mask) {
    String op = "linearAttention.product";
    checkShapes(op, q, k, v, mask);
    int r = q.rank();
    long nq = q.size(-2), nk = k.size(-2), dk = q.size(-1), dv = v.size(-1);
    long[] lead = Arrays.copyOf(q.shape(), r - 2);
    long[] outShape = q.shape();
    outShape[r - 1] = dv;
    String context = op + " " + Checks.shapes(q, k, v) + " mask " + mask;
    // the head dims checked before anything is allocated (outside a scope, an output allocated
    // before a refusal had no owner)
    long wsBytes = MkNative.mk_linear_attention_product_workspace(q.device().code, q.dtype().code, dk, dv);
    if (wsBytes < 0) Native.check(Codes.ERR_INVALID_ARGUMENT, context);
    Tensor out = like(q, outShape);
    // the operands as they are where their groups take two strides (batch, heads) and rows one,
    // else contiguous copies (then any split serves them), freed after the call
    Tensor qc = q, kc = k, vc = v;
    try {
      int split = split(lead, qc, kc, vc, out);
      if (split < 0) {
        qc = q.isContiguous() ? q : q.copyContiguous();
        kc = k.isContiguous() ? k : k.copyContiguous();
        vc = v.isContiguous() ? v : v.copyContiguous();
        if (!out.isContiguous()) {
          out.close();
          out = Tensor.empty(outShape, q.dtype(), q.device());
        }
        split = split(lead, qc, kc, vc, out);
      }
      long batch = Tensor.numel(Arrays.copyOf(lead, split)), heads = Tensor.numel(Arrays.copyOfRange(lead, split, r - 2));
      try (Scope tmp = Scope.open()) {
        Tensor ws = Workspace.allocate(q.device(), wsBytes);
        Native.check(MkNative.mk_linear_attention_product_strided_forward(q.device().code, q.dtype().code, batch, heads, nq,
            nk, dk, dv, qc.address(op), groupStrides(qc, split), kc.address(op), groupStrides(kc, split), vc.address(op),
            groupStrides(vc, split), out.address(op), groupStrides(out, split), mask.code, ws.address(op), wsBytes,
            q.launchStream()), context);
      }
    } catch (RuntimeException | Error e) {
      out.close();
      throw e;
    } finally {
      if (qc != q) qc.close();
      if (kc != k) kc.close();
      if (vc != v) vc.close();
    }
    Mask mirror = mask.mirror();
    return Autograd.record(op, out, new Tensor[] {q, k, v}, g -> new Tensor[] {
        q.requiresGrad() ? product(g[0], v, k, mask) : null,
        k.requiresGrad() ? product(v, g[0], q, mirror) : null,
        v.requiresGrad() ? product(k, q, g[0], mirror) : null});
  }

  /**
   * A new tensor of {@code shape} whose dims lie in memory in the order of q's (the output of a
   * product on [B, N, H, D] projections viewed as [B, H, N, D] is then laid out as [B, N, H, Dv], and
   * merging its heads back is a view): where q is a permutation of a dense layout with unit-stride
   * columns and the new tensor's columns come out unit-stride; else contiguous.
   */
  static Tensor like(Tensor q, long[] shape) {
    int r = shape.length;
    long[] qs = q.shape(), st = q.strides();
    if (q.isContiguous() || (qs[r - 1] > 1 && st[r - 1] != 1)) return Tensor.empty(shape, q.dtype(), q.device());
    // q's dims from the outermost in memory, where q is dense in some order
    int[] order = Views.denseOrder(q);
    // the new tensor's columns must be unit-stride: its last dim innermost (q's may be a size-1 dim
    // that sorts outermost, the fuzz case of a [B, H, N, 1] q permuted)
    if (order == null || (order[r - 1] != r - 1 && shape[r - 1] > 1)) return Tensor.empty(shape, q.dtype(), q.device());
    long[] permShape = new long[r];
    for (int i = 0; i < r; i++) permShape[i] = shape[order[i]];
    Tensor dense = Tensor.empty(permShape, q.dtype(), q.device());
    long[] denseStrides = dense.strides(), strides = new long[r];
    for (int i = 0; i < r; i++) strides[order[i]] = denseStrides[i];
    return Views.viewRaw(dense, shape, strides, dense.offset());
  }

  /**
   * Where the leading dims split into batch dims and head dims so that, for every tensor, each part
   * collapses to one stride and the last dim has unit stride: the split (0 to lead.length), or -1.
   */
  private static int split(long[] lead, Tensor... ts) {
    for (int s = 0; s <= lead.length; s++) {
      boolean ok = true;
      for (Tensor t : ts) ok &= groupStrides(t, s) != null;
      if (ok) return s;
    }
    return -1;
  }

  /** (batch stride, head stride, row stride) of t with the leading dims split at s, or null. */
  private static long[] groupStrides(Tensor t, int s) {
    long[] sh = t.shape(), st = t.strides();
    int r = sh.length;
    if (sh[r - 1] > 1 && st[r - 1] != 1) return null;
    for (long x : st) if (x < 0) return null;
    long b = collapse(sh, st, 0, s), h = collapse(sh, st, s, r - 2);
    if (b == -1 || h == -1) return null;
    return new long[] {b, h, sh[r - 2] == 1 ? sh[r - 1] : st[r - 2]};
  }

  /** One stride for dims [from, to) taken together (0 when they are all of size 1), or -1. */
  private static long collapse(long[] sh, long[] st, int from, int to) {
    long stride = -1, expect = 0;
    for (int i = to - 1; i >= from; i--) {
      if (sh[i] == 1) continue;
      if (stride == -1) stride = st[i];
      else if (st[i] != expect) return -1;
      expect = st[i] * sh[i];
    }
    return stride == -1 ? 0 : stride;
  }

  /**
   * Momentum term m_j = Σ_{i &lt; j} decay^{j−i} v_i (or Σ_{i &gt; j} decay^{i−j} v_i when
   * {@code reverse}). Linear in v; its adjoint is the reversed form. BF16 / F16: the running sum
   * in F32, each output rounded to v's type.
   * {@code LinearAttention.momentum(v, 0.9, false)} of [B, H, N, Dv] is [B, H, N, Dv].
   *
   * @param v [..., N, D]
   * @param decay the factor per step, in [0, 1]
   * @param reverse sum over later positions instead
   * @return v's shape
   */
  public static Tensor momentum(Tensor v, double decay, boolean reverse) {
    String op = "linearAttention.momentum";
    v.address(op);
    if (!v.dtype().isFloatingPoint())
      throw new MetakernelsException(op + ": expected F32, F64, BF16 or F16, got " + v.describe());
    if (v.rank() < 2) throw new MetakernelsException(op + ": expected [..., N, D], got " + v.describe());
    if (!(decay >= 0 && decay <= 1))
      throw new MetakernelsException(op + ": decay " + decay + " outside [0, 1] (" + v.describe() + ")");
    Tensor vc = v.isContiguous() ? v : v.copyContiguous();
    long n = v.size(-2), d = v.size(-1);
    long groups = n * d == 0 ? 0 : v.numel() / (n * d);
    Tensor out = Tensor.empty(v.shape(), v.dtype(), v.device());
    try {
      Native.check(MkNative.mk_linear_attention_momentum_forward(v.device().code, v.dtype().code, groups, n, d,
          vc.address(op), out.address(op), decay, reverse ? 1 : 0, v.launchStream()), op + " " + v.describe() + " decay " + decay,
          out);
    } finally {
      if (vc != v) vc.close();  // the contiguous copy, read by this call only
    }
    return Autograd.record(op, out, new Tensor[] {v}, g -> new Tensor[] {momentum(g[0], decay, !reverse)});
  }

  /**
   * Chooses the CUDA linear-attention forms from code, before the environment variables {@code
   * MK_LINEAR_TC} and {@code MK_LINEAR_F32}, which a running JVM cannot change. One process-wide
   * choice, kept by the native runtime ({@code mk_linear_attention_select}) and read by every call
   * from the next one on; {@code metakernels info} prints it. The forms compute the same function
   * (16-bit and TF32 within their types' rounding, x3 to F32 rounding); the CPU ignores the choice.
   * Since the backward and double backward of {@link #product} are products of the same kind (masked
   * or not), the choice moves every derivative order.
   *
   * <pre>{@code
   * LinearAttention.CudaForms.select(CudaForms.TensorCore.RECURRENT, CudaForms.F32.X3);
   * try { ... } finally { LinearAttention.CudaForms.reset(); }
   * }</pre>
   */
  public static final class CudaForms {
    private CudaForms() {}

    /** The form of BF16/F16 products and of F32 products with TF32 allowed. */
    public enum TensorCore {
      /** The environment's choice ({@code MK_LINEAR_TC}) or the default ({@code CHUNKED}). */
      DEFAULT(Codes.LINEAR_SELECT_DEFAULT),
      /** The chunk-parallel form: chunk states, a scan, output blocks (the default). */
      CHUNKED(Codes.LINEAR_SELECT_CHUNKED),
      /**
       * Products with dk at most 128. Masked square ones: a block per group and 64 value columns walks
       * the sequence with the state in registers (few groups: in segments). Unmasked ones: the state
       * form (a few key segments' states, then blocks of 256 query rows computing Q S). Not yet timed
       * on a GPU.
       */
      RECURRENT(Codes.LINEAR_SELECT_RECURRENT);

      final int code;

      TensorCore(int code) {
        this.code = code;
      }
    }

    /** The form of F32 products without TF32 (the exact path). */
    public enum F32 {
      /** The environment's choice ({@code MK_LINEAR_F32}) or the default ({@code SIMT}). */
      DEFAULT(Codes.LINEAR_SELECT_DEFAULT),
      /** The SIMT forms in F32 (the default). */
      SIMT(Codes.LINEAR_SELECT_SIMT),
      /**
       * Products with dk at most 128 on the recurrent form (masked square ones) or its state form
       * (unmasked ones), every product as three TF32 MMAs of a hi/lo split (F32-class accuracy). Not
       * yet timed on a GPU.
       */
      X3(Codes.LINEAR_SELECT_X3);

      final int code;

      F32(int code) {
        this.code = code;
      }
    }

    /**
     * The current choice (each {@code DEFAULT} unless {@link #select} chose it).
     *
     * @param tensorCore the 16-bit and TF32 form
     * @param f32 the exact F32 form
     */
    public record Choice(TensorCore tensorCore, F32 f32) {}

    /**
     * Chooses the forms of every later linear-attention product on CUDA ({@code DEFAULT}: the
     * environment variable or default).
     *
     * @param tensorCore the 16-bit and TF32 form, not null
     * @param f32 the exact F32 form, not null
     * @throws NullPointerException when an argument is null (nothing changed)
     */
    public static void select(TensorCore tensorCore, F32 f32) {
      java.util.Objects.requireNonNull(tensorCore, "LinearAttention.CudaForms.select: tensorCore");
      java.util.Objects.requireNonNull(f32, "LinearAttention.CudaForms.select: f32");
      Native.ensureLoaded();
      Native.check(MkNative.mk_linear_attention_select(tensorCore.code, f32.code),
          "LinearAttention.CudaForms.select(" + tensorCore + ", " + f32 + ")");
    }

    /** Back to the environment variables and defaults. */
    public static void reset() {
      select(TensorCore.DEFAULT, F32.DEFAULT);
    }

    /**
     * The choice in force (as {@link #select} left it).
     *
     * @return the current choice
     */
    public static Choice current() {
      Native.ensureLoaded();
      int[] t = new int[1], f = new int[1];
      Native.check(MkNative.mk_linear_attention_selected(t, f), "LinearAttention.CudaForms.current");
      TensorCore tc = Arrays.stream(TensorCore.values()).filter(x -> x.code == t[0]).findFirst().orElseThrow();
      F32 ff = Arrays.stream(F32.values()).filter(x -> x.code == f[0]).findFirst().orElseThrow();
      return new Choice(tc, ff);
    }

    /**
     * The choice with the environment and {@link #select} applied, as {@code metakernels info} prints it.
     *
     * @return a line of text
     */
    public static String describe() {
      Native.ensureLoaded();
      return MkNative.mk_linear_attention_forms().getString();
    }
  }
}
