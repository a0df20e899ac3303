package org.metakernels.meta;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.Forward;
import org.metakernels.nn.Linear;
import org.metakernels.nn.LinearSelfAttention;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Module;
import org.metakernels.nn.MultiHeadAttention;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Functional;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Per-example gradients and their norms in one forward and one backward pass over the whole
 * batch: no loop over examples, no batch of graphs. For data rating (the gradient norm of each
 * example), saliency and per-example clipping.
 *
 * <p>For a linear map y = x Wᵀ + b with upstream gradient g = ∂Σ_b L_b / ∂y (row b of g depends on
 * example b alone), example b's gradient is g_bᵀ x_b (a batched outer product for x [B, in], a
 * batched matmul for sequences x [B, T, in]) and its squared norm Σ_{t,s} (x_bt·x_bs)(g_bt·g_bs),
 * which the fused kernel {@link #linearNormsSquared} computes without forming the gradient. For
 * {@link Linear} and {@link MLP} the pass keeps each layer's input x and output z and asks the
 * tape for ∂Σ_b L_b / ∂z once; for {@link MultiHeadAttention} and {@link LinearSelfAttention} each
 * projection weight W is replaced by its batch expansion W_b (a view of W repeated B times), whose
 * gradient is the per-example one (the projections are batched matmuls).
 *
 * <p>Everything is differentiable (pass {@code createGraph = true}), so a meta-gradient, e.g. of a
 * data-rating objective, can go through the per-example gradients and norms to any order.
 *
 * <pre>{@code
 * MLP net = new MLP(new long[] {4, 16, 3}, Activation.TANH, DType.F64, Device.CPU, 0L);
 * Function<Tensor, Tensor> loss = out -> out.sub(y).square().sum(1, false);     // [B]
 * PerExample.Result r = PerExample.gradients(net, x, loss, false);
 * Tensor gw = r.gradients().get("layer0.weight");       // [B, 16, 4]
 * Tensor n = PerExample.norms(net, x, loss, false);      // [B], without forming the gradients
 * }</pre>
 *
 * <p>Contract: the loss of example b must depend on row b of the output only (no batch norm, no
 * batch-mean inside the loss); then the results equal B separate single-example backward passes.
 */
public final class PerExample {
  private PerExample() {}

  /**
   * The per-example losses and gradients of one pass.
   *
   * @param losses the per-example losses [B]
   * @param gradients by parameter name ({@link Module#namedParameters()} order): [B, ...shape]
   */
  public record Result(Tensor losses, Map<String, Tensor> gradients) {}

  /**
   * Example b's gradient of the weight of y = x Wᵀ: g_bᵀ x_b. {@code linearWeightGradients(x, g)}
   * of x [B, in] and g [B, out] (or [B, T, in] and [B, T, out]) is [B, out, in]. Differentiable.
   *
   * @param x the layer's input, F32 or F64, [B, in] or [B, T, in]
   * @param g the upstream gradient, x's dtype and device, [B, out] or [B, T, out]
   * @return [B, out, in]
   */
  public static Tensor linearWeightGradients(Tensor x, Tensor g) {
    checkPair("PerExample.linearWeightGradients", x, g);
    // one row per example: the outer product as a broadcast multiply (the same bits as a K = 1
    // matmul, ~25 % faster at [64, 128, 128]: one pass writing the result)
    if (x.rank() == 2) return g.unsqueeze(2).mul(x.unsqueeze(1));
    return g.mT().matmul(x);
  }

  /**
   * ‖g_bᵀ x_b‖² for every example b, by the fused kernel (no [B, out, in] tensor):
   * {@code linearNormsSquared(x, g)} of x [B, in] and g [B, out] (or [B, T, in], [B, T, out]) is
   * [B]. Deterministic (a fixed reduction order per example). Differentiable to any order: the
   * derivative is 2c (g gᵀ) x for x and 2c (x xᵀ) g for g, in composite ops.
   *
   * @param x the layer's input, F32 or F64, [B, in] or [B, T, in]
   * @param g the upstream gradient, x's dtype and device, [B, out] or [B, T, out]
   * @return [B]
   * @throws MetakernelsException on mismatched shapes, dtypes or devices, or a freed tensor
   */
  public static Tensor linearNormsSquared(Tensor x, Tensor g) {
    String op = "PerExample.linearNormsSquared";
    checkPair(op, x, g);
    long b = x.size(0), t = x.rank() == 3 ? x.size(1) : 1, in = x.size(-1), out = g.size(-1);
    Tensor norm2 = Tensor.empty(new long[] {b}, x.dtype(), x.device());
    try (Scope tmp = Scope.open()) {
      Tensor xc = x.isContiguous() ? x : x.copyContiguous();
      Tensor gc = g.isContiguous() ? g : g.copyContiguous();
      int status = MkNative.mk_meta_per_example_linear_norm(x.device().code, x.dtype().code, b, t, in, out,
          xc.address(op), gc.address(op), norm2.address(op), x.launchStream());
      Native.check(status, op + " x " + x.describe() + ", g " + g.describe());
    }
    return Autograd.record("perExampleLinearNorm", norm2, new Tensor[] {x, g}, gn -> {
      Tensor c = gn[0].mul(2.0).reshape(b, 1, 1);
      Tensor x3 = x.reshape(b, t, in), g3 = g.reshape(b, t, out);
      Tensor gx = x.requiresGrad() ? g3.matmul(g3.mT()).matmul(x3).mul(c).reshape(x.shape()) : null;
      Tensor gg = g.requiresGrad() ? x3.matmul(x3.mT()).matmul(g3).mul(c).reshape(g.shape()) : null;
      return new Tensor[] {gx, gg};
    });
  }

  /**
   * Per-example losses and gradients of every parameter of a {@link Linear}, {@link MLP},
   * {@link MultiHeadAttention} or {@link LinearSelfAttention}, in one pass.
   * {@code gradients(mlp, x, loss, false).gradients().get("layer0.weight")} is [B, out, in].
   *
   * @param m the module (its own parameters)
   * @param x the batch: [B, in] or [B, T, in] for Linear and MLP, [B, N, D] for the attention layers
   * @param lossPerExample maps the module's output to the per-example losses [B]; example b's loss
   *     may read row b of the output only
   * @param createGraph record the pass, so the results can be differentiated (meta-gradients)
   * @return the losses [B] and, per parameter name, [B, ...parameter shape]
   * @throws MetakernelsException for another module type, or a loss that is not [B]
   */
  public static Result gradients(Module m, Tensor x, Function<Tensor, Tensor> lossPerExample, boolean createGraph) {
    String op = "PerExample.gradients";
    if (isDense(m)) {
      Tapped tp = tapped(op, m, x, lossPerExample, createGraph);
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (int i = 0; i < tp.layers.size(); i++) {
        Layer l = tp.layers.get(i);
        Tensor h = tp.inputs.get(i), g = tp.grads.get(i);
        out.put(l.prefix + "weight", linearWeightGradients(h, g));
        if (l.bias != null) out.put(l.prefix + "bias", h.rank() == 3 ? g.sum(1, false) : g);
      }
      return new Result(tp.losses, out);
    }
    return expanded(op, m, x, lossPerExample, createGraph);
  }

  /**
   * The L2 norm of each example's whole gradient (all parameters): [B]. For {@link Linear} and
   * {@link MLP} the weights' part comes from the fused {@link #linearNormsSquared} kernel, without
   * forming a per-example gradient; for the attention layers from the per-example gradients.
   * {@code norms(mlp, x, loss, false)} of x [B, in] is [B].
   *
   * @param m the module
   * @param x the batch, as for {@link #gradients}
   * @param lossPerExample the per-example losses [B] of the module's output
   * @param createGraph record the pass (a data-rating meta-gradient through the norms)
   * @return [B], the norms
   */
  public static Tensor norms(Module m, Tensor x, Function<Tensor, Tensor> lossPerExample, boolean createGraph) {
    return normsSquared(m, x, lossPerExample, createGraph).sqrt();
  }

  /**
   * The squared L2 norm of each example's whole gradient: [B]; see {@link #norms}.
   *
   * @param m the module
   * @param x the batch, as for {@link #gradients}
   * @param lossPerExample the per-example losses [B] of the module's output
   * @param createGraph record the pass
   * @return [B], the squared norms
   */
  public static Tensor normsSquared(Module m, Tensor x, Function<Tensor, Tensor> lossPerExample, boolean createGraph) {
    String op = "PerExample.norms";
    if (isDense(m)) {
      Tapped tp = tapped(op, m, x, lossPerExample, createGraph);
      Tensor total = null;
      for (int i = 0; i < tp.layers.size(); i++) {
        Tensor h = tp.inputs.get(i), g = tp.grads.get(i);
        Tensor part = linearNormsSquared(h, g);
        if (tp.layers.get(i).bias != null) {
          Tensor gb = h.rank() == 3 ? g.sum(1, false) : g;
          part = part.add(gb.square().sum(1, false));
        }
        total = total == null ? part : total.add(part);
      }
      return total;
    }
    Result r = expanded(op, m, x, lossPerExample, createGraph);
    Tensor total = null;
    for (Tensor g : r.gradients().values()) {
      Tensor part = g.reshape(g.size(0), g.numel() / g.size(0)).square().sum(1, false);
      total = total == null ? part : total.add(part);
    }
    return total;
  }

  // ------------------------------------------------------------------------------------------

  /** One linear layer of a dense module: its parameters and the prefix of their names. */
  private record Layer(String prefix, Tensor weight, Tensor bias) {}

  /** What the tapped pass keeps: per layer its input and ∂Σ L / ∂(its output). */
  private record Tapped(Tensor losses, List<Layer> layers, List<Tensor> inputs, List<Tensor> grads) {}

  private static boolean isDense(Module m) {
    return m instanceof Linear || m instanceof MLP;
  }

  private static Tapped tapped(String op, Module m, Tensor x, Function<Tensor, Tensor> lossFn, boolean createGraph) {
    if (x == null) throw new MetakernelsException(op + ": x is null");
    x.address(op);
    Map<String, Tensor> ps = m.namedParameters();
    List<Layer> layers = new ArrayList<>();
    if (m instanceof Linear) {
      layers.add(new Layer("", ps.get("weight"), ps.get("bias")));
    } else {
      for (int i = 0; i < ((MLP) m).depth(); i++)
        layers.add(new Layer("layer" + i + ".", ps.get("layer" + i + ".weight"), ps.get("layer" + i + ".bias")));
    }
    long in = layers.get(0).weight.size(1);
    if ((x.rank() != 2 && x.rank() != 3) || x.size(-1) != in || x.size(0) < 1)
      throw new MetakernelsException(op + ": expected x [B, " + in + "] or [B, T, " + in + "] for "
          + m.getClass().getSimpleName() + ", got " + x.describe());
    List<Tensor> inputs = new ArrayList<>(), zs = new ArrayList<>();
    try (var on = Autograd.enableGrad()) {
      Tensor h = x;
      for (int i = 0; i < layers.size(); i++) {
        Layer l = layers.get(i);
        inputs.add(h);
        Tensor z = Functional.linear(h, l.weight, l.bias);
        zs.add(z);
        h = i < layers.size() - 1 ? ((MLP) m).activation().apply(z) : z;
      }
      Tensor losses = losses(op, lossFn, h, x.size(0));
      List<Tensor> grads = Autograd.grad(List.of(losses), zs, List.of(Tensor.onesLike(losses)), createGraph);
      if (!createGraph) {
        // off the tape, but keeping forward-mode tangents: a jvp around this call saw the
        // gradients' tangents and not the inputs', a partial product (2026-12-08)
        List<Tensor> detached = new ArrayList<>();
        for (Tensor t : inputs) detached.add(Forward.detachKeepingTangents(t));
        inputs = detached;
        losses = Forward.detachKeepingTangents(losses);
      }
      return new Tapped(losses, layers, inputs, grads);
    }
  }

  private static Result expanded(String op, Module m, Tensor x, Function<Tensor, Tensor> lossFn, boolean createGraph) {
    if (!(m instanceof MultiHeadAttention) && !(m instanceof LinearSelfAttention))
      throw new MetakernelsException(op + ": " + (m == null ? "null" : m.getClass().getSimpleName())
          + " is not supported (Linear, MLP, MultiHeadAttention, LinearSelfAttention)");
    if (x == null) throw new MetakernelsException(op + ": x is null");
    x.address(op);
    if (x.rank() != 3 || x.size(0) < 1)
      throw new MetakernelsException(
          op + ": expected tokens [B, N, D] for " + m.getClass().getSimpleName() + ", got " + x.describe());
    long b = x.size(0);
    Map<String, Tensor> expandedWeights = new LinkedHashMap<>();
    List<String> names = new ArrayList<>();
    List<Tensor> leaves = new ArrayList<>();
    try (var on = Autograd.enableGrad()) {
      for (var e : m.namedParameters().entrySet()) {
        Tensor w = e.getValue();
        Tensor wb = w.unsqueeze(0).expand(b, w.size(0), w.size(1)); // W_b: a view, one per example
        expandedWeights.put(e.getKey(), wb);
        names.add(e.getKey());
        leaves.add(wb);
      }
      Tensor losses = losses(op, lossFn, m.forward(x, Weights.of(expandedWeights)), b);
      List<Tensor> grads = Autograd.grad(List.of(losses), leaves, List.of(Tensor.onesLike(losses)), createGraph);
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (int i = 0; i < names.size(); i++) out.put(names.get(i), grads.get(i));
      return new Result(createGraph ? losses : Forward.detachKeepingTangents(losses), out);
    }
  }

  private static Tensor losses(String op, Function<Tensor, Tensor> lossFn, Tensor out, long b) {
    Tensor losses = lossFn.apply(out);
    if (losses == null || losses.rank() != 1 || losses.size(0) != b)
      throw new MetakernelsException(op + ": the loss must give one value per example, [" + b + "], got "
          + (losses == null ? "null" : losses.describe()) + " for output " + out.describe());
    if (!losses.requiresGrad())
      throw new MetakernelsException(op + ": the losses " + losses.describe() + " do not depend on the parameters");
    return losses;
  }

  private static void checkPair(String op, Tensor x, Tensor g) {
    if (x == null || g == null) throw new MetakernelsException(op + ": x or g is null");
    x.address(op);
    g.address(op);
    if (!x.dtype().isFloating() || x.dtype() != g.dtype() || x.device() != g.device())
      throw new MetakernelsException(
          op + ": expected x and g of one floating dtype and device, got " + x.describe() + " and " + g.describe());
    boolean ok = (x.rank() == 2 || x.rank() == 3) && g.rank() == x.rank() && x.size(0) == g.size(0)
        && (x.rank() == 2 || x.size(1) == g.size(1));
    if (!ok)
      throw new MetakernelsException(op + ": expected x [B, in] and g [B, out] (or [B, T, in] and [B, T, out]), got "
          + x.describe() + " and " + g.describe());
  }
}
