package org.metakernels.meta;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Fused differentiable optimizer steps for unrolled inner loops: SGD, SGD with momentum (heavy
 * ball or Nesterov) and Adam (or AdamW), each one native kernel per parameter tensor, with the
 * update rules of {@code torch.optim} (torch 2.x):
 *
 * <pre>
 *   SGD       d = g + wd·p                       p' = p − lr·d
 *   momentum  b' = mu·b + d                      p' = p − lr·b'   (Nesterov: p − lr·(d + mu·b'))
 *   Adam      m' = β₁m + (1−β₁)d   v' = β₂v + (1−β₂)d²   c₁ = 1−β₁ᵗ   c₂ = 1−β₂ᵗ
 *             p' = p − (lr/c₁)·m' / (√v'/√c₂ + ε)        (AdamW: d = g and p·(1 − lr·wd) for p)
 * </pre>
 *
 * Dampening is 0; torch's first momentum step (b' = d) is b = 0 here, so pass zeros. Every
 * input may require grad: the parameters, the gradients (built with {@code createGraph} to
 * differentiate through them), the optimizer state and the hyperparameters. A hyperparameter is a
 * {@link Hyper}: a Java double (a constant) or a tensor of the parameter's dtype and device
 * holding one value (any shape of one element) or one value per element (the parameter's shape,
 * or a shape that broadcasts to it); a tensor that requires grad gets the meta-gradient, e.g. of a
 * learned learning rate. Adam's β₁, β₂ and ε are one value each.
 *
 * <pre>{@code
 * Tensor lr = Tensor.scalar(0.1, DType.F64, Device.CPU).requiresGrad(true);          // learned
 * Tensor g = Autograd.grad(innerLoss, List.of(w), true).get(0);
 * Tensor w1 = InnerStep.sgd(w, g, lr);                                                  // w's shape
 * InnerStep.MomentumResult r = InnerStep.momentum(w, g, buf, InnerStep.Momentum.lr(lr).withMomentum(0.9));
 * InnerStep.AdamResult a = InnerStep.adam(w, g, m, v, 1, InnerStep.Adam.lr(1e-3).withWeightDecay(0.01));
 * Tensor dLr = Autograd.grad(outerLoss(w1), List.of(lr), false).get(0);                 // meta-gradient, []
 * }</pre>
 *
 * <p><b>Derivatives.</b> The forward is one fused kernel ({@code mk_meta_*_step_forward}); its
 * vector-Jacobian product with respect to every input that requires grad is one fused kernel too
 * ({@code mk_meta_*_step_backward}: it recomputes the forward's intermediates, so nothing but the
 * inputs is kept), and the gradients of hyperparameters held as one value are reduced in a fixed
 * order (deterministic). That backward is recorded as an op, so it is differentiable again: its
 * own backward, which only second and higher derivatives of the step reach (a Hessian of the
 * meta-loss in the hyperparameters, a gradient check), is written in differentiable tensor ops
 * (forward-mode products of the step and of its backward, see {@code StepDerivatives}), chosen
 * over a third fused kernel because it runs once per step and per second-order pass, is
 * elementwise and memory bound, and keeps every higher order exact without more kernels. So an
 * unrolled loop's meta-gradient runs on the fused kernels, and any order works.
 *
 * <p><b>Checks.</b> Parameters, gradients and state must share shape, dtype (F32 or F64) and
 * device, and be open; a constant must be finite, β₁ and β₂ in [0, 1), ε ≥ 0, and Adam's step
 * t ≥ 1. The learning rate, momentum and weight decay may be negative (learned rates can cross
 * zero; a negative rate ascends); values held in tensors are not checked (that would cost a
 * device sync on CUDA). A rejected call throws {@link MetakernelsException} naming the op and the
 * shapes and changes nothing (a freed tensor: {@link IllegalStateException}, as everywhere).
 */
public final class InnerStep {
  private InnerStep() {}

  // ---- hyperparameters and options ----------------------------------------------------------

