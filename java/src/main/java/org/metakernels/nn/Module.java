package org.metakernels.nn;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.metakernels.autograd.Autograd;
import org.metakernels.io.NumPy;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.Transfer;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * A network piece with named parameters and child modules. Parameters belong to the module
 * (not to any scope) and are freed by {@link #close()}. {@link #forward(Tensor, Weights)} runs
 * with substituted weights, which is what unrolled inner loops need:
 *
 * <pre>{@code
 * MLP net = new MLP(new long[] {1, 40, 40, 1}, Activation.RELU, DType.F64, Device.CPU, 0L);
 * Tensor y = net.forward(x);                                   // own weights
 * Tensor y2 = net.forward(x, Weights.of(fastWeights));         // {"layer0.weight": ..., ...}
 * }</pre>
 */
public abstract class Module implements AutoCloseable {
  private final Map<String, Tensor> params = new LinkedHashMap<>();
  private final Map<String, Module> children = new LinkedHashMap<>();

  /**
   * Output for input {@code x} using this module's own parameters:
   * {@code mlp.forward(x)} of [B, in] is [B, out] for an MLP of sizes {in, ..., out}.
   *
   * @param x the input
   * @return the output
   */
  public final Tensor forward(Tensor x) {
    return forward(x, Weights.none());
  }

  /**
   * Output for {@code x} with parameters looked up in {@code w} first (full dotted names, e.g.
   * "layer0.weight"), this module's own ones otherwise; what an inner loop calls with fast weights.
   * {@code net.forward(x, Weights.of(fast))} has the shape of {@code net.forward(x)}.
   *
   * @param x the input
   * @param w substituted weights ({@link Weights#none()} for none)
   * @return the output
   */
  public abstract Tensor forward(Tensor x, Weights w);

  /**
   * Registers a parameter: it requires grad and is owned by this module (taken out of every
   * scope), so it lives until {@link #close()}. For subclasses' constructors:
   * {@code register("weight", Tensor.uniform(new long[] {out, in}, -b, b, dtype, device, seed))}.
   * Read it back through {@link #p(String, Weights)} rather than keeping it in a field:
   * {@link #to(Device)} replaces the registered tensor.
   *
   * @param name the local name, unique among parameters and children
   * @param init the initial value, a floating-point leaf
   * @return {@code init}
   */
  protected Tensor register(String name, Tensor init) {
    checkLocalName(name);
    if (params.containsKey(name) || children.containsKey(name))
      throw new MetakernelsException("Module: duplicate name '" + name + "'");
    init.requiresGrad(true);  // first: a refusal (an I64 tensor) leaves it to its scope
    Scope.transfer(init.storage(), null);
    params.put(name, init);
    return init;
  }

  /** A local name: not empty, no '.' (a dotted name could shadow a child's parameter, as PyTorch refuses). */
  private static void checkLocalName(String name) {
    if (name == null || name.isEmpty() || name.indexOf('.') >= 0)
      throw new MetakernelsException("Module: the name '" + name + "' must be non-empty and without '.'");
  }

  /**
   * Registers a child module, whose parameters appear as {@code name + "." + theirs}:
   * {@code child("layer0", new Linear(in, hidden, true, dtype, device, seed))}.
   *
   * @param <M> the child's type
   * @param name the local name, unique among parameters and children
   * @param m the child
   * @return {@code m}
   */
  protected <M extends Module> M child(String name, M m) {
    checkLocalName(name);
    if (params.containsKey(name) || children.containsKey(name))
      throw new MetakernelsException("Module: duplicate name '" + name + "'");
    children.put(name, m);
    return m;
  }

  /**
   * The parameter {@code name}, substituted from {@code w} when present there; for
   * {@link #forward(Tensor, Weights)} implementations: {@code x.matmul(p("weight", w).mT())}.
   *
   * @param name the local name
   * @param w the substituted weights, as passed to forward
   * @return the tensor to use
   */
  protected Tensor p(String name, Weights w) {
    Tensor t = w.get(name);
    if (t != null) return t;
    Tensor own = params.get(name);
    if (own == null) throw new MetakernelsException("Module: no parameter '" + name + "' in " + getClass().getSimpleName());
    return own;
  }

  /**
   * {@link #p}, a substituted tensor held to the shape of this module's own parameter: for
   * parameters that broadcast into the result (a bias added last), where another shape would grow
   * the output instead of failing. {@code h.add(pExact("bias", w, "GCNConv.forward"))}.
   *
   * @param name the parameter's local name
   * @param w the substituted weights
   * @param op the caller, for the message
   * @return the tensor to use
   * @throws MetakernelsException when a substituted tensor has another shape
   */
  protected Tensor pExact(String name, Weights w, String op) {
    Tensor t = p(name, w);
    Tensor own = params.get(name);
    if (own != null && t != own && !java.util.Arrays.equals(t.shape(), own.shape()))
      throw new MetakernelsException(op + ": the substituted '" + name + "' " + t.describe()
          + " must have the parameter's shape " + java.util.Arrays.toString(own.shape()));
    return t;
  }

  /**
   * Runs child {@code name} with the matching part of {@code w}: {@code h = run("layer0", x, w)}.
   *
   * @param name the child's local name
   * @param x its input
   * @param w the substituted weights, as passed to forward
   * @return the child's output
   */
  protected Tensor run(String name, Tensor x, Weights w) {
    Module m = children.get(name);
    if (m == null) throw new MetakernelsException("Module: no child '" + name + "'");
    return m.forward(x, w.child(name));
  }

  /**
   * All parameters by dotted name, in registration order, children's after this module's own:
   * an MLP's are {@code layer0.weight, layer0.bias, layer1.weight, ...}.
   *
   * @return a new map (the tensors themselves, not copies)
   */
  public Map<String, Tensor> namedParameters() {
    Map<String, Tensor> out = new LinkedHashMap<>();
    collect("", out);
    return out;
  }

  private void collect(String prefix, Map<String, Tensor> out) {
    for (var e : params.entrySet()) out.put(prefix + e.getKey(), e.getValue());
    for (var e : children.entrySet()) e.getValue().collect(prefix + e.getKey() + ".", out);
  }

  /**
   * All parameters in {@link #namedParameters()} order, e.g. for an {@link org.metakernels.optim.Optimizer};
   * a tensor registered under two names (tied weights) once, at its first name, as PyTorch's
   * {@code module.parameters()} (listed twice, an optimizer updated it twice per step).
   *
   * @return a new list
   */
  public List<Tensor> parameters() {
    java.util.Set<Tensor> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    List<Tensor> out = new ArrayList<>();
    for (Tensor t : namedParameters().values())
      if (seen.add(t)) out.add(t);
    return out;
  }

  /**
   * Total number of parameter elements.
   *
   * @return the count
   */
  public long parameterCount() {
    long n = 0;
    for (Tensor t : parameters()) n += t.numel();
    return n;
  }

  /**
   * Writes every parameter to an {@code .npz} file, one entry per {@link #namedParameters()} name
   * in that order, each in its element type (F32 {@code <f4}, F64 {@code <f8}; BF16/F16 widened
   * exactly to {@code <f4}): what {@link #loadParameters} reads back, and what NumPy reads
   * ({@code np.load("net.npz")["layer0.weight"]}). Parameters on the GPU are copied to the host.
   *
   * <pre>{@code
   * net.saveParameters(Path.of("net.npz"));              // layer0.weight, layer0.bias, ...
   * }</pre>
   *
   * @param file the file (replaced if present)
   * @throws IOException when the file cannot be written
   */
  public void saveParameters(Path file) throws IOException {
    NumPy.writeTensors(file, namedParameters());
  }

  /**
   * Sets every parameter from an {@code .npz} file such as {@link #saveParameters} writes (or
   * {@code np.savez} of arrays named as {@link #namedParameters()}): the file must hold exactly
   * these names, each with the parameter's shape and a floating-point type; values are converted to
   * the parameter's element type (rounded to nearest even when narrower) and copied into it in
   * place on its device, so optimizers and the tensors handed out by {@link #parameters()} see
   * them. Nothing is recorded by autograd. Everything is checked before the first write: a missing
   * or unexpected name, a wrong shape or an integer array is an error naming the file, the
   * parameter and both shapes, and leaves every parameter as it was. The file is opened once and
   * read twice (the check, then the copies), one array on the heap at a time.
   *
   * <pre>{@code
   * MLP copy = new MLP(new long[] {1, 40, 40, 1}, Activation.RELU, DType.F64, Device.CPU, 1L);
   * copy.loadParameters(Path.of("net.npz"));             // copy.forward(x) equals net.forward(x)
   * }</pre>
   *
   * @param file the file
   * @throws IOException when the file cannot be read or is not an .npz
   * @throws MetakernelsException when its arrays do not match the parameters (nothing changed)
   */
  public void loadParameters(Path file) throws IOException {
    Map<String, Tensor> own = namedParameters();
    String who = getClass().getSimpleName() + ".loadParameters(" + file + ")";
    checkOpen(who, own, null);
    // pass 1: every entry's name, type and shape (one array on the heap at a time); pass 2 reads
    // the same open file (one replaced in between was read half old, half new: a load that wrote
    // some parameters and then failed)
    Set<String> seen = new LinkedHashSet<>();
    try (var ng = Autograd.noGrad()) {
      NumPy.forEachNpzEntryTwice(file, (name, a) -> {
        Tensor p = own.get(name);
        if (p != null && !Arrays.equals(a.shape(), p.shape()))
          throw new MetakernelsException(who + ": '" + name + "' is " + a.describe() + " in the file, "
              + p.describe() + " in the module");
        if (p != null && !a.isFloating())
          throw new MetakernelsException(who + ": '" + name + "' is " + a.describe()
              + " in the file, not floating point (the parameter is " + p.describe() + ")");
        seen.add(name);
      }, () -> checkSameNames(who + ": the file's arrays do not name this module's parameters", own.keySet(), seen,
          "missing", "unexpected"), (name, a) -> {
        // pass 2: each array into its parameter, converted, in place
        Tensor p = own.get(name);
        try (Scope s = Scope.open()) {
          p.copyInPlace(a.toTensor(p.dtype(), p.device()));  // one rounding to the parameter's type
        }
      });
    }
  }

  /**
   * Sets every parameter from {@code source}'s parameter of the same dotted name, in place:
   * {@code source} may live on another device or hold another floating-point type (values are
   * converted to this module's type, rounded to nearest even when narrower), so a copy of a network
   * trained on the GPU, a target network or a snapshot before an inner loop is one call. Optimizers
   * and tensors taken from {@link #parameters()} keep working and see the new values. Nothing is
   * recorded by autograd, and gradients are left as they are. Both modules must have the same
   * parameter names and shapes: everything is checked before the first write, and a mismatch is an
   * error naming both modules, the parameter and the shapes, with nothing changed.
   *
   * <pre>{@code
   * MLP snapshot = new MLP(new long[] {1, 40, 40, 1}, Activation.RELU, DType.F64, Device.CPU, 1L);
   * snapshot.copyParametersFrom(net);                    // snapshot.forward(x) equals net.forward(x)
   * }</pre>
   *
   * @param source the module to copy from (this module: nothing to do)
   * @return this
   * @throws MetakernelsException when the names or shapes differ or a parameter is closed
   */
  public Module copyParametersFrom(Module source) {
    String who = getClass().getSimpleName() + ".copyParametersFrom(" + source.getClass().getSimpleName() + ")";
    Map<String, Tensor> own = namedParameters(), theirs = source.namedParameters();
    checkOpen(who, own, "this module");
    checkOpen(who, theirs, "the source");
    checkSameNames(who + ": the modules' parameters have different names", own.keySet(), theirs.keySet(), "only here",
        "only in the source");
    for (var e : own.entrySet()) {
      Tensor p = e.getValue(), q = theirs.get(e.getKey());
      if (!Arrays.equals(p.shape(), q.shape()))
        throw new MetakernelsException(who + ": '" + e.getKey() + "' is " + p.describe() + " here, " + q.describe()
            + " in the source");
    }
    if (source == this) return this;
    try (var ng = Autograd.noGrad()) {
      for (var e : own.entrySet()) {
        Tensor p = e.getValue(), q = theirs.get(e.getKey());
        if (p == q) continue;  // a parameter both modules share
        try (Scope s = Scope.open()) {
          p.copyInPlace(converted(q, p.dtype(), p.device()));
        }
      }
    }
    return this;
  }

  /**
   * Moves every parameter to {@code device}, in place, as PyTorch's {@code module.to(device)}:
   * each parameter not already there is replaced by a copy on {@code device} (a leaf that requires
   * grad, owned by this module) and the old tensor and its gradient are freed. Optimizers and
   * tensors taken from {@link #parameters()} before the move hold freed tensors afterwards (using
   * them is an error, not a crash): build them after moving, or move nothing and use
   * {@link #copyParametersFrom} into a module built on the device. A parameter registered under
   * two names stays one tensor. If a copy fails (e.g. the device is out of memory) the copies made
   * so far are freed and every parameter is left as it was.
   *
   * <pre>{@code
   * net.to(Device.CUDA);                                 // then: new Adam(net.parameters(), 1e-3)
   * }</pre>
   *
   * @param device the target device
   * @return this
   * @throws MetakernelsException when a parameter is closed or a copy fails (nothing changed)
   */
  public Module to(Device device) {
    return to(null, device, getClass().getSimpleName() + ".to(" + device + ")");
  }

  /**
   * Converts every parameter to the floating-point type {@code dtype}, in place, as
   * {@link #to(Device)} moves them (rounded to nearest even when narrower; the same caveats about
   * optimizers and tensors taken before): {@code net.to(DType.F32)}.
   *
   * @param dtype the target type, floating point
   * @return this
   * @throws MetakernelsException for an integer type, a closed parameter or a failed copy
   *     (nothing changed)
   */
  public Module to(DType dtype) {
    String who = getClass().getSimpleName() + ".to(" + dtype + ")";
    if (!dtype.isFloatingPoint()) throw new MetakernelsException(who + ": " + dtype + " is not a floating-point type");
    return to(dtype, null, who);
  }

  private Module to(DType dtype, Device device, String who) {
    checkOpen(who, namedParameters(), "this module");
    IdentityHashMap<Tensor, Tensor> made = new IdentityHashMap<>();
    try (var ng = Autograd.noGrad()) {
      for (Tensor t : parameters()) {
        DType dt = dtype == null ? t.dtype() : dtype;
        Device dev = device == null ? t.device() : device;
        if ((dt == t.dtype() && dev == t.device()) || made.containsKey(t)) continue;
        try (Scope s = Scope.open()) {
          Tensor n = converted(t, dt, dev);  // a new tensor: dt or dev differs
          Scope.transfer(n.storage(), null);
          made.put(t, n);
        }
      }
    } catch (RuntimeException e) {
      for (Tensor n : made.values()) n.close();
      throw e;
    }
    replace(made);
    for (Tensor old : made.keySet()) {  // once every module points at the new tensors
      old.zeroGrad();
      old.close();
    }
    return this;
  }

  private void replace(IdentityHashMap<Tensor, Tensor> made) {
    for (var e : params.entrySet()) {
      Tensor n = made.get(e.getValue());
      if (n != null) e.setValue(n.requiresGrad(true));
    }
    for (Module m : children.values()) m.replace(made);
  }

  /** {@code t} as {@code dtype} on {@code device}: the narrowing cast where the data is, then the move. */
  private static Tensor converted(Tensor t, DType dtype, Device device) {
    Tensor r = t;
    if (r.dtype() != dtype && dtype.size < r.dtype().size) r = r.castTo(dtype);
    if (r.device() != device) r = Transfer.copy(r, device);
    if (r.dtype() != dtype) r = r.castTo(dtype);
    return r;
  }

  /** Refuses a closed parameter of {@code ps}, naming it (and {@code whose}, where not null). */
  private static void checkOpen(String who, Map<String, Tensor> ps, String whose) {
    for (var e : ps.entrySet())
      if (e.getValue().isClosed())
        throw new MetakernelsException(who + ": parameter '" + e.getKey() + "'" + (whose == null ? "" : " of " + whose)
            + " is closed");
  }

  /** Refuses two name sets that differ: {@code what}, then the names only in each (sorted). */
  private static void checkSameNames(String what, Set<String> own, Set<String> other, String ownOnly, String otherOnly) {
    TreeSet<String> onlyOwn = new TreeSet<>(own), onlyOther = new TreeSet<>(other);
    onlyOwn.removeAll(other);
    onlyOther.removeAll(own);
    if (!onlyOwn.isEmpty() || !onlyOther.isEmpty())
      throw new MetakernelsException(what + (onlyOwn.isEmpty() ? "" : "; " + ownOnly + ": " + onlyOwn)
          + (onlyOther.isEmpty() ? "" : "; " + otherOnly + ": " + onlyOther));
  }

  /** Clears and frees the accumulated gradient of every parameter. */
  public void zeroGrad() {
    for (Tensor t : parameters()) t.zeroGrad();
  }

  /** Frees the parameters and their gradients. */
  @Override
  public void close() {
    for (Tensor t : parameters()) {
      t.zeroGrad();
      t.close();
    }
  }
}
