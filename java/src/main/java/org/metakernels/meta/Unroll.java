package org.metakernels.meta;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.Node;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * An unrolled inner loop and its meta-gradient: K steps of an optimizer (the fused
 * {@link InnerStep}s) on an inner loss, then an outer loss of the final weights, differentiated
 * with respect to any meta-parameters: the initial weights (MAML), learning rates and other
 * hyperparameters, per-example data weights, a generator's or a loss's weights. Weights are
 * substituted functionally (a map from names to tensors, e.g. for
 * {@link org.metakernels.nn.Module#forward(Tensor, org.metakernels.nn.Weights)}); nothing the
 * caller owns is written.
 *
 * <pre>{@code
 * Map<String, Tensor> meta = Map.of("lr", lr);                     // lr: [] requires grad
 * Unroll.Result r = Unroll.builder()
 *     .initialWeights(net.namedParameters())
 *     .metaParameters(meta)
 *     .innerLoss((w, step, m) -> Functional.mse(net.forward(xs, Weights.of(w)), ys))
 *     .sgd(InnerStep.Sgd.lr(lr))
 *     .steps(100)
 *     .outerLoss((w, m) -> Functional.mse(net.forward(xq, Weights.of(w)), yq))
 *     .memory(Unroll.Memory.checkpoint())
 *     .run();
 * double loss = r.outerLoss();
 * Tensor dLr = r.metaGradients().get("lr");                         // [], lr's shape
 * }</pre>
 *
 * <p><b>Memory policies</b> ({@link Memory}), all giving the same meta-gradient where they
 * define the same quantity:
 *
 * <ul>
 *   <li>{@link Memory#keep()} — the reference: one tape through all K steps (inner gradients
 *       built with createGraph), then one backward. Memory O(K) steps of activations.
 *   <li>{@link Memory#checkpoint()} — the state (weights and optimizer state) stored every
 *       ⌈√K⌉ steps; the reverse pass recomputes each segment's states and runs one step's
 *       vector-Jacobian product at a time, backwards: memory O(√K) states, one extra forward.
 *       {@link Memory#checkpoint(int)} keeps at most that many snapshots and reverses segments on
 *       the optimal binomial schedule (revolve; tabulated by {@code Revolve}, bisection beyond
 *       K² · snapshots = 4·10⁸): memory O(snapshots), O(K log K) recomputed steps for log₂K
 *       snapshots, O(K²) for none.
 *   <li>{@link Memory#reversal()} — SGD with (heavy-ball) momentum only: exact reversal in
 *       fixed point (Maclaurin, Duvenaud and Adams 2015). Weights and buffers are held as
 *       integers with {@code fractionBits} fraction bits; the bits lost when the buffer is
 *       multiplied by the momentum μ = n/d are pushed onto an exact information buffer
 *       (log₂(d/n) bits per element and step), so the reverse pass recovers every step's weights
 *       bit for bit and runs the step's fused VJP at each. Native memory is flat in K.
 *   <li>{@link Memory#truncate(int)} — backpropagation through the last T steps only (the first
 *       K − T steps run without a tape; their dependence on the meta-parameters is dropped).
 *   <li>{@link Memory#implicit()} — the inner problem is assumed run to a stationary point w*:
 *       the meta-gradient is ∂L_out/∂θ − ∂²L_in/∂θ∂w · v with (∇²_w L_in + λI) v = ∂L_out/∂w
 *       solved by conjugate gradients on Hessian-vector products ({@link Autograd#hvp}). The
 *       Hessian is taken at step index K − 1 of the inner loss. The initial weights and the
 *       optimizer's hyperparameters do not move a fixed point: their meta-gradient is zero.
 * </ul>
 *
 * <p><b>Checks.</b> K ≥ 1; every meta-parameter requires grad, is open, and is used: by the
 * initial weights, the inner loss or the optimizer's hyperparameters in a step, or the outer loss;
 * one that none of them reaches throws {@link MetakernelsException} naming it. Losses must return
 * one element. The policy's constraints (REVERSAL: momentum, constant μ, not Nesterov) are checked
 * before any step runs.
 */
public final class Unroll {
  private Unroll() {}

  /** The inner loss at step {@code step} (from 0) of weights {@code w}, e.g. a support-set loss. */
  @FunctionalInterface
  public interface InnerLoss {
    /**
     * The loss.
     *
     * @param w the current weights by name (each requires grad)
     * @param step the step index, 0 to K − 1
     * @param meta the meta-parameters by name
     * @return a one-element tensor
     */
    Tensor apply(Map<String, Tensor> w, int step, Map<String, Tensor> meta);
  }

  /** The outer loss of the final weights, e.g. a query-set or validation loss. */
  @FunctionalInterface
  public interface OuterLoss {
    /**
     * The loss.
     *
     * @param w the final weights by name
     * @param meta the meta-parameters by name
     * @return a one-element tensor
     */
    Tensor apply(Map<String, Tensor> w, Map<String, Tensor> meta);
  }

  /** The memory policies; see {@link Unroll}. */
  public enum Policy {
    /** Everything stored (the reference). */
    KEEP,
    /** Snapshots, segments recomputed in the reverse pass. */
    CHECKPOINT,
    /** Exact fixed-point reversal of SGD with momentum. */
    REVERSAL,
    /** Backpropagation through the last T steps. */
    TRUNCATE,
    /** Implicit differentiation at the inner loop's fixed point. */
    IMPLICIT
  }

  /**
   * A memory policy and its settings: {@code Memory.keep()}, {@code Memory.checkpoint()},
   * {@code Memory.checkpoint(4)}, {@code Memory.reversal()}, {@code Memory.truncate(10)},
   * {@code Memory.implicit()}.
   *
   * @param policy the policy
   * @param snapshots CHECKPOINT: most snapshots kept at once (-1: ⌈√K⌉ uniform segments)
   * @param truncation TRUNCATE: T, the steps differentiated
   * @param fractionBits REVERSAL: fraction bits of the fixed-point numbers
   * @param cgIterations IMPLICIT: most conjugate-gradient iterations
   * @param cgTolerance IMPLICIT: stop when ‖r‖ ≤ tol · ‖b‖
   * @param damping IMPLICIT: λ added to the Hessian's diagonal
   */
  public record Memory(Policy policy, int snapshots, int truncation, int fractionBits, int cgIterations,
      double cgTolerance, double damping) {
    /**
     * Everything stored.
     *
     * @return the policy
     */
    public static Memory keep() {
      return new Memory(Policy.KEEP, -1, 0, 0, 0, 0, 0);
    }

    /**
     * Snapshots every ⌈√K⌉ steps: O(√K) memory.
     *
     * @return the policy
     */
    public static Memory checkpoint() {
      return new Memory(Policy.CHECKPOINT, -1, 0, 0, 0, 0, 0);
    }

    /**
     * At most {@code snapshots} snapshots at once (a memory budget), segments reversed on the
     * optimal binomial schedule (fewest recomputed steps for that budget; Griewank's revolve).
     *
     * @param snapshots at least 0
     * @return the policy
     */
    public static Memory checkpoint(int snapshots) {
      if (snapshots < 0) throw new MetakernelsException("Unroll.Memory.checkpoint: snapshots = " + snapshots + " < 0");
      return new Memory(Policy.CHECKPOINT, snapshots, 0, 0, 0, 0, 0);
    }

    /**
     * Exact reversal in fixed point with 44 fraction bits (resolution 5.7e-14, range ±2¹⁸).
     *
     * @return the policy
     */
    public static Memory reversal() {
      return reversal(44);
    }

    /**
     * Exact reversal in fixed point with the given fraction bits.
     *
     * @param fractionBits 8 to 56
     * @return the policy
     */
    public static Memory reversal(int fractionBits) {
      if (fractionBits < 8 || fractionBits > 56)
        throw new MetakernelsException("Unroll.Memory.reversal: fractionBits = " + fractionBits + " outside [8, 56]");
      return new Memory(Policy.REVERSAL, -1, 0, fractionBits, 0, 0, 0);
    }

    /**
     * Backpropagation through the last {@code t} steps.
     *
     * @param t at least 1 (K or more: the whole loop)
     * @return the policy
     */
    public static Memory truncate(int t) {
      if (t < 1) throw new MetakernelsException("Unroll.Memory.truncate: T = " + t + " (at least 1 step)");
      return new Memory(Policy.TRUNCATE, -1, t, 0, 0, 0, 0);
    }

    /**
     * Implicit differentiation: at most 100 CG iterations to relative residual 1e-10, no damping.
     *
     * @return the policy
     */
    public static Memory implicit() {
      return implicit(100, 1e-10, 0.0);
    }

    /**
     * Implicit differentiation with the given solver settings.
     *
     * @param cgIterations most iterations, at least 1
     * @param tolerance relative residual, positive
     * @param damping λ ≥ 0 added to the Hessian's diagonal
     * @return the policy
     */
    public static Memory implicit(int cgIterations, double tolerance, double damping) {
      if (cgIterations < 1 || !(tolerance > 0) || !(damping >= 0))
        throw new MetakernelsException("Unroll.Memory.implicit: iterations " + cgIterations + ", tolerance " + tolerance
            + ", damping " + damping + " (need iterations ≥ 1, tolerance > 0, damping ≥ 0)");
      return new Memory(Policy.IMPLICIT, -1, 0, 0, cgIterations, tolerance, damping);
    }
  }

  /**
   * What a run cost.
   *
   * @param peakBytes the most native bytes live during the run beyond those live when it began
   *     (host, or device for CUDA tensors; read from the allocator's high-water mark)
   * @param storedStates the most optimizer states (weights and buffers) held at once
   * @param stepsRun inner steps run in all, recomputations included
   * @param infoBufferBits REVERSAL: bits in the information buffer after the forward pass
   * @param cgIterations IMPLICIT: conjugate-gradient iterations
   * @param cgRelativeResidual IMPLICIT: the final ‖r‖ / ‖b‖
   */
  public record Stats(long peakBytes, int storedStates, long stepsRun, long infoBufferBits, int cgIterations,
      double cgRelativeResidual) {}

  /**
   * The result of {@link Builder#run()}; its tensors belong to the scope current at the call.
   *
   * @param outerLoss the outer loss at the final weights
   * @param metaGradients d(outer loss)/d(meta-parameter), by name, each of its parameter's shape
   * @param finalWeights the weights after K steps, by name (detached)
   * @param stats memory and work
   */
  public record Result(
      double outerLoss, Map<String, Tensor> metaGradients, Map<String, Tensor> finalWeights, Stats stats) {}

  /**
   * A new builder.
   *
   * @return the builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /** Collects the loop's pieces; {@link #run()} checks and runs it. */
  public static final class Builder {
    private Map<String, Tensor> initial;
    private Map<String, Tensor> meta = Map.of();
    private InnerLoss inner;
    private OuterLoss outer;
    private Function<String, Object> optimizer;
    private String optimizerName;
    private int steps = 1;
    private Memory memory = Memory.keep();
    private boolean firstOrder;

    private Builder() {}

    /**
     * First-order meta-gradients (first-order MAML): the inner gradients are treated as constants
     * in the reverse pass (not differentiated again), so no second derivatives are taken. The
     * meta-gradient of what reaches the loop only through the inner gradient (e.g. data weights)
     * is then zero. Off by default.
     *
     * @param on whether to drop the second-order terms
     * @return this
     */
    public Builder firstOrder(boolean on) {
      firstOrder = on;
      return this;
    }

    /**
     * The initial weights by name (insertion order kept); they may be meta-parameters themselves
     * or functions of them (a generator's output).
     *
     * @param w the weights
     * @return this
     */
    public Builder initialWeights(Map<String, Tensor> w) {
      initial = new LinkedHashMap<>(Objects.requireNonNull(w, "initialWeights"));
      return this;
    }

    /**
     * The meta-parameters by name: tensors that require grad and get a meta-gradient.
     *
     * @param m the meta-parameters
     * @return this
     */
    public Builder metaParameters(Map<String, Tensor> m) {
      meta = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(m, "metaParameters")));
      return this;
    }

    /**
     * The inner loss.
     *
     * @param f the loss of (weights, step, meta-parameters)
     * @return this
     */
    public Builder innerLoss(InnerLoss f) {
      inner = Objects.requireNonNull(f, "innerLoss");
      return this;
    }

    /**
     * The outer loss.
     *
     * @param f the loss of (final weights, meta-parameters)
     * @return this
     */
    public Builder outerLoss(OuterLoss f) {
      outer = Objects.requireNonNull(f, "outerLoss");
      return this;
    }

    /**
     * SGD with the same options for every weight.
     *
     * @param o the options (tensor hyperparameters may be meta-parameters)
     * @return this
     */
    public Builder sgd(InnerStep.Sgd o) {
      Objects.requireNonNull(o, "sgd");
      return optimizer("sgd", name -> o);
    }

    /**
     * SGD with options per weight name (e.g. one learning-rate tensor per weight).
     *
     * @param o the options of each weight
     * @return this
     */
    public Builder sgdPerWeight(Function<String, InnerStep.Sgd> o) {
      Objects.requireNonNull(o, "sgd");
      return optimizer("sgd", o::apply);
    }

    /**
     * SGD with momentum, the same options for every weight.
     *
     * @param o the options
     * @return this
     */
    public Builder momentum(InnerStep.Momentum o) {
      Objects.requireNonNull(o, "momentum");
      return optimizer("momentum", name -> o);
    }

    /**
     * SGD with momentum, options per weight name.
     *
     * @param o the options of each weight
     * @return this
     */
    public Builder momentumPerWeight(Function<String, InnerStep.Momentum> o) {
      Objects.requireNonNull(o, "momentum");
      return optimizer("momentum", o::apply);
    }

    /**
     * Adam, the same options for every weight (step t = k + 1 at step index k).
     *
     * @param o the options
     * @return this
     */
    public Builder adam(InnerStep.Adam o) {
      Objects.requireNonNull(o, "adam");
      return optimizer("adam", name -> o);
    }

    /**
     * Adam, options per weight name.
     *
     * @param o the options of each weight
     * @return this
     */
    public Builder adamPerWeight(Function<String, InnerStep.Adam> o) {
      Objects.requireNonNull(o, "adam");
      return optimizer("adam", o::apply);
    }

    private Builder optimizer(String name, Function<String, Object> o) {
      optimizerName = name;
      optimizer = o;
      return this;
    }

    /**
     * K, the number of inner steps.
     *
     * @param k at least 1
     * @return this
     */
    public Builder steps(int k) {
      steps = k;
      return this;
    }

    /**
     * The memory policy (default {@link Memory#keep()}).
     *
     * @param m the policy
     * @return this
     */
    public Builder memory(Memory m) {
      memory = Objects.requireNonNull(m, "memory");
      return this;
    }

    /**
     * Runs the loop and its reverse pass.
     *
     * @return the outer loss, the meta-gradients, the final weights and the statistics
     * @throws MetakernelsException for a loop that does not fit (see {@link Unroll})
     */
    public Result run() {
      return new Run(this).execute();
    }
  }

  // ---- implementation -----------------------------------------------------------------------

  /** One state of the loop: weights and optimizer state per weight, in the weights' order. */
  static final class State {
    final Tensor[] w, buf, m, v;

    State(int n, boolean withBuf, boolean withMoments) {
      w = new Tensor[n];
      buf = withBuf ? new Tensor[n] : null;
      m = withMoments ? new Tensor[n] : null;
      v = withMoments ? new Tensor[n] : null;
    }

    List<Tensor> all() {
      List<Tensor> r = new ArrayList<>();
      Collections.addAll(r, w);
      if (buf != null) Collections.addAll(r, buf);
      if (m != null) {
        Collections.addAll(r, m);
        Collections.addAll(r, v);
      }
      return r;
    }

    static State of(State like, List<Tensor> all) {
      State s = new State(like.w.length, like.buf != null, like.m != null);
      int n = like.w.length, k = 0;
      for (int i = 0; i < n; i++) s.w[i] = all.get(k++);
      if (s.buf != null)
        for (int i = 0; i < n; i++) s.buf[i] = all.get(k++);
      if (s.m != null) {
        for (int i = 0; i < n; i++) s.m[i] = all.get(k++);
        for (int i = 0; i < n; i++) s.v[i] = all.get(k++);
      }
      return s;
    }
  }

  /** One run: the validated builder and the bookkeeping of the reverse pass. */
  static final class Run {
    final String op = "Unroll";
    final Map<String, Tensor> initial;
    final Map<String, Tensor> meta;
    final List<String> names;
    final List<String> metaNames;
    final List<Tensor> metaList;
    final InnerLoss inner;
    final OuterLoss outer;
    final Function<String, Object> optimizer;
    final String optimizerName;
    final int k;
    final Memory memory;
    final boolean firstOrder;
    boolean fullOrderCheck; // markFirstStep: differentiate the inner gradient even for firstOrder
    final Device device;
    final IdentityHashMap<Tensor, Boolean> used = new IdentityHashMap<>();
    Tensor[] metaGrad; // caller-owned running sums
    int storedNow, storedMax;
    long stepsRun;
    long infoBits;
    int cgIters;
    double cgResidual = Double.NaN;

    Run(Builder b) {
      if (b.steps < 1) throw new MetakernelsException(op + ": steps K = " + b.steps + " (at least 1)");
      if (b.initial == null || b.initial.isEmpty()) throw new MetakernelsException(op + ": no initial weights");
      if (b.inner == null) throw new MetakernelsException(op + ": no inner loss");
      if (b.outer == null) throw new MetakernelsException(op + ": no outer loss");
      if (b.optimizer == null) throw new MetakernelsException(op + ": no optimizer (sgd, momentum or adam)");
      initial = b.initial;
      meta = b.meta;
      names = new ArrayList<>(initial.keySet());
      metaNames = new ArrayList<>(meta.keySet());
      metaList = new ArrayList<>(meta.values());
      inner = b.inner;
      outer = b.outer;
      optimizer = b.optimizer;
      optimizerName = b.optimizerName;
      k = b.steps;
      memory = b.memory;
      firstOrder = b.firstOrder;
      Tensor first = initial.get(names.get(0));
      device = Objects.requireNonNull(first, "initial weight " + names.get(0)).device();
      for (String n : names) {
        Tensor t = Objects.requireNonNull(initial.get(n), "initial weight " + n);
        t.address(op);
        if (!t.dtype().isFloating())
          throw new MetakernelsException(op + ": initial weight '" + n + "' " + t.describe() + " must be F32 or F64");
        if (t.device() != device)
          throw new MetakernelsException(op + ": initial weight '" + n + "' " + t.describe() + " is not on " + device
              + " like '" + names.get(0) + "'");
      }
      for (String n : metaNames) {
        Tensor t = Objects.requireNonNull(meta.get(n), "meta-parameter " + n);
        t.address(op);
        if (!t.requiresGrad())
          throw new MetakernelsException(
              op + ": meta-parameter '" + n + "' " + t.describe() + " does not require grad");
      }
      for (String n : names) {
        Object o = optimizer.apply(n);
        if (o == null) throw new MetakernelsException(op + ": no optimizer options for weight '" + n + "'");
      }
      if (memory.policy() == Policy.REVERSAL) Reversal.checkOptions(this);
    }

    Map<String, Tensor> map(Tensor[] w) {
      Map<String, Tensor> r = new LinkedHashMap<>();
      for (int i = 0; i < names.size(); i++) r.put(names.get(i), w[i]);
      return r;
    }

    Tensor innerLoss(Tensor[] w, int step) {
      Tensor l = inner.apply(map(w), step, meta);
      if (l == null || l.numel() != 1)
        throw new MetakernelsException(op + ": the inner loss at step " + step + " is "
            + (l == null ? "null" : l.describe()) + ", not one element");
      return l;
    }

    Tensor outerLoss(Tensor[] w) {
      Tensor l = outer.apply(map(w), meta);
      if (l == null || l.numel() != 1)
        throw new MetakernelsException(
            op + ": the outer loss is " + (l == null ? "null" : l.describe()) + ", not one element");
      return l;
    }

    State zeroState(Tensor[] w) {
      boolean mom = optimizerName.equals("momentum"), adam = optimizerName.equals("adam");
      State s = new State(w.length, mom, adam);
      for (int i = 0; i < w.length; i++) {
        s.w[i] = w[i];
        if (mom) s.buf[i] = Tensor.zerosLike(w[i]);
        if (adam) {
          s.m[i] = Tensor.zerosLike(w[i]);
          s.v[i] = Tensor.zerosLike(w[i]);
        }
      }
      return s;
    }

    /**
     * One optimizer step from {@code s} at step index {@code step}. With {@code graph} the inner
     * gradient is built with createGraph and the step is recorded (s must require grad where it
     * should be differentiated); without, s is read through detached leaves and nothing is kept.
     */
    State step(State s, int step, boolean graph) {
      stepsRun++;
      Tensor[] w = s.w;
      if (!graph) {
        w = new Tensor[s.w.length];
        for (int i = 0; i < w.length; i++) w[i] = s.w[i].detach().requiresGrad(true);
      }
      List<Tensor> grads;
      try (var on = Autograd.enableGrad()) {
        Tensor loss = innerLoss(w, step);
        if (!loss.requiresGrad())
          throw new MetakernelsException(op + ": the inner loss at step " + step + " does not depend on the weights");
        grads = Autograd.grad(loss, List.of(w), graph && (!firstOrder || fullOrderCheck));
      }
      State out = new State(w.length, s.buf != null, s.m != null);
      try (var mode = graph ? Autograd.enableGrad() : Autograd.noGrad()) {
        for (int i = 0; i < w.length; i++) {
          Object o = optimizer.apply(names.get(i));
          Tensor p = graph ? s.w[i] : s.w[i].detach();
          if (o instanceof InnerStep.Sgd sgd) {
            out.w[i] = InnerStep.sgd(p, grads.get(i), sgd);
          } else if (o instanceof InnerStep.Momentum mo) {
            InnerStep.MomentumResult r = InnerStep.momentum(p, grads.get(i), s.buf[i], mo);
            out.w[i] = r.param();
            out.buf[i] = r.buffer();
          } else if (o instanceof InnerStep.Adam ad) {
            InnerStep.AdamResult r = InnerStep.adam(p, grads.get(i), s.m[i], s.v[i], step + 1L, ad);
            out.w[i] = r.param();
            out.m[i] = r.m();
            out.v[i] = r.v();
          } else {
            throw new MetakernelsException(op + ": options for '" + names.get(i) + "' are " + o.getClass().getName());
          }
        }
      }
      return out;
    }

    /** Detached, caller-owned copies (they outlive every scope until {@link #free}). */
    State own(State s) {
      List<Tensor> all = s.all(), out = new ArrayList<>(all.size());
      for (Tensor t : all) out.add(own(t));
      storedNow++;
      storedMax = Math.max(storedMax, storedNow);
      return State.of(s, out);
    }

    /** Every caller-owned tensor of this run not yet freed or handed out: freed on failure. */
    final IdentityHashMap<Tensor, Boolean> owned = new IdentityHashMap<>();

    Tensor own(Tensor t) {
      Tensor d = t.detach().copyContiguous();
      Scope.transfer(d.storage(), null);
      owned.put(d, true);
      return d;
    }

    void free(State s) {
      close(s.all());
      storedNow--;
    }

    /** The state as fresh leaves that require grad (same memory). */
    static State leaves(State s) {
      List<Tensor> out = new ArrayList<>();
      for (Tensor t : s.all()) out.add(t.detach().requiresGrad(true));
      return State.of(s, out);
    }

    /** Marks the meta-parameters reachable from {@code outputs} through the tape. */
    void markUsed(List<Tensor> outputs) {
      IdentityHashMap<Tensor, Boolean> metas = new IdentityHashMap<>();
      for (Tensor t : metaList)
        if (!used.containsKey(t)) metas.put(t, true);
      if (metas.isEmpty()) return;
      IdentityHashMap<Node, Boolean> seen = new IdentityHashMap<>();
      ArrayList<Node> stack = new ArrayList<>();
      for (Tensor o : outputs) {
        if (o == null) continue;
        if (metas.containsKey(o)) used.put(o, true);
        if (o.gradFn() != null && seen.put(o.gradFn(), true) == null) stack.add(o.gradFn());
      }
      while (!stack.isEmpty()) {
        Node n = stack.remove(stack.size() - 1);
        for (Tensor in : n.inputs()) {
          if (in == null) continue;
          if (metas.containsKey(in)) used.put(in, true);
          if (in.gradFn() != null && seen.put(in.gradFn(), true) == null) stack.add(in.gradFn());
        }
      }
    }

    void checkUsed() {
      for (int i = 0; i < metaList.size(); i++)
        if (!used.containsKey(metaList.get(i)))
          throw new MetakernelsException(op + ": meta-parameter '" + metaNames.get(i) + "' "
              + metaList.get(i).describe() + " is used by neither the initial weights, the inner loss, the optimizer's"
              + " hyperparameters nor the outer loss");
    }

    /** Adds contributions to the meta-gradients (null entries: none). */
    void addMeta(List<Tensor> g) {
      for (int i = 0; i < metaGrad.length; i++) {
        Tensor x = g.get(i);
        if (x == null) continue;
        Tensor sum = metaGrad[i] == null ? own(x) : own(metaGrad[i].add(x.detach()));
        if (metaGrad[i] != null) close(List.of(metaGrad[i]));
        metaGrad[i] = sum;
      }
    }

    /**
     * The vector-Jacobian product of step {@code step} at state {@code s} (detached values):
     * the adjoint of s from the adjoint of the next state; meta contributions added. Returns
     * caller-owned adjoints.
     */
    List<Tensor> stepVjp(State s, int step, List<Tensor> adjNext) {
      try (Scope tmp = Scope.open()) {
        State in = leaves(s);
        State out = step(in, step, true);
        List<Tensor> outs = new ArrayList<>(), seeds = new ArrayList<>();
        List<Tensor> all = out.all();
        for (int i = 0; i < all.size(); i++)
          if (adjNext.get(i) != null && all.get(i).requiresGrad()) {
            outs.add(all.get(i));
            seeds.add(adjNext.get(i));
          }
        markUsed(all);
        List<Tensor> inputs = new ArrayList<>(in.all());
        int ns = inputs.size();
        inputs.addAll(metaList);
        List<Tensor> g = outs.isEmpty() ? zeros(inputs) : Autograd.grad(outs, inputs, seeds, false);
        addMeta(g.subList(ns, g.size()));
        List<Tensor> adj = new ArrayList<>(ns);
        for (int i = 0; i < ns; i++) adj.add(own(g.get(i)));
        return adj;
      }
    }

    static List<Tensor> zeros(List<Tensor> like) {
      List<Tensor> z = new ArrayList<>();
      for (Tensor t : like) z.add(Tensor.zerosLike(t));
      return z;
    }

    void close(List<Tensor> ts) {
      for (Tensor t : ts)
        if (t != null) {
          owned.remove(t);
          t.close();
        }
    }

    void closeAll() {
      for (Tensor t : new ArrayList<>(owned.keySet())) t.close();
      owned.clear();
    }

    /** The outer loss at the (detached) final state: its value and the adjoint of that state. */
    List<Tensor> outerAdjoint(State last, double[] lossOut) {
      try (Scope tmp = Scope.open(); var on = Autograd.enableGrad()) {
        State in = leaves(last);
        Tensor l = outerLoss(in.w);
        lossOut[0] = l.item();
        markUsed(List.of(l));
        List<Tensor> adj = new ArrayList<>();
        if (!l.requiresGrad()) {
          for (Tensor t : in.all()) adj.add(null);
          return adj;
        }
        List<Tensor> inputs = new ArrayList<>(List.of(in.w));
        inputs.addAll(metaList);
        List<Tensor> g = Autograd.grad(l, inputs, false);
        addMeta(g.subList(in.w.length, g.size()));
        for (int i = 0; i < in.w.length; i++) adj.add(own(g.get(i)));
        for (int i = in.w.length; i < in.all().size(); i++) adj.add(null); // optimizer state: no outer use
        return adj;
      }
    }

    /** The adjoint of the initial weights into the meta-parameters (through their graph). */
    void initialIntoMeta(List<Tensor> adj0) {
      try (Scope tmp = Scope.open()) {
        List<Tensor> outs = new ArrayList<>(), seeds = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
          Tensor w0 = initial.get(names.get(i));
          if (w0.requiresGrad() && adj0.get(i) != null) {
            outs.add(w0);
            seeds.add(adj0.get(i));
          }
        }
        markUsed(outs);
        if (outs.isEmpty() || metaList.isEmpty()) return;
        addMeta(Autograd.grad(outs, metaList, seeds, false));
      }
    }

    /** The initial state: detached copies of the initial weights, zero optimizer state. */
    State initialState() {
      Tensor[] w = new Tensor[names.size()];
      for (int i = 0; i < w.length; i++) w[i] = initial.get(names.get(i)).detach();
      try (Scope tmp = Scope.open()) {  // own() keeps copies: the zero state's originals go with tmp
        return own(zeroState(w));
      }
    }

    /** Step 0 with a tape from the real initial weights: which meta-parameters the loop uses. */
    void markFirstStep() {
      try (Scope tmp = Scope.open()) {
        Tensor[] w = new Tensor[names.size()];
        List<Tensor> w0 = new ArrayList<>();
        for (int i = 0; i < w.length; i++) {
          Tensor t = initial.get(names.get(i));
          w[i] = t.requiresGrad() ? t : t.detach().requiresGrad(true);
          w0.add(t);
        }
        markUsed(w0);
        fullOrderCheck = true;
        try {
          markUsed(step(zeroState(w), 0, true).all());
        } finally {
          fullOrderCheck = false;
        }
        stepsRun--; // a check, not a step of the loop
      }
    }

    long liveNow() {
      return device == Device.CUDA ? MkNative.mk_device_live_bytes() : MkNative.mk_host_live_bytes();
    }

    long resetPeak() {
      return device == Device.CUDA ? MkNative.mk_device_reset_peak_bytes() : MkNative.mk_host_reset_peak_bytes();
    }

    long peak() {
      return device == Device.CUDA ? MkNative.mk_device_peak_bytes() : MkNative.mk_host_peak_bytes();
    }

    Result execute() {
      long base = resetPeak();
      metaGrad = new Tensor[metaList.size()];
      double[] loss = new double[1];
      State last;
      try {
        switch (memory.policy()) {
          case KEEP:
            last = keepOrTruncate(loss, 0);
            break;
          case TRUNCATE:
            last = keepOrTruncate(loss, Math.max(0, k - memory.truncation()));
            break;
          case CHECKPOINT:
            last = memory.snapshots() < 0 ? checkpointUniform(loss) : checkpointBudget(loss);
            break;
          case REVERSAL:
            last = new Reversal(this).run(loss);
            break;
          case IMPLICIT:
            last = implicit(loss);
            break;
          default:
            throw new IllegalStateException(memory.policy().toString());
        }
        checkUsed();
      } catch (RuntimeException | Error e) {
        closeAll();
        throw e;
      }
      long peakBytes = Math.max(0, peak() - base);
      Map<String, Tensor> grads = new LinkedHashMap<>();
      Scope cur = Scope.current();
      for (int i = 0; i < metaList.size(); i++) {
        Tensor g = metaGrad[i] != null ? metaGrad[i] : own(Tensor.zerosLike(metaList.get(i)));
        owned.remove(g);
        if (cur != null) Scope.transfer(g.storage(), cur);
        grads.put(metaNames.get(i), g);
      }
      Map<String, Tensor> fin = new LinkedHashMap<>();
      for (int i = 0; i < names.size(); i++) {
        Tensor w = last.w[i];
        owned.remove(w);
        if (cur != null) Scope.transfer(w.storage(), cur);
        fin.put(names.get(i), w);
      }
      closeAll(); // the final optimizer state (and nothing else should be left)
      return new Result(loss[0], Collections.unmodifiableMap(grads), Collections.unmodifiableMap(fin),
          new Stats(peakBytes, storedMax, stepsRun, infoBits, cgIters, cgResidual));
    }

    // ---- KEEP and TRUNCATE: one tape (over the last K − start steps) ----------------------

    State keepOrTruncate(double[] loss, int start) {
      if (start > 0 || firstOrder) markFirstStep();
      State s = start > 0 ? initialState() : null;
      for (int j = 0; j < start; j++) {
        State next;
        try (Scope tmp = Scope.open()) {
          next = own(step(s, j, false));
        }
        free(s);
        s = next;
      }
      try (Scope tape = Scope.open()) {
        State cur;
        if (start == 0) {
          Tensor[] w = new Tensor[names.size()];
          for (int i = 0; i < w.length; i++) {
            Tensor t = initial.get(names.get(i));
            w[i] = t.requiresGrad() ? t : t.detach().requiresGrad(true);
          }
          cur = zeroState(w);
          storedNow++;
        } else {
          cur = leaves(s);
        }
        for (int j = start; j < k; j++) {
          cur = step(cur, j, true);
          storedNow++;
          storedMax = Math.max(storedMax, storedNow);
        }
        try (var on = Autograd.enableGrad()) {
          Tensor l = outerLoss(cur.w);
          loss[0] = l.item();
          List<Tensor> roots = new ArrayList<>(List.of(l));
          roots.addAll(cur.all());
          markUsed(roots);
          if (l.requiresGrad() && !metaList.isEmpty()) {
            List<Tensor> want = new ArrayList<>(), idx = new ArrayList<>();
            int[] slot = new int[metaList.size()];
            for (int i = 0; i < metaList.size(); i++) slot[i] = -1;
            for (int i = 0; i < metaList.size(); i++)
              if (used.containsKey(metaList.get(i))) {
                slot[i] = want.size();
                want.add(metaList.get(i));
              }
            if (!want.isEmpty()) {
              List<Tensor> g = Autograd.grad(l, want, false);
              List<Tensor> full = new ArrayList<>();
              for (int i = 0; i < metaList.size(); i++) full.add(slot[i] < 0 ? null : g.get(slot[i]));
              addMeta(full);
            }
          }
        }
        State fin = own(cur);
        storedNow = 1;
        if (s != null) free(s);
        return fin;
      }
    }

    // ---- CHECKPOINT ---------------------------------------------------------------------------

    State advance(State s, int from, int to) {
      State cur = s;
      for (int j = from; j < to; j++) {
        State next;
        try (Scope tmp = Scope.open()) {
          next = own(step(cur, j, false));
        }
        if (cur != s) free(cur);
        cur = next;
      }
      return cur;
    }

    State checkpointUniform(double[] loss) {
      markFirstStep();
      int seg = (int) Math.ceil(Math.sqrt(k));
      List<State> snaps = new ArrayList<>();
      State s = initialState();
      snaps.add(s);
      for (int start = 0; start + seg < k; start += seg) {
        s = advance(s, start, start + seg);
        snaps.add(s);
      }
      int lastStart = (snaps.size() - 1) * seg;
      State fin = advance(s, lastStart, k);
      if (fin == s) fin = own(s);
      List<Tensor> adj = outerAdjoint(fin, loss);
      for (int si = snaps.size() - 1; si >= 0; si--) {
        int from = si * seg, to = Math.min(k, from + seg);
        List<State> seq = new ArrayList<>();
        seq.add(snaps.get(si));
        for (int j = from; j < to - 1; j++) seq.add(advance(seq.get(seq.size() - 1), j, j + 1));
        for (int j = to - 1; j >= from; j--) {
          List<Tensor> prev = stepVjp(seq.get(j - from), j, adj);
          close(adj);
          adj = prev;
          free(seq.get(j - from));
        }
      }
      initialIntoMeta(adj);
      close(adj);
      return fin;
    }

    State checkpointBudget(double[] loss) {
      markFirstStep();
      State s0 = initialState();
      State fin = advance(s0, 0, k);
      if (fin == s0) fin = own(s0);
      List<Tensor> adj = outerAdjoint(fin, loss);
      revolve = Revolve.plan(k, memory.snapshots());
      adj = reverse(s0, 0, k, adj, memory.snapshots());
      free(s0);
      initialIntoMeta(adj);
      close(adj);
      return fin;
    }

    /** The optimal schedule of checkpoint(snapshots), null where too large to tabulate (bisection). */
    Revolve revolve;

    /**
     * Reverses steps [from, to) given the state at {@code from} and the adjoint at {@code to}, with
     * {@code slots} snapshots free: the split from {@link Revolve} (bisection without a plan).
     */
    List<Tensor> reverse(State s, int from, int to, List<Tensor> adj, int slots) {
      if (to - from == 1) {
        List<Tensor> prev = stepVjp(s, from, adj);
        close(adj);
        return prev;
      }
      if (slots == 0) {
        for (int j = to - 1; j >= from; j--) {
          State sj = advance(s, from, j);
          List<Tensor> prev = stepVjp(sj, j, adj);
          close(adj);
          adj = prev;
          if (sj != s) free(sj);
        }
        return adj;
      }
      int mid = from + (revolve != null ? revolve.split(to - from, slots) : (to - from) / 2);
      State sm = advance(s, from, mid);
      adj = reverse(sm, mid, to, adj, slots - 1);
      free(sm);
      return reverse(s, from, mid, adj, slots);
    }

    // ---- IMPLICIT -----------------------------------------------------------------------------

    State implicit(double[] loss) {
      markFirstStep();
      State s0 = initialState();
      State s = advance(s0, 0, k);
      if (s == s0) s = own(s0);
      free(s0);
      try (Scope tmp = Scope.open()) {
        State at = leaves(s);
        // ∂L_out/∂w and the direct part ∂L_out/∂θ
        Tensor[] b;
        try (var on = Autograd.enableGrad()) {
          Tensor l = outerLoss(at.w);
          loss[0] = l.item();
          markUsed(List.of(l));
          List<Tensor> inputs = new ArrayList<>(List.of(at.w));
          inputs.addAll(metaList);
          List<Tensor> g = l.requiresGrad() ? Autograd.grad(l, inputs, false) : zeros(inputs);
          addMeta(g.subList(at.w.length, g.size()));
          b = g.subList(0, at.w.length).toArray(new Tensor[0]);
        }
        // the inner gradient with a tape, once; every Hessian-vector product reuses it
        List<Tensor> gin;
        try (var on = Autograd.enableGrad()) {
          Tensor li = innerLoss(at.w, k - 1);
          gin = Autograd.grad(li, List.of(at.w), true);
          markUsed(gin);
        }
        Tensor[] v = conjugateGradient(at.w, gin, b);
        // meta part: −∂/∂θ (∇_w L_in · v)
        List<Tensor> outs = new ArrayList<>(), seeds = new ArrayList<>();
        for (int i = 0; i < gin.size(); i++)
          if (gin.get(i).requiresGrad()) {
            outs.add(gin.get(i));
            seeds.add(v[i].neg());
          }
        if (!outs.isEmpty() && !metaList.isEmpty()) addMeta(Autograd.grad(outs, metaList, seeds, false));
        close(List.of(v));
      }
      return s;
    }

    /** Solves (H + λI) v = b by conjugate gradients, H v from the taped inner gradient. */
    Tensor[] conjugateGradient(Tensor[] w, List<Tensor> gin, Tensor[] b) {
      int n = w.length;
      Tensor[] x = new Tensor[n], r = new Tensor[n], p = new Tensor[n];
      for (int i = 0; i < n; i++) {
        x[i] = own(Tensor.zerosLike(b[i]));
        r[i] = own(b[i]);
        p[i] = own(b[i]);
      }
      double bb = dot(b, b), rr = bb;
      double damping = memory.damping();
      cgIters = 0;
      cgResidual = bb == 0 ? 0 : 1;
      while (cgIters < memory.cgIterations() && Math.sqrt(rr) > memory.cgTolerance() * Math.sqrt(bb)) {
        try (Scope it = Scope.open()) {
          Tensor[] hp = hessianTimes(w, gin, p);
          if (damping > 0)
            for (int i = 0; i < n; i++) hp[i] = hp[i].add(p[i].mul(damping));
          double php = dot(p, hp);
          if (!(php > 0))
            throw new MetakernelsException(op + ": IMPLICIT: the inner Hessian is not positive definite at the final"
                + " weights (pᵀHp = " + php + " at CG iteration " + cgIters
                + "); run the inner loop longer or add damping");
          double alpha = rr / php;
          double rrNew = 0;
          for (int i = 0; i < n; i++) {
            replace(x, i, x[i].add(p[i].mul(alpha)));
            replace(r, i, r[i].sub(hp[i].mul(alpha)));
          }
          rrNew = dot(r, r);
          double beta = rrNew / rr;
          for (int i = 0; i < n; i++) replace(p, i, r[i].add(p[i].mul(beta)));
          rr = rrNew;
        }
        cgIters++;
        cgResidual = bb == 0 ? 0 : Math.sqrt(rr / bb);
      }
      close(List.of(r));
      close(List.of(p));
      return x;
    }

    void replace(Tensor[] a, int i, Tensor t) {
      Tensor o = own(t);
      close(List.of(a[i]));
      a[i] = o;
    }

    Tensor[] hessianTimes(Tensor[] w, List<Tensor> gin, Tensor[] p) {
      List<Tensor> outs = new ArrayList<>(), seeds = new ArrayList<>();
      for (int i = 0; i < gin.size(); i++)
        if (gin.get(i).requiresGrad()) {
          outs.add(gin.get(i));
          seeds.add(p[i]);
        }
      List<Tensor> h = outs.isEmpty() ? zeros(List.of(w)) : Autograd.grad(outs, List.of(w), seeds, false);
      return h.toArray(new Tensor[0]);
    }

    static double dot(Tensor[] a, Tensor[] b) {
      double s = 0;
      for (int i = 0; i < a.length; i++) s += a[i].mul(b[i]).sum().item();
      return s;
    }
  }
}