  /**
   * A hyperparameter: a constant ({@code tensor} null; not differentiated) or a tensor of the
   * parameter's dtype and device (one value, or one value per element of the parameter: its
   * shape or a shape that broadcasts to it). {@code Hyper.of(0.1)}, {@code Hyper.of(lrTensor)}.
   *
   * @param value the constant (unused when {@code tensor} is set)
   * @param tensor the tensor, or null for the constant
   */
  public record Hyper(double value, Tensor tensor) {
    /**
     * A constant.
     *
     * @param value the value
     * @return the hyperparameter
     */
    public static Hyper of(double value) {
      return new Hyper(value, null);
    }

    /**
     * A tensor hyperparameter; it gets a gradient when it requires grad.
     *
     * @param tensor one value, or one per element of the parameter
     * @return the hyperparameter
     */
    public static Hyper of(Tensor tensor) {
      return new Hyper(Double.NaN, Objects.requireNonNull(tensor, "tensor"));
    }
  }

  /**
   * Options of {@link #sgd(Tensor, Tensor, Sgd)}: {@code Sgd.lr(0.1).withWeightDecay(1e-4)}.
   *
   * @param lr the learning rate
   * @param weightDecay the L2 coefficient added to the gradient (0: none)
   */
  public record Sgd(Hyper lr, Hyper weightDecay) {
    /**
     * Learning rate {@code lr}, no weight decay.
     *
     * @param lr the learning rate
     * @return the options
     */
    public static Sgd lr(double lr) {
      return new Sgd(Hyper.of(lr), Hyper.of(0.0));
    }

    /**
     * A tensor learning rate (one value or one per element), no weight decay.
     *
     * @param lr the learning rate
     * @return the options
     */
    public static Sgd lr(Tensor lr) {
      return new Sgd(Hyper.of(lr), Hyper.of(0.0));
    }

    /**
     * These options with a constant weight decay.
     *
     * @param wd the L2 coefficient
     * @return new options
     */
    public Sgd withWeightDecay(double wd) {
      return new Sgd(lr, Hyper.of(wd));
    }

    /**
     * These options with a tensor weight decay.
     *
     * @param wd the L2 coefficient (one value or one per element)
     * @return new options
     */
    public Sgd withWeightDecay(Tensor wd) {
      return new Sgd(lr, Hyper.of(wd));
    }
  }

  /**
   * Options of {@link #momentum}: {@code Momentum.lr(0.1).withMomentum(0.9).withNesterov(true)}.
   * Defaults are {@code torch.optim.SGD}'s: momentum 0, no weight decay, no Nesterov.
   *
   * @param lr the learning rate
   * @param momentum mu, the factor of the old buffer
   * @param weightDecay the L2 coefficient added to the gradient (0: none)
   * @param nesterov step along d + mu·b' instead of b'
   */
  public record Momentum(Hyper lr, Hyper momentum, Hyper weightDecay, boolean nesterov) {
    /**
     * Learning rate {@code lr}; momentum 0, no weight decay.
     *
     * @param lr the learning rate
     * @return the options
     */
    public static Momentum lr(double lr) {
      return new Momentum(Hyper.of(lr), Hyper.of(0.0), Hyper.of(0.0), false);
    }

    /**
     * A tensor learning rate; momentum 0, no weight decay.
     *
     * @param lr the learning rate (one value or one per element)
     * @return the options
     */
    public static Momentum lr(Tensor lr) {
      return new Momentum(Hyper.of(lr), Hyper.of(0.0), Hyper.of(0.0), false);
    }

    /**
     * These options with a constant momentum.
     *
     * @param mu the factor of the old buffer
     * @return new options
     */
    public Momentum withMomentum(double mu) {
      return new Momentum(lr, Hyper.of(mu), weightDecay, nesterov);
    }

    /**
     * These options with a tensor momentum.
     *
     * @param mu the factor of the old buffer (one value or one per element)
     * @return new options
     */
    public Momentum withMomentum(Tensor mu) {
      return new Momentum(lr, Hyper.of(mu), weightDecay, nesterov);
    }

