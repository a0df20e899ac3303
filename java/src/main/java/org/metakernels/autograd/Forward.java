package org.metakernels.autograd;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import org.metakernels.internal.Internals;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/**
 * Forward-mode differentiation: tangents (directional derivatives) carried beside the values as a
 * function runs, op by op. {@link Autograd#jvp} is the usual entry; a {@link Level} is the
 * lower-level form (PyTorch's {@code forward_ad.dual_level}).
 *
 * <pre>{@code
 * try (Forward.Level lvl = Forward.enter()) {
 *   Tensor x = lvl.dual(x0, t);               // x0's values, tangent t (x0's shape)
 *   Tensor y = x.tanh().matmul(w);             // every op carries the tangent along
 *   Tensor ty = lvl.tangent(y);                // J_f(x0) t, y's shape
 * }
 * }</pre>
 *
 * <p><b>How tangents flow.</b> Every op passes through {@link Autograd#record}; while a level is
 * open on the thread, record first computes the tangents of the op's outputs from those of its
 * inputs, whatever the grad mode (a backward pass run without {@code createGraph} inside a level
 * still carries tangents: that is forward over reverse). Each level keeps the tangents of the
 * tensors made under it. Levels nest: level L's tangents are computed with the levels at and above
 * L hidden and the outer ones visible, so a tangent carries the outer levels' tangents of itself
 * (jvp of jvp), and, when the grad mode records and an input requires grad, it is recorded on the
 * tape like any result (grad of jvp).
 *
 * <p><b>Rules.</b> An op can give a fast forward rule beside its backward rule
 * ({@link Autograd#record(String, Tensor[], Tensor[], Node.Backward, Rule)}), written with
 * differentiable ops. An op without one (or whose fast rule is switched off with
 * {@link #useFallback}) gets the exact generic rule: its backward rule g(u) is linear in the
 * output cotangent u, so the output tangent is ∂/∂u ⟨g(u), t_in⟩, computed by running g on a
 * zero u that requires grad and differentiating once more (two extra backward passes of that op;
 * the op's second-order rule must exist, which every op of the library has). Inputs that carry a
 * tangent but do not require grad are marked as requiring grad while it runs (rules skip the
 * gradients of inputs that need none), so another thread reading that flag of the same tensor at
 * that moment sees it set.
 *
 * <p>Not covered: third derivatives through fused softmax attention (so jvp of jvp, or a
 * differentiable forward-over-reverse product, through it), and in-place ops on a tensor that
 * carries a tangent (refused). The library's own helpers that detach to make leaves (e.g.
 * {@code meta.Unroll}) cut tangents as they cut the tape.
 */
public final class Forward {
  private Forward() {}

  /**
   * A fast forward rule: the tangents of an op's outputs given those of its inputs.
   */
  @FunctionalInterface
  public interface Rule {
    /**
     * The output tangents.
     *
     * @param tangents one per input of the op, null where the input carries none (zero)
     * @return one per output, each of its output's shape and dtype, null for zero; or null
     *     (the array) to have the generic rule used this time
     */
    Tensor[] apply(Tensor[] tangents);
  }

  /** What a {@link Autograd#jvp} returns: the function's outputs and their tangents. */
  public record Jvp(List<Tensor> outputs, List<Tensor> tangents) {}

  // levels open on any thread: record() reads this before touching the thread-local state
  private static final AtomicInteger OPEN = new AtomicInteger();
  private static final ThreadLocal<State> STATE = ThreadLocal.withInitial(State::new);
  private static final Set<String> FALLBACK_ONLY = ConcurrentHashMap.newKeySet();
  private static final Map<String, LongAdder> FALLBACK_RUNS = new ConcurrentHashMap<>();

  /** The thread's levels; {@code levels} is replaced by its prefix while a level's rules run. */
  private static final class State { List<Level> levels = new ArrayList<>(); }

