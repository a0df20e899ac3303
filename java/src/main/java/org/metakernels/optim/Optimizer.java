package org.metakernels.optim;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.metakernels.autograd.Autograd;
import org.metakernels.io.NumPy;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Updates leaf parameters in place from their accumulated {@link Tensor#grad()}. State
 * tensors (momenta) belong to the optimizer and are freed by {@link #close()}.
 */
public abstract class Optimizer implements AutoCloseable {
  /** The parameters, in the order given (an unmodifiable copy of the list). */
  protected final List<Tensor> params;
  private final List<Tensor> state = new ArrayList<>();
  private double lr;

  private boolean closed;

  /**
   * An optimizer of {@code params} with learning rate {@code lr}.
   *
   * @param params the leaves to update in place: F32 or F64 (keep an F32 master copy of 16-bit
   *     weights), open
   * @param lr the learning rate, finite and not negative
   * @throws IllegalArgumentException for a negative or non-finite lr, or a parameter of another
   *     type or closed (a step would otherwise stop half way, some parameters updated)
   */
  protected Optimizer(List<Tensor> params, double lr) {
    String who = getClass().getSimpleName();
    this.lr = checkLr(who, lr);
    this.params = List.copyOf(params);
    for (int i = 0; i < this.params.size(); i++) {
      Tensor p = this.params.get(i);
      if (p.isClosed()) throw new IllegalArgumentException(who + ": parameter " + i + " is closed");
      if (p.dtype() != DType.F32 && p.dtype() != DType.F64)
        throw new IllegalArgumentException(who + ": parameter " + i + " is " + p.describe()
            + "; optimizers update F32 or F64 parameters (keep an F32 master copy of 16-bit weights)");
    }
  }

  /**
   * A hyperparameter checked to be finite and in [lo, hi) (or [lo, hi] when {@code hiClosed}).
   *
   * @param who the optimizer, for the message
   * @param name the hyperparameter
   * @param v its value
   * @param lo the lower bound, included
   * @param hi the upper bound
   * @param hiClosed whether hi itself is allowed
   * @return v
   * @throws IllegalArgumentException when outside
   */
  protected static double checkRange(String who, String name, double v, double lo, double hi, boolean hiClosed) {
    if (!(v >= lo && (hiClosed ? v <= hi : v < hi)) || Double.isInfinite(v))
      throw new IllegalArgumentException(who + ": " + name + " " + v + " (must be finite and "
          + (hi == Double.MAX_VALUE ? ">= " + lo : "in [" + lo + ", " + hi + (hiClosed ? "]" : ")")) + ")");
    return v;
  }

  /** One update from the current gradients; parameters without a gradient are skipped. */
  public abstract void step();

  /**
   * The learning rate the next {@link #step()} uses.
   *
   * @return lr
   */
  public double learningRate() {
    return lr;
  }

  /**
   * Sets the learning rate for the following steps: a schedule is a loop that calls this,
   * {@code opt.setLearningRate(base * 0.5 * (1 + Math.cos(Math.PI * step / total)))} (cosine decay).
   * The learning rate is not part of {@link #saveState}: a resumed run sets it from its schedule.
   *
   * @param lr the new learning rate, finite and not negative
   * @throws IllegalArgumentException for a negative or non-finite value (nothing changed)
   */
  public void setLearningRate(double lr) {
    this.lr = checkLr(getClass().getSimpleName() + ".setLearningRate", lr);
  }

  private static double checkLr(String who, double lr) {
    if (!(lr >= 0) || Double.isInfinite(lr))
      throw new IllegalArgumentException(who + ": learning rate " + lr + " (must be finite and >= 0)");
    return lr;
  }

  /**
   * Scales the gradients of all parameters together so that their global L2 norm (the norm of
   * every gradient element as one vector, accumulated in F64) is at most {@code maxNorm}, as
   * PyTorch's {@code clip_grad_norm_}: when the norm exceeds it, every gradient is multiplied by
   * maxNorm / (norm + 1e-6) in place. Parameters without a gradient are skipped. A non-finite norm
   * (a NaN or infinite gradient) is returned and the gradients are left as they are, so the caller
   * can skip the step. Call between {@code backward()} and {@link #step()}:
   *
   * <pre>{@code
   * double norm = opt.clipGradNorm(1.0);                 // the norm before clipping
   * if (Double.isFinite(norm)) opt.step();
   * }</pre>
   *
   * @param maxNorm the largest norm allowed, &gt; 0
   * @return the global norm before clipping
   * @throws IllegalArgumentException for maxNorm not &gt; 0 or not finite
   */
  public double clipGradNorm(double maxNorm) {
    if (!(maxNorm > 0) || Double.isInfinite(maxNorm))
      throw new IllegalArgumentException(getClass().getSimpleName() + ".clipGradNorm: maxNorm " + maxNorm
          + " (must be finite and > 0)");
    checkOpenWithGradients("clipGradNorm");
    double total;
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      Tensor sum = null;
      for (Tensor p : params) {
        Tensor g = p.grad();
        if (g == null) continue;
        Tensor sq = g.to(DType.F64).square().sum();  // one value, on g's device
        // summed where the first gradient lives (one host read at the end, not one per parameter);
        // a gradient on another device comes over as its one value
        sum = sum == null ? sq : sum.add(sq.to(sum.device()));
      }
      if (sum == null) return 0.0;
      total = Math.sqrt(sum.item());
      if (!Double.isFinite(total) || total <= maxNorm) return total;
      double scale = maxNorm / (total + 1e-6);
      for (Tensor p : params) {
        Tensor g = p.grad();
        if (g != null) g.mulInPlace(scale);
      }
    }
    return total;
  }

  /** Clears and frees the accumulated gradient of every parameter. */
  public void zeroGrad() {
    for (Tensor p : params) p.zeroGrad();
  }

  /**
   * The parameters, in the order given.
   *
   * @return an unmodifiable list
   */
  public List<Tensor> parameters() {
    return params;
  }

  /**
   * A zero tensor like {@code p}, owned by this optimizer (freed by {@link #close()}).
   *
   * @param p the parameter the state belongs to
   * @return the state tensor, p's shape
   */
  protected Tensor newState(Tensor p) {
    Tensor t = Tensor.zerosLike(p);
    Scope.transfer(t.storage(), null);
    state.add(t);
    return t;
  }

  /**
   * Writes the optimizer's state (momenta, step count) to an {@code .npz} file, so training can
   * resume where it stopped: with {@link org.metakernels.nn.Module#saveParameters} for the model,
   * then {@link #loadState} into an optimizer of the same kind over the same parameters. Entry
   * names are the optimizer's ({@code m.0}, {@code v.0}, {@code step.0} and {@code step} for Adam; {@code velocity.0}
   * for SGD with momentum; the number is the parameter's index), each in its parameter's element
   * type. A state not created yet (a parameter that never
   * had a gradient) is left out: it is zero.
   *
   * <pre>{@code
   * net.saveParameters(Path.of("net.npz"));
   * opt.saveState(Path.of("opt.npz"));                    // m.0, v.0, ..., step
   * }</pre>
   *
   * @param file the file (replaced if present)
   * @throws IOException when the file cannot be written
   */
  public void saveState(Path file) throws IOException {
    checkOpen("saveState");
    try (Scope s = Scope.open()) {
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (var e : scalarState().entrySet()) out.put(e.getKey(), Tensor.ofIndices(new long[] {e.getValue()}));
      for (var e : counts().entrySet()) out.put(e.getKey(), Tensor.ofIndices(new long[] {e.getValue()}));
      out.putAll(stateTensors());
      NumPy.writeTensors(file, out);
    }
  }

  /**
   * Sets the optimizer's state from a file {@link #saveState} wrote for an optimizer of the same
   * kind over parameters of the same shapes: afterwards {@link #step()} continues exactly as the
   * saved optimizer would have (tested bit for bit). A state the file lacks is set to zero (as the
   * saved optimizer had not created it). Everything is checked first: an unknown entry, an index
   * past the parameters, a shape other than its parameter's or a missing step count is an error
   * naming the file and the entry, and changes nothing.
   *
   * <pre>{@code
   * try (Adam opt = new Adam(net.parameters(), 1e-3)) {
   *   net.loadParameters(Path.of("net.npz"));
   *   opt.loadState(Path.of("opt.npz"));                  // resumes at the saved step
   * }
   * }</pre>
   *
   * @param file the file
   * @throws IOException when the file cannot be read or is not an .npz
   * @throws MetakernelsException when its entries do not fit this optimizer (nothing changed)
   */
  public void loadState(Path file) throws IOException {
    checkNotClosed("loadState");  // a freed parameter: the MetakernelsException below
    String who = getClass().getSimpleName() + ".loadState(" + file + ")";
    for (int i = 0; i < params.size(); i++)
      if (params.get(i).isClosed()) throw new MetakernelsException(who + ": parameter " + i + " is closed");
    List<String> kinds = stateKinds();
    Set<String> scalarNames = scalarState().keySet();
    Map<String, Long> scalars = new LinkedHashMap<>();
    Map<String, Long> counts = new LinkedHashMap<>();
    Set<String> present = new HashSet<>();
    // pass 1: every entry checked (one array on the heap at a time); integer state kept. Pass 2
    // reads the same open file (one replaced in between was read half old, half new)
    try (var ng = Autograd.noGrad()) {
      NumPy.forEachNpzEntryTwice(file, (name, a) -> {
        int counted = entryIndex(name, countKinds());
        if (scalarNames.contains(name) || counted >= 0) {
          if (a.isFloating() || a.size() != 1)
            throw new MetakernelsException(who + ": '" + name + "' is " + a.describe() + ", not one integer");
          if (counted >= params.size())
            throw new MetakernelsException(who + ": '" + name + "' is past the " + params.size() + " parameters");
          if (a.longs()[0] < 0) throw new MetakernelsException(who + ": '" + name + "' is " + a.longs()[0] + ", a negative count");
          (counted >= 0 ? counts : scalars).put(name, a.longs()[0]);
          return;
        }
        int index = entryIndex(name, kinds);
        if (index < 0)
          throw new MetakernelsException(who + ": unknown entry '" + name + "' (this optimizer's: "
              + String.join(", ", java.util.stream.Stream.concat(kinds.stream(), countKinds().stream()).map(k -> k + ".<i>").toList())
              + (scalarNames.isEmpty() ? "" : ", " + String.join(", ", scalarNames)) + ")");
        if (index >= params.size())
          throw new MetakernelsException(who + ": '" + name + "' is past the " + params.size() + " parameters");
        Tensor p = params.get(index);
        if (!Arrays.equals(a.shape(), p.shape()))
          throw new MetakernelsException(who + ": '" + name + "' is " + a.describe() + " in the file, parameter "
              + index + " is " + p.describe());
        if (!a.isFloating())
          throw new MetakernelsException(who + ": '" + name + "' is " + a.describe() + ", not floating point");
        present.add(name);
      }, () -> {
        for (String k : scalarNames)
          if (!scalars.containsKey(k)) throw new MetakernelsException(who + ": no entry '" + k + "'");
        // pass 2: states the file lacks are zero; the others are copied in, converted
        for (String kind : kinds)
          for (int i = 0; i < params.size(); i++) {
            Tensor st = present.contains(kind + "." + i) ? null : state(kind, i, false);
            if (st != null) st.fillInPlace(0);  // absent here and in the file: zero either way
          }
      }, (name, a) -> {
        if (scalarNames.contains(name) || counts.containsKey(name)) return;
        int index = entryIndex(name, kinds);
        Tensor p = params.get(index);
        try (Scope s = Scope.open()) {
          state(name.substring(0, name.lastIndexOf('.')), index, true).copyInPlace(a.toTensor(p.dtype(), p.device()));
        }
      });
      setScalarState(scalars);
      setCounts(counts, present);
    }
  }

  /** The parameter index of a per-parameter entry "kind.i" of one of {@code kinds}, else -1. */
  private static int entryIndex(String name, List<String> kinds) {
    int dot = name.lastIndexOf('.');
    if (dot < 0 || !kinds.contains(name.substring(0, dot))) return -1;
    try {
      return Integer.parseInt(name.substring(dot + 1));
    } catch (NumberFormatException x) {
      return -1;
    }
  }

  /**
   * The kinds of per-parameter state this optimizer keeps, in file order ("m", "v").
   *
   * @return the kinds
   */
  protected List<String> stateKinds() {
    return List.of();
  }

  /**
   * State {@code kind} of parameter {@code i}: null when not created yet and {@code create} is
   * false; created (zero, by {@link #newState}) when {@code create} is true.
   *
   * @param kind one of {@link #stateKinds()}
   * @param i the parameter's index
   * @param create whether to create a missing one
   * @return the state tensor, or null
   */
  protected Tensor state(String kind, int i, boolean create) {
    throw new IllegalStateException(getClass().getSimpleName() + " keeps no state '" + kind + "'");
  }

  /**
   * Integer state by name ("step" → t), in file order.
   *
   * @return a new map
   */
  protected Map<String, Long> scalarState() {
    return Map.of();
  }

  /**
   * Sets the integer state from {@link #loadState}.
   *
   * @param values name → value, every name of {@link #scalarState()}
   */
  protected void setScalarState(Map<String, Long> values) {}

  /**
   * Kinds of per-parameter integer state, saved as entries "kind.i" (Adam: "step", the updates
   * parameter i has had); none by default.
   *
   * @return the kinds
   */
  protected List<String> countKinds() {
    return List.of();
  }

  /**
   * The per-parameter integer state by entry name ("step.0" → 12), for the parameters that have
   * it.
   *
   * @return a new map
   */
  protected Map<String, Long> counts() {
    return Map.of();
  }

  /**
   * Sets the per-parameter integer state from {@link #loadState} (after the scalar state): the
   * file's entries, and the names of the state tensors it had, for a file that predates the counts.
   *
   * @param values entry name → value, for the entries the file has
   * @param presentStates the file's state-tensor entries ("m.0", ...)
   */
  protected void setCounts(Map<String, Long> values, Set<String> presentStates) {}

  /** The existing state tensors by entry name (kind.index), kinds in order, then indices. */
  private Map<String, Tensor> stateTensors() {
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (String kind : stateKinds())
      for (int i = 0; i < params.size(); i++) {
        Tensor t = state(kind, i, false);
        if (t != null) out.put(kind + "." + i, t);
      }
    return out;
  }

  /** Frees the optimizer's state tensors (the parameters stay); later steps, saves and loads throw. */
  @Override
  public void close() {
    closed = true;
    for (Tensor t : state) t.close();
    state.clear();
  }

  /**
   * Throws once {@link #close()} ran (a closed optimizer's state is gone, and a step would make new
   * state no one frees), or when a parameter was freed (a step would skip it silently, having no
   * gradient). Subclasses call it first in {@link #step()}.
   *
   * @param op the caller, for the message
   * @throws IllegalStateException when closed
   */
  protected void checkOpen(String op) {
    checkNotClosed(op);
    for (int i = 0; i < params.size(); i++)
      if (params.get(i).isClosed())
        throw new IllegalStateException(getClass().getSimpleName() + "." + op + ": parameter " + i + " was freed"
            + " (a module's to(...) replaces its parameters: build the optimizer after it)");
  }

  /**
   * {@link #checkOpen}, and every gradient checked before anything is written: a freed gradient
   * met half way through a step left the parameters before it updated (and Adam's counts off).
   *
   * @param op the method, for the message
   * @throws IllegalStateException when the optimizer, a parameter or a gradient was freed
   */
  protected void checkOpenWithGradients(String op) {
    checkOpen(op);
    for (int i = 0; i < params.size(); i++) {
      Tensor g = params.get(i).grad();
      if (g != null && g.isClosed())
        throw new IllegalStateException(getClass().getSimpleName() + "." + op + ": the gradient of parameter " + i
            + " was freed (zeroGrad() clears gradients; close none by hand)");
    }
  }

  private void checkNotClosed(String op) {
    if (closed) throw new IllegalStateException(getClass().getSimpleName() + "." + op + ": the optimizer was closed");
  }
}