    /**
     * These options with a constant weight decay.
     *
     * @param wd the L2 coefficient
     * @return new options
     */
    public Momentum withWeightDecay(double wd) {
      return new Momentum(lr, momentum, Hyper.of(wd), nesterov);
    }

    /**
     * These options with a tensor weight decay.
     *
     * @param wd the L2 coefficient (one value or one per element)
     * @return new options
     */
    public Momentum withWeightDecay(Tensor wd) {
      return new Momentum(lr, momentum, Hyper.of(wd), nesterov);
    }

    /**
     * These options with Nesterov momentum on or off.
     *
     * @param on whether to step along d + mu·b'
     * @return new options
     */
    public Momentum withNesterov(boolean on) {
      return new Momentum(lr, momentum, weightDecay, on);
    }
  }

  /**
   * Options of {@link #adam}: {@code Adam.lr(1e-3).withBetas(0.9, 0.99).withWeightDecay(0.01)
   * .withDecoupledWeightDecay(true)} (AdamW). Defaults are {@code torch.optim.Adam}'s: β₁ 0.9,
   * β₂ 0.999, ε 1e-8, no weight decay.
   *
   * @param lr the learning rate (one value or one per element)
   * @param beta1 decay of the first moment (one value)
   * @param beta2 decay of the second moment (one value)
   * @param eps added to √v̂ (one value)
   * @param weightDecay the weight decay (one value or one per element)
   * @param decoupledWeightDecay AdamW: p·(1 − lr·wd) instead of wd·p added to the gradient
   */
  public record Adam(Hyper lr, Hyper beta1, Hyper beta2, Hyper eps, Hyper weightDecay, boolean decoupledWeightDecay) {
    /**
     * Learning rate {@code lr} and torch's defaults.
     *
     * @param lr the learning rate
     * @return the options
     */
    public static Adam lr(double lr) {
      return lr(Hyper.of(lr));
    }

    /**
     * A tensor learning rate and torch's defaults.
     *
     * @param lr the learning rate (one value or one per element)
     * @return the options
     */
    public static Adam lr(Tensor lr) {
      return lr(Hyper.of(lr));
    }

    private static Adam lr(Hyper lr) {
      return new Adam(lr, Hyper.of(0.9), Hyper.of(0.999), Hyper.of(1e-8), Hyper.of(0.0), false);
    }

    /**
     * These options with constant betas.
     *
     * @param beta1 decay of the first moment, in [0, 1)
     * @param beta2 decay of the second moment, in [0, 1)
     * @return new options
     */
    public Adam withBetas(double beta1, double beta2) {
      return new Adam(lr, Hyper.of(beta1), Hyper.of(beta2), eps, weightDecay, decoupledWeightDecay);
    }

    /**
     * These options with tensor betas (one value each; differentiable).
     *
     * @param beta1 decay of the first moment
     * @param beta2 decay of the second moment
     * @return new options
     */
    public Adam withBetas(Tensor beta1, Tensor beta2) {
      return new Adam(lr, Hyper.of(beta1), Hyper.of(beta2), eps, weightDecay, decoupledWeightDecay);
    }

    /**
     * These options with a constant ε.
     *
     * @param e added to √v̂, at least 0
     * @return new options
     */
    public Adam withEps(double e) {
      return new Adam(lr, beta1, beta2, Hyper.of(e), weightDecay, decoupledWeightDecay);
    }

    /**
     * These options with a tensor ε (one value; differentiable).
     *
     * @param e added to √v̂
     * @return new options
     */
    public Adam withEps(Tensor e) {
      return new Adam(lr, beta1, beta2, Hyper.of(e), weightDecay, decoupledWeightDecay);
    }

    /**
     * These options with a constant weight decay.
     *
     * @param wd the coefficient
     * @return new options
     */
    public Adam withWeightDecay(double wd) {
      return new Adam(lr, beta1, beta2, eps, Hyper.of(wd), decoupledWeightDecay);
    }

    /**
     * These options with a tensor weight decay.
     *
     * @param wd the coefficient (one value or one per element)
     * @return new options
     */
    public Adam withWeightDecay(Tensor wd) {
      return new Adam(lr, beta1, beta2, eps, Hyper.of(wd), decoupledWeightDecay);
    }