  /**
   * One forward-mode level: the tangents of the tensors made while it is open. Close it in the
   * order opened (try-with-resources); tangents are forgotten on close.
   */
  public static final class Level implements AutoCloseable {
    private final Map<Tensor, Tensor> tangents = new IdentityHashMap<>();
    private final boolean differentiable;
    private final Thread owner = Thread.currentThread();
    private boolean closed;

    private Level(boolean differentiable) {
      this.differentiable = differentiable;
    }

    /**
     * A tensor with {@code primal}'s values (a view of its memory, connected to the tape when
     * {@code primal} requires grad) that carries {@code tangent} at this level:
     * {@code lvl.dual(x, t)} has x's shape.
     *
     * @param primal the values, F32 or F64 (or any floating-point type the later ops take)
     * @param tangent its tangent: same shape, dtype and device
     * @return the dual tensor
     * @throws MetakernelsException when the tangent does not match or either tensor was freed
     */
    public Tensor dual(Tensor primal, Tensor tangent) {
      check();
      checkTangent("dual", 0, primal, tangent);
      Tensor alias = alias(primal);
      tangents.put(alias, tangent);
      return alias;
    }

    /**
     * The tangent {@code t} carries at this level, or null where it carries none (its tangent is
     * zero): {@code lvl.tangent(y)} has y's shape.
     *
     * @param t a tensor
     * @return its tangent or null
     */
    public Tensor tangent(Tensor t) {
      check();
      return tangents.get(t);
    }

    /**
     * The tangent of {@code t}, or zeros of its shape where it carries none.
     *
     * @param t a tensor
     * @return its tangent
     */
    public Tensor tangentOrZeros(Tensor t) {
      Tensor r = tangent(t);
      return r != null ? r : Tensor.zerosLike(t);
    }

    /** Closes the level (the innermost one open on this thread); its tangents are forgotten. */
    @Override
    public void close() {
      if (closed) return;
      if (Thread.currentThread() != owner) throw new IllegalStateException("forward level closed on another thread");
      List<Level> ls = STATE.get().levels;
      if (ls.isEmpty() || ls.get(ls.size() - 1) != this)
        throw new IllegalStateException("forward levels must be closed in the reverse order of opening");
      ls.remove(ls.size() - 1);
      closed = true;
      tangents.clear();
      OPEN.decrementAndGet();
    }

    private void check() {
      if (closed) throw new IllegalStateException("forward level is closed");
    }
  }

  /**
   * Opens a level on this thread (inside any open ones): {@code try (Forward.Level l = Forward.enter()) {...}}.
   * Its tangents are recorded for reverse mode when the grad mode records and an input requires grad.
   *
   * @return the level
   */
  public static Level enter() {
    return enter(true);
  }

  /**
   * Opens a level; with {@code differentiable} false its tangents are computed without recording
   * (cheaper, for a product that is not differentiated again in reverse mode).
   */
  static Level enter(boolean differentiable) {
    Level l = new Level(differentiable);
    STATE.get().levels.add(l);
    OPEN.incrementAndGet();
    return l;
  }

  /**
   * Makes {@code op} use the generic rule (two backward passes) instead of its fast forward rule,
   * or restores the fast rule: for checking a fast rule against the generic one, or working around
   * one. Process-wide. {@code Forward.useFallback("tanh", true)}.
   *
   * @param op the op's recorded name (as in error messages, e.g. "matmul"); "*" for every op
   * @param on true for the generic rule
   */
  public static void useFallback(String op, boolean on) {
    if (on)
      FALLBACK_ONLY.add(op);
    else
      FALLBACK_ONLY.remove(op);
  }

  /**
   * Whether a forward level is open and visible on this thread: false inside the rules of the
   * outermost level (its own and inner levels are hidden there). A fast rule built from kernels
   * that are not themselves differentiable checks this (and the grad mode) to decline.
   *
   * @return true when tangents are being tracked here
   */
  public static boolean active() {
    return OPEN.get() != 0 && !STATE.get().levels.isEmpty();
  }