    /**
     * These options with AdamW's decoupled weight decay on or off.
     *
     * @param on p·(1 − lr·wd) instead of wd·p added to the gradient
     * @return new options
     */
    public Adam withDecoupledWeightDecay(boolean on) {
      return new Adam(lr, beta1, beta2, eps, weightDecay, on);
    }
  }

  /**
   * The result of {@link #momentum}.
   *
   * @param param p', the parameter's shape
   * @param buffer b', the new momentum buffer, the parameter's shape
   */
  public record MomentumResult(Tensor param, Tensor buffer) {}

  /**
   * The result of {@link #adam}.
   *
   * @param param p', the parameter's shape
   * @param m m', the new first moment
   * @param v v', the new second moment
   */
  public record AdamResult(Tensor param, Tensor m, Tensor v) {}

  // ---- the steps ----------------------------------------------------------------------------

  /**
   * One SGD step {@code p − lr·(g + wd·p)}:
   * {@code InnerStep.sgd(w, g, InnerStep.Sgd.lr(lr).withWeightDecay(1e-4))} of w, g [D, K] is [D, K].
   *
   * @param param the parameter p
   * @param grad its gradient g (same shape, dtype and device)
   * @param o the learning rate and weight decay
   * @return p', the parameter's shape
   * @throws MetakernelsException for operands or hyperparameters that do not fit
   */
  public static Tensor sgd(Tensor param, Tensor grad, Sgd o) {
    Objects.requireNonNull(o, "options");
    return step(Kind.SGD, "InnerStep.sgd", param, grad, null, null, null, 0,
        new Hyper[] {o.lr(), null, o.weightDecay(), null, null, null}, 0)[0];
  }

  /**
   * {@code p − lr·g} with a constant learning rate: {@code InnerStep.sgd(w, g, 0.1)} has w's shape.
   *
   * @param param the parameter p
   * @param grad its gradient g
   * @param lr the learning rate
   * @return p', the parameter's shape
   */
  public static Tensor sgd(Tensor param, Tensor grad, double lr) {
    return sgd(param, grad, Sgd.lr(lr));
  }

  /**
   * {@code p − lr·g} with a tensor learning rate (one value or one per element), differentiable
   * in it: {@code InnerStep.sgd(w, g, lr)} has w's shape.
   *
   * @param param the parameter p
   * @param grad its gradient g
   * @param lr the learning rate
   * @return p', the parameter's shape
   */
  public static Tensor sgd(Tensor param, Tensor grad, Tensor lr) {
    return sgd(param, grad, Sgd.lr(lr));
  }

  /**
   * One SGD step per parameter, in order (MAML's inner step):
   * {@code InnerStep.sgd(net.parameters(), grads, InnerStep.Sgd.lr(0.01))} gives one tensor of
   * each parameter's shape. A tensor hyperparameter must fit every parameter (one value does).
   *
   * @param params the parameters
   * @param grads their gradients, in the same order
   * @param o the learning rate and weight decay
   * @return the new parameters, in order
   */
  public static List<Tensor> sgd(List<Tensor> params, List<Tensor> grads, Sgd o) {
    if (params.size() != grads.size())
      throw new MetakernelsException("InnerStep.sgd: " + params.size() + " parameters but " + grads.size() + " gradients");
    List<Tensor> out = new ArrayList<>(params.size());
    for (int i = 0; i < params.size(); i++) out.add(sgd(params.get(i), grads.get(i), o));
    return out;
  }

  /**
   * One step of SGD with momentum: {@code b' = mu·b + (g + wd·p)}, {@code p' = p − lr·b'} (or
   * {@code p − lr·(d + mu·b')} with Nesterov). Pass zeros as the first buffer (torch's first
   * step). {@code InnerStep.momentum(w, g, buf, InnerStep.Momentum.lr(0.1).withMomentum(0.9))}:
   * p' and b' of w's shape.
   *
   * @param param the parameter p
   * @param grad its gradient g
   * @param buffer the momentum buffer b (same shape, dtype and device)
   * @param o the learning rate, momentum, weight decay and Nesterov switch
   * @return p' and b'
   * @throws MetakernelsException for operands or hyperparameters that do not fit
   */
  public static MomentumResult momentum(Tensor param, Tensor grad, Tensor buffer, Momentum o) {
    Objects.requireNonNull(o, "options");
    Objects.requireNonNull(buffer, "buffer");
    Tensor[] r = step(Kind.MOMENTUM, "InnerStep.momentum", param, grad, buffer, null, null, 0,
        new Hyper[] {o.lr(), o.momentum(), o.weightDecay(), null, null, null}, o.nesterov() ? Codes.META_NESTEROV : 0);
    return new MomentumResult(r[0], r[1]);
  }

  /**
   * One Adam step (AdamW with {@link Adam#withDecoupledWeightDecay}), torch's definition with
   * bias correction and ε outside the square root.
   * {@code InnerStep.adam(w, g, m, v, 1, InnerStep.Adam.lr(1e-3))}: p', m', v' of w's shape.
   *
   * @param param the parameter p
   * @param grad its gradient g
   * @param m the first moment (zeros before the first step)
   * @param v the second moment (zeros before the first step)
   * @param step t, the number of this step, from 1 (the bias corrections are 1 − βᵗ)
   * @param o the hyperparameters
   * @return p', m' and v'
   * @throws MetakernelsException for operands or hyperparameters that do not fit
   */
  public static AdamResult adam(Tensor param, Tensor grad, Tensor m, Tensor v, long step, Adam o) {
    Objects.requireNonNull(o, "options");
    Objects.requireNonNull(m, "m");
    Objects.requireNonNull(v, "v");
    if (step < 1) throw new MetakernelsException("InnerStep.adam: step " + step + " (t counts from 1) for param "
        + describe(param));
    Tensor[] r = step(Kind.ADAM, "InnerStep.adam", param, grad, null, m, v, step,
        new Hyper[] {o.lr(), null, o.weightDecay(), o.beta1(), o.beta2(), o.eps()},
        o.decoupledWeightDecay() ? Codes.META_DECOUPLED_WEIGHT_DECAY : 0);
    return new AdamResult(r[0], r[1], r[2]);
  }

  // ---- implementation -----------------------------------------------------------------------

  enum Kind { SGD, MOMENTUM, ADAM }

  static final int HYPERS = Codes.META_HYPER_COUNT;
  static final String[] HYPER_NAMES = {"lr", "momentum", "weightDecay", "beta1", "beta2", "eps"};
  /** Positions of the step's inputs on the tape: param, grad, buf, m, v, then the hyperparameters. */
  static final int PARAM = 0, GRAD = 1, BUF = 2, M = 3, V = 4, HYPER0 = 5, INPUTS = HYPER0 + HYPERS;

  private static String describe(Tensor t) {
    return t == null ? "null" : t.describe();
  }

  /** The validated operands of one step call, shared by its forward and its backward. */
  static final class Call {
    final Kind kind;
    final String op;
    final Tensor[] inputs = new Tensor[INPUTS];  // as recorded: the caller's tensors, hyperparameters normalised
    final Tensor[] raw = new Tensor[INPUTS];     // what the kernels read: contiguous
    final double[] value = new double[HYPERS];   // the constants (hyperparameters without a tensor)
    final boolean[] used = new boolean[HYPERS];
    final long step;
    final int flags;
    final DType dtype;
    final Device device;
    final long[] shape;
    final long n;