  private static boolean fallbackOnly(String op) {
    return !FALLBACK_ONLY.isEmpty() && (FALLBACK_ONLY.contains(op) || FALLBACK_ONLY.contains("*"));
  }

  /**
   * Whether {@code t} carries a tangent at a forward level open on this thread (in-place ops refuse
   * such tensors: they would not update the tangent).
   *
   * @param t a tensor
   * @return true when some open level holds a tangent for it
   */
  public static boolean carriesTangent(Tensor t) {
    if (OPEN.get() == 0) return false;
    for (Level l : STATE.get().levels)
      if (l.tangents.containsKey(t)) return true;
    return false;
  }

  /** How often the generic rule ran, all ops together (all threads; for tests). */
  static long fallbackRunsTotal() {
    long n = 0;
    for (LongAdder a : FALLBACK_RUNS.values()) n += a.sum();
    return n;
  }

  /** How often the generic rule ran for {@code op} (all threads; for tests). */
  static long fallbackRuns(String op) {
    LongAdder a = FALLBACK_RUNS.get(op);
    return a == null ? 0 : a.sum();
  }

  // ---- the hook -----------------------------------------------------------------------------

  /** Called by {@link Autograd#record} for every op: fills the outputs' tangents at every level. */
  static void propagate(String name, Tensor[] outputs, Tensor[] inputs, Node.Backward backward, Rule fast) {
    if (OPEN.get() == 0) return;
    State s = STATE.get();
    List<Level> all = s.levels;
    if (all.isEmpty()) return;
    // outermost first: level L's rule reads the outputs, which must already carry their tangents
    // at the levels below L
    for (int L = 0; L < all.size(); L++) {
      Level lv = all.get(L);
      Tensor[] tin = null;
      for (int i = 0; i < inputs.length; i++) {
        Tensor t = inputs[i] == null ? null : lv.tangents.get(inputs[i]);
        if (t == null) continue;
        if (tin == null) tin = new Tensor[inputs.length];
        tin[i] = t;
      }
      if (tin == null) continue;
      s.levels = new ArrayList<>(all.subList(0, L)); // levels L and above hidden
      try (GradMode.Guard mode = lv.differentiable ? null : GradMode.set(false)) {
        Tensor[] tout;
        tout = fast != null && !fallbackOnly(name) ? fast.apply(tin) : null;
        if (tout == null) { // no fast rule, switched off, or it declined (returned null)
          FALLBACK_RUNS.computeIfAbsent(name, k -> new LongAdder()).increment();
          tout = generic(name, outputs, inputs, backward, tin);
        }
        if (tout == null || tout.length != outputs.length)
          throw new IllegalStateException("forward rule of '" + name + "' returned "
              + (tout == null ? "null" : tout.length) + " tangents for " + outputs.length + " outputs");
        for (int k = 0; k < outputs.length; k++) {
          Tensor t = tout[k];
          if (t == null) continue;
          Tensor o = outputs[k];
          if (!Arrays.equals(t.shape(), o.shape()) || t.dtype() != o.dtype() || t.device() != o.device())
            throw new IllegalStateException("forward rule of '" + name + "' returned tangent " + t.describe()
                + " for output " + k + " " + o.describe());
          lv.tangents.put(o, t);
        }
      } finally {
        s.levels = all;
      }
    }
  }