    Call(Kind kind, String op, Tensor param, Tensor grad, Tensor buf, Tensor m, Tensor v, long step, Hyper[] hypers,
        int flags) {
      this.kind = kind;
      this.op = op;
      this.step = step;
      this.flags = flags;
      Objects.requireNonNull(param, "param");
      Objects.requireNonNull(grad, "grad");
      param.address(op);
      dtype = param.dtype();
      device = param.device();
      shape = param.shape();
      n = param.numel();
      if (!dtype.isFloating())
        throw new MetakernelsException(op + ": param " + param.describe() + " must be F32 or F64");
      String[] names = {"param", "grad", "buffer", "m", "v"};
      Tensor[] state = {param, grad, buf, m, v};
      for (int i = 0; i < state.length; i++) {
        Tensor t = state[i];
        if (t == null) continue;
        t.address(op);
        if (t.dtype() != dtype || t.device() != device || !Arrays.equals(t.shape(), shape))
          throw new MetakernelsException(op + ": " + names[i] + " " + t.describe() + " does not match param "
              + param.describe() + " (same shape, dtype and device)");
        inputs[i] = t;
      }
      for (int i = 0; i < HYPERS; i++) {
        Hyper h = hypers[i];
        used[i] = h != null;
        if (h == null) continue;
        if (h.tensor() == null) {
          value[i] = h.value();
          continue;
        }
        inputs[HYPER0 + i] = normalise(HYPER_NAMES[i], h.tensor(), param, i >= Codes.META_BETA1);
      }
      checkConstants();
      for (int i = 0; i < INPUTS; i++) {
        Tensor t = inputs[i];
        raw[i] = t == null ? null : t.isContiguous() ? t : t.copyContiguous();
      }
    }

    /**
     * A tensor hyperparameter as the kernels take it: rank 0 for one value, else the parameter's
     * shape, contiguous (a broadcast one expanded; both differentiable, so its gradient flows back).
     */
    private Tensor normalise(String name, Tensor h, Tensor param, boolean oneValue) {
      h.address(op);
      if (h.dtype() != param.dtype() || h.device() != param.device())
        throw new MetakernelsException(op + ": " + name + " " + h.describe() + " must have param's dtype and device ("
            + param.describe() + ")");
      if (h.numel() == 1) return h.rank() == 0 ? h : h.reshape();
      if (oneValue)
        throw new MetakernelsException(op + ": " + name + " " + h.describe() + " must hold one value (param "
            + param.describe() + ")");
      if (Arrays.equals(h.shape(), param.shape())) return h.contiguous();
      if (!broadcastsTo(h.shape(), param.shape()))
        throw new MetakernelsException(op + ": " + name + " " + h.describe() + " does not broadcast to param "
            + param.describe() + " (expected one value, param's shape, or a shape that broadcasts to it)");
      return h.expand(param.shape()).contiguous();
    }

    private static boolean broadcastsTo(long[] from, long[] to) {
      if (from.length > to.length) return false;
      int off = to.length - from.length;
      for (int i = 0; i < from.length; i++)
        if (from[i] != 1 && from[i] != to[off + i]) return false;
      return true;
    }

    /** The native layer checks constants too; here they are named as the caller wrote them. */
    private void checkConstants() {
      for (int i = 0; i < HYPERS; i++) {
        if (!used[i] || inputs[HYPER0 + i] != null) continue;
        double x = value[i];
        String bad = null;
        if (!Double.isFinite(x)) bad = "is not finite";
        else if ((i == Codes.META_BETA1 || i == Codes.META_BETA2) && !(x >= 0 && x < 1)) bad = "is outside [0, 1)";
        else if (i == Codes.META_EPS && x < 0) bad = "is negative";
        if (bad != null)
          throw new MetakernelsException(op + ": " + HYPER_NAMES[i] + " = " + x + " " + bad + " (param "
              + inputs[PARAM].describe() + ")");
      }
    }

    Tensor hyper(int i) {
      return inputs[HYPER0 + i];
    }

    /** The parameter block with the inputs both passes read. */
    MkNative.mk_meta_step_params block() {
      MkNative.mk_meta_step_params b = new MkNative.mk_meta_step_params().n(n).flags(flags).step(step);
      b.param(addr(raw[PARAM])).grad(addr(raw[GRAD])).buf(addr(raw[BUF])).m(addr(raw[M])).v(addr(raw[V]));
      for (int i = 0; i < HYPERS; i++) {
        Tensor h = raw[HYPER0 + i];
        b.hyper(i, addr(h)).hyper_stride(i, h != null && h.rank() > 0 ? 1 : 0).hyper_value(i, used[i] && h == null
            ? value[i] : 0.0);
      }
      return b;
    }

    long addr(Tensor t) {
      return t == null ? 0L : t.address(op);
    }

    String context() {
      StringBuilder sb = new StringBuilder(op).append(" param ").append(inputs[PARAM].describe());
      for (int i = 0; i < HYPERS; i++) {
        if (!used[i]) continue;
        Tensor h = inputs[HYPER0 + i];
        sb.append(", ").append(HYPER_NAMES[i]).append(' ').append(h == null ? Double.toString(value[i]) : h.describe());
      }
      if (kind == Kind.ADAM) sb.append(", step ").append(step);
      return sb.toString();
    }

    int outputs() {
      return kind == Kind.SGD ? 1 : kind == Kind.MOMENTUM ? 2 : 3;
    }
  }

  /** Validates, runs the fused forward and records its backward: p' (and the new state). */
  private static Tensor[] step(Kind kind, String op, Tensor param, Tensor grad, Tensor buf, Tensor m, Tensor v,
      long step, Hyper[] hypers, int flags) {
    Call c = new Call(kind, op, param, grad, buf, m, v, step, hypers, flags);
    Tensor[] outs = new Tensor[c.outputs()];
    for (int i = 0; i < outs.length; i++) outs[i] = Tensor.empty(c.shape, c.dtype, c.device);
    try (MkNative.mk_meta_step_params b = c.block()) {
      b.param_out(outs[0].address(op));
      if (kind == Kind.MOMENTUM) b.buf_out(outs[1].address(op));
      if (kind == Kind.ADAM) b.m_out(outs[1].address(op)).v_out(outs[2].address(op));
      int dev = c.device.code, dt = c.dtype.code;
      int status = kind == Kind.ADAM ? MkNative.mk_meta_adam_step_forward(dev, dt, b, param.launchStream())
          : MkNative.mk_meta_sgd_step_forward(dev, dt, b, param.launchStream());
      Native.check(status, c::context);
    }
    // forward rule: the step's tangent formulas (StepDerivatives), composed of differentiable ops
    Autograd.record(op, outs, c.inputs.clone(), g -> backward(c, g), t -> fit(outs, StepDerivatives.jvp(c, t)));
    return outs;
  }

  /** Tangents broadcast to their outputs' shapes (a step's tangent formulas may broadcast less). */
  private static Tensor[] fit(Tensor[] outs, Tensor[] t) {
    for (int k = 0; k < t.length; k++)
      if (t[k] != null && !Arrays.equals(t[k].shape(), outs[k].shape())) t[k] = t[k].expand(outs[k].shape());
    return t;
  }

  /**
   * Forward rule of a step's backward B(x, ȳ) = ∇ₓ⟨ȳ, A(x)⟩ (outputs: the gradients of the inputs
   * that require grad): ∇²ₓ⟨ȳ, A⟩·tₓ + J_Aᵀ t_ȳ, the first term being the x part of
   * {@link StepDerivatives#of} (by the symmetry of the Hessian), the second the fused backward
   * kernel with t_ȳ as the cotangents.
   */
  private static Tensor[] backwardTangent(Call c, Tensor[] cotIn, int[] slot, Tensor[] outs, Tensor[] tan) {
    Tensor[] tx = Arrays.copyOf(tan, INPUTS), ty = Arrays.copyOfRange(tan, INPUTS, INPUTS + 3);
    boolean anyX = false, anyY = false;
    for (Tensor t : tx) anyX |= t != null;
    for (Tensor t : ty) anyY |= t != null;
    Tensor[] hx = anyX ? StepDerivatives.of(c, cotIn, tx) : null;
    Tensor[] jy = anyY ? backward(c, ty) : null;
    Tensor[] r = new Tensor[outs.length];
    for (int k = 0; k < outs.length; k++) {
      Tensor a = hx == null ? null : hx[slot[k]], b = jy == null ? null : jy[slot[k]];
      r[k] = a == null ? b : b == null ? a : a.add(b);
    }
    return fit(outs, r);
  }