  /**
   * The generic rule: t_out = ∂/∂u ⟨g(u), t_in⟩ with g the op's backward rule (linear in u), u a
   * zero cotangent per floating-point output. Inputs that carry a tangent but do not require grad
   * are marked for the duration (rules skip the gradients of inputs that do not need one).
   */
  private static Tensor[] generic(
      String name, Tensor[] outputs, Tensor[] inputs, Node.Backward backward, Tensor[] tin) {
    boolean record = GradMode.isEnabled();
    List<Tensor> marked = new ArrayList<>();
    try (GradMode.Guard on = GradMode.set(true)) {
      for (int i = 0; i < inputs.length; i++)
        if (tin[i] != null && !inputs[i].requiresGrad()) {
          inputs[i].requiresGrad(true);
          marked.add(inputs[i]);
        }
      Tensor[] u = new Tensor[outputs.length];
      List<Tensor> us = new ArrayList<>();
      List<Integer> which = new ArrayList<>();
      for (int k = 0; k < outputs.length; k++) {
        Tensor o = outputs[k];
        if (!o.dtype().isFloatingPoint()) continue;
        // a non-leaf (a node newer than every node of the op's tape), so that the second pass
        // stops at it instead of walking the whole tape below the op (BF16/F16: a recorded cast of
        // an F32 leaf, the scalar multiply taking F32 and F64 only)
        u[k] = o.dtype().isHalf()
            ? Tensor.zeros(o.shape(), DType.F32, o.device()).requiresGrad(true).to(o.dtype())
            : Tensor.zerosLike(o).requiresGrad(true).mul(1.0);
        us.add(u[k]);
        which.add(k);
      }
      Tensor[] out = new Tensor[outputs.length];
      if (us.isEmpty()) return out;
      Tensor[] g = backward.apply(u);
      Tensor sum = null;
      for (int i = 0; i < inputs.length; i++) {
        if (tin[i] == null || g == null || i >= g.length || g[i] == null || !g[i].requiresGrad()) continue;
        Tensor gi = g[i], ti = tin[i];
        if (gi.dtype() != ti.dtype()) gi = gi.to(ti.dtype());
        if (gi.dtype().isHalf()) {
          gi = gi.to(DType.F32);
          ti = ti.to(DType.F32);
        }
        Tensor term = gi.mul(ti).sum();
        sum = sum == null ? term : sum.add(term);
      }
      if (sum == null) return out;
      try (GradMode.Guard rec = GradMode.set(record)) {
        List<Tensor> r = Autograd.grad(List.of(sum), us, null, record);
        for (int j = 0; j < which.size(); j++) out[which.get(j)] = r.get(j);
      }
      return out;
    } finally {
      for (Tensor t : marked) t.requiresGrad(false);
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** A new tensor object over {@code p}'s memory; an identity op on the tape when p requires grad. */
  static Tensor alias(Tensor p) {
    Tensor a = Internals.tensor().newTensor(p.storage(), p.offset(), p.shape(), p.strides(), p.dtype());
    return Autograd.record("dual", a, new Tensor[] {p}, g -> new Tensor[] {g[0]}, t -> new Tensor[] {t[0]});
  }

  /**
   * {@code t.detach()} for reverse mode only: the result keeps t's tangents at the visible levels
   * (the autograd's own helpers, and {@code meta.PerExample}, detach to make a leaf or a result
   * that does not require grad, which must not cut a jvp running around them).
   * {@code Forward.detachKeepingTangents(h)}: h's shape.
   *
   * @param t the tensor
   * @return a new tensor over t's memory, not on the tape, with t's tangents
   */
  public static Tensor detachKeepingTangents(Tensor t) {
    Tensor d = t.detach();
    if (OPEN.get() == 0) return d;
    for (Level l : STATE.get().levels) {
      Tensor tt = l.tangents.get(t);
      if (tt != null) l.tangents.put(d, tt);
    }
    return d;
  }

  static void checkTangent(String op, int i, Tensor primal, Tensor tangent) {
    if (primal == null || tangent == null)
      throw new MetakernelsException(op + ": primal " + i + " or its tangent is null");
    primal.address(op);
    tangent.address(op);
    if (!primal.dtype().isFloatingPoint() || !Arrays.equals(primal.shape(), tangent.shape())
        || primal.dtype() != tangent.dtype() || primal.device() != tangent.device())
      throw new MetakernelsException(op + ": tangent " + i + " " + tangent.describe() + " does not match primal "
          + primal.describe() + " (same shape, dtype and device; floating point)");
  }
}