  /**
   * The fused vector-Jacobian product of a step: from the cotangents of its outputs (null = zero),
   * the gradients of its inputs ({@link #INPUTS} slots; null where none is wanted). Recorded as an
   * op whose backward is {@link StepDerivatives#of}, so it is differentiable again.
   */
  static Tensor[] backward(Call c, Tensor[] cot) {
    String op = c.op + "_backward";
    Tensor[] cotIn = new Tensor[3];   // as given, for the tape
    Tensor[] cotRaw = new Tensor[3];  // contiguous, in the step's dtype, for the kernel
    for (int i = 0; i < cot.length; i++) {
      Tensor t = cot[i];
      if (t == null) continue;
      if (t.dtype() != c.dtype) t = t.to(c.dtype);  // a foreign cotangent, cast differentiably
      cotIn[i] = t;
      cotRaw[i] = t.isContiguous() ? t : t.copyContiguous();
    }
    Tensor[] grads = new Tensor[INPUTS];
    for (int i = 0; i < INPUTS; i++) {
      Tensor x = c.inputs[i];
      if (x != null && x.requiresGrad()) grads[i] = Tensor.empty(x.shape(), c.dtype, c.device);
    }
    try (Scope tmp = Scope.open(); MkNative.mk_meta_step_params b = c.block()) {
      int dev = c.device.code, dt = c.dtype.code;
      long wsBytes = c.kind == Kind.ADAM ? MkNative.mk_meta_adam_step_workspace(dev, dt, b)
          : MkNative.mk_meta_sgd_step_workspace(dev, dt, b);
      if (wsBytes < 0) Native.check(Codes.ERR_INVALID_ARGUMENT, c.context());
      Tensor ws = Tensor.empty(new long[] {Math.max(1, (wsBytes + 7) / 8)}, DType.F64, c.device);
      b.cot_param_out(c.addr(cotRaw[0]));
      if (c.kind == Kind.MOMENTUM) b.cot_buf_out(c.addr(cotRaw[1]));
      if (c.kind == Kind.ADAM) b.cot_m_out(c.addr(cotRaw[1])).cot_v_out(c.addr(cotRaw[2]));
      b.cot_param(c.addr(grads[PARAM])).cot_grad(c.addr(grads[GRAD])).cot_buf(c.addr(grads[BUF]))
          .cot_m(c.addr(grads[M])).cot_v(c.addr(grads[V]));
      for (int i = 0; i < HYPERS; i++) b.cot_hyper(i, c.addr(grads[HYPER0 + i]));
      int status = c.kind == Kind.ADAM
          ? MkNative.mk_meta_adam_step_backward(dev, dt, b, ws.address(op), wsBytes, c.inputs[PARAM].launchStream())
          : MkNative.mk_meta_sgd_step_backward(dev, dt, b, ws.address(op), wsBytes, c.inputs[PARAM].launchStream());
      Native.check(status, () -> c.context() + " (backward)");
    }
    // record the backward on its non-null outputs; its inputs: the step's inputs, then the cotangents
    int[] slot = new int[INPUTS];
    List<Tensor> outs = new ArrayList<>();
    for (int i = 0; i < INPUTS; i++) if (grads[i] != null) {
      slot[outs.size()] = i;
      outs.add(grads[i]);
    }
    if (!outs.isEmpty()) {
      Tensor[] in = Arrays.copyOf(c.inputs, INPUTS + 3);
      System.arraycopy(cotIn, 0, in, INPUTS, 3);
      int count = outs.size();
      Tensor[] outArr = outs.toArray(new Tensor[0]);
      Autograd.record(op, outArr, in, tt -> {
        Tensor[] t = new Tensor[INPUTS];
        for (int k = 0; k < count; k++) t[slot[k]] = tt[k];
        return StepDerivatives.of(c, cotIn, t);
      }, tan -> backwardTangent(c, cotIn, slot, outArr, tan));
    }
    return grads;
  }
}
