package org.metakernels.autograd;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.metakernels.internal.Internals;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Reverse-mode differentiation over the define-by-run tape. There is no global collector:
 * {@link #grad} returns tensors. With {@code createGraph = true} the backward pass is itself
 * recorded, so its results can be differentiated again (Hessian-vector products, MAML).
 *
 * <pre>{@code
 * Tensor loss = x.matmul(w).tanh().square().mean();
 * Tensor g = Autograd.grad(loss, List.of(w), true).get(0);                 // [10, 1]
 * Tensor hv = Autograd.grad(g.mul(v).sum(), List.of(w), false).get(0);     // H v, [10, 1]
 * }</pre>
 */
public final class Autograd {
  private Autograd() {}

  /**
   * Turns recording off on this thread until the guard closes:
   * {@code try (var g = Autograd.noGrad()) { p.subInPlace(p.grad().mul(lr)); }}.
   *
   * @return the guard that restores the previous mode
   */
  public static GradMode.Guard noGrad() {
    return GradMode.set(false);
  }

  /**
   * Turns recording on until the guard closes (inside a {@link #noGrad()} block, say).
   *
   * @return the guard that restores the previous mode
   */
  public static GradMode.Guard enableGrad() {
    return GradMode.set(true);
  }

  /**
   * Records an op when recording is on and any input requires grad: {@code outputs} become the
   * outputs of a new {@link Node} whose backward is {@code rule}. This is how every op of the
   * library is made differentiable, and how a program adds its own; the rule should be written
   * with differentiable ops so that its result can be differentiated again.
   *
   * <p>Every tensor the backward can read is version-checked when it runs: the inputs, the
   * outputs, and every tensor the rule captured (directly, in an array or list, or inside a record
   * or one of the library's option objects). Editing any of them in place between the op and its
   * backward makes the backward throw, naming the op and the tensor, instead of returning a wrong
   * gradient.
   *
   * <pre>{@code
   * Tensor y = Tensor.empty(x.shape(), x.dtype(), x.device());   // ... filled by a raw kernel
   * Autograd.record("myOp", new Tensor[] {y}, new Tensor[] {x}, g -> new Tensor[] {g[0].mul(2.0)});
   * }</pre>
   *
   * @param name the op's name, in error messages
   * @param outputs the op's results, made without recording
   * @param inputs the op's inputs (null entries allowed)
   * @param rule maps the outputs' gradients to the inputs' (one per input, null for none)
   * @return true when a node was recorded
   */
  public static boolean record(String name, Tensor[] outputs, Tensor[] inputs, Node.Backward rule) {
    return record(name, outputs, inputs, rule, null);
  }

  /**
   * {@link #record(String, Tensor[], Tensor[], Node.Backward)} with a fast forward-mode rule
   * beside the backward one (see {@link Forward}): while a forward level is open, the outputs'
   * tangents are computed first, whatever the grad mode, by {@code jvp} (or, when it is null, by
   * the generic rule built from {@code rule}).
   * {@code Autograd.record("exp", y, new Tensor[] {x}, g -> new Tensor[] {g[0].mul(y)}, t -> new Tensor[] {t[0].mul(y)})}.
   *
   * @param name the op's name, in error messages
   * @param outputs the op's results, made without recording
   * @param inputs the op's inputs (null entries allowed)
   * @param rule maps the outputs' gradients to the inputs' (one per input, null for none)
   * @param jvp maps the inputs' tangents (null for zero) to the outputs' (null for zero), or null
   * @return true when a node was recorded
   */
  public static boolean record(String name, Tensor[] outputs, Tensor[] inputs, Node.Backward rule, Forward.Rule jvp) {
    boolean any = false;
    if (GradMode.isEnabled())
      for (Tensor t : inputs) if (t != null && t.requiresGrad()) { any = true; break; }
    if (any) {
      Node node = new Node(name, inputs, outputs, rule);
      for (int i = 0; i < outputs.length; i++) Internals.tensor().setGradFn(outputs[i], node, i);
    }
    // after the node: a forward rule that reads an output (exp's t·y) then records its dependence
    Forward.propagate(name, outputs, inputs, rule, jvp);
    return any;
  }

  /**
   * Single-output form of {@link #record(String, Tensor[], Tensor[], Node.Backward)}:
   * {@code return Autograd.record("square", y, new Tensor[] {x}, g -> new Tensor[] {g[0].mul(x).mul(2.0)});}
   *
   * @param name the op's name, in error messages
   * @param output the op's result
   * @param inputs the op's inputs (null entries allowed)
   * @param rule maps the output's gradient to the inputs' (one per input, null for none)
   * @return {@code output}
   */
  public static Tensor record(String name, Tensor output, Tensor[] inputs, Node.Backward rule) {
    record(name, new Tensor[] {output}, inputs, rule);
    return output;
  }

  /**
   * Single-output form of {@link #record(String, Tensor[], Tensor[], Node.Backward, Forward.Rule)}:
   * {@code return Autograd.record("neg", y, new Tensor[] {x}, g -> new Tensor[] {g[0].neg()}, t -> new Tensor[] {t[0].neg()});}
   *
   * @param name the op's name, in error messages
   * @param output the op's result
   * @param inputs the op's inputs (null entries allowed)
   * @param rule maps the output's gradient to the inputs' (one per input, null for none)
   * @param jvp maps the inputs' tangents (null for zero) to the output's, or null for the generic rule
   * @return {@code output}
   */
  public static Tensor record(String name, Tensor output, Tensor[] inputs, Node.Backward rule, Forward.Rule jvp) {
    record(name, new Tensor[] {output}, inputs, rule, jvp);
    return output;
  }

  /**
   * Gradient of a one-element {@code output} with respect to {@code inputs}:
   * {@code Autograd.grad(loss, List.of(w), true).get(0)} has w's shape.
   *
   * @param output a tensor with one element
   * @param inputs tensors that require grad
   * @param createGraph record the backward pass, so the result can be differentiated again
   * @return one gradient per input, each of its input's shape
   */
  public static List<Tensor> grad(Tensor output, List<Tensor> inputs, boolean createGraph) {
    java.util.Objects.requireNonNull(output, "Autograd.grad: output");
    return grad(List.of(output), inputs, null, createGraph);
  }

  /**
   * Gradients of {@code outputs} (weighted by {@code gradOutputs}; null means ones for scalar
   * outputs) with respect to {@code inputs}. An input the outputs do not depend on gets zeros.
   * A vector-Jacobian product: {@code Autograd.grad(List.of(y), List.of(x), List.of(v), false)}
   * for y [B, D] and v [B, D] gives one tensor of x's shape.
   *
   * @param outputs the tensors to differentiate; each must require grad
   * @param inputs tensors that require grad
   * @param gradOutputs one per output, of its shape; or null when every output has one element
   * @param createGraph record the backward pass so the result can be differentiated again
   * @return one gradient per input, each of its input's shape
   */
  public static List<Tensor> grad(List<Tensor> outputs, List<Tensor> inputs, List<Tensor> gradOutputs,
      boolean createGraph) {
    Map<Tensor, Tensor> leafGrads = new IdentityHashMap<>();
    Map<Tensor, Integer> wanted = new IdentityHashMap<>();
    for (int i = 0; i < inputs.size(); i++) {
      Tensor t = inputs.get(i);
      if (!t.requiresGrad())
        throw new MetakernelsException("grad: input " + i + " (" + t.describe() + ") does not require grad");
      wanted.put(t, i);
    }
    Tensor[] result = new Tensor[inputs.size()];
    run(outputs, gradOutputs, createGraph, wanted, result, false);
    for (int i = 0; i < result.length; i++) {
      int last = wanted.get(inputs.get(i));  // a tensor listed twice is keyed by its last position
      if (last != i) result[i] = result[last];
      if (result[i] == null) result[i] = Tensor.zerosLike(inputs.get(i));
    }
    return Arrays.asList(result);
  }

  /**
   * Accumulates d(output)/d(leaf) into every reachable leaf's {@link Tensor#grad()}; output must
   * have one element. {@code Autograd.backward(loss)} is {@code loss.backward()}.
   *
   * @param output a tensor with one element
   */
  public static void backward(Tensor output) {
    java.util.Objects.requireNonNull(output, "Autograd.backward: output");
    run(List.of(output), null, false, new IdentityHashMap<>(), null, true);
  }

  // ------------------------------------------------------------------------------------------

  private static void run(List<Tensor> outputs, List<Tensor> gradOutputs, boolean createGraph,
      Map<Tensor, Integer> wanted, Tensor[] result, boolean accumulateLeaves) {
    if (gradOutputs != null && gradOutputs.size() != outputs.size())
      throw new MetakernelsException("grad: " + outputs.size() + " outputs but " + gradOutputs.size() + " gradOutputs");
    try (GradMode.Guard mode = GradMode.set(createGraph)) {
      // seeds
      // insertion-ordered (Node has identity equality): the roots, and so the order in which
      // gradients are summed, are the same run to run
      Map<Node, Tensor[]> slots = new LinkedHashMap<>();
      for (int i = 0; i < outputs.size(); i++) {
        Tensor out = outputs.get(i);
        Tensor seed = gradOutputs == null ? null : gradOutputs.get(i);
        if (seed == null) {
          if (out.numel() != 1)
            throw new MetakernelsException("grad: output " + out.describe() + " is not a scalar; pass gradOutputs");
          seed = Tensor.onesLike(out);
        } else if (!Arrays.equals(seed.shape(), out.shape())) {
          throw new MetakernelsException("grad: gradOutput " + seed.describe() + " does not match output " + out.describe());
        }
        if (!out.requiresGrad())
          throw new MetakernelsException("grad: output " + i + " (" + out.describe() + ") does not require grad");
        if (out.gradFn() == null) {  // the output is a leaf itself
          deliverLeaf(out, seed, wanted, result, accumulateLeaves);
          continue;
        }
        accumulate(slots, out.gradFn(), out.outputIndex(), seed);
      }
      // The part of the tape to walk: nodes below every requested tensor cannot lead to one (a
      // node is created after all the nodes below it), so grad() stops there. In an unrolled loop
      // the gradient of step k in the weights w_k then costs one step's tape, not k steps'.
      // backward() and a requested leaf (which may feed any node) walk everything.
      long floor = walkFloor(wanted, accumulateLeaves);
      // topological order: consumer counts within the reachable graph
      Map<Node, Integer> consumers = new IdentityHashMap<>();
      Map<Node, Boolean> needed = new IdentityHashMap<>();
      List<Node> roots = new ArrayList<>(slots.keySet());
      countConsumers(roots, consumers, floor);  // one walk over all roots: shared nodes count each edge once
      for (Node r : roots) isNeeded(r, wanted, accumulateLeaves, needed, floor);
      // requested non-leaf tensors, by node and output index
      Map<Node, List<Tensor>> wantedByNode = new IdentityHashMap<>();
      for (Tensor t : wanted.keySet())
        if (t.gradFn() != null) wantedByNode.computeIfAbsent(t.gradFn(), k -> new ArrayList<>()).add(t);

      Deque<Node> ready = new ArrayDeque<>();
      for (Node r : roots) if (consumers.getOrDefault(r, 0) == 0) ready.add(r);
      while (!ready.isEmpty()) {
        Node node = ready.poll();
        Tensor[] gOut = slots.remove(node);
        List<Tensor> asked = wantedByNode.get(node);
        if (asked != null && gOut != null)
          for (Tensor t : asked) if (gOut[t.outputIndex()] != null) result[wanted.get(t)] = gOut[t.outputIndex()];
        boolean any = false;
        if (gOut != null) for (Tensor g : gOut) any |= g != null;
        Tensor[] gIn = null;
        if (any && needed.getOrDefault(node, false)) gIn = node.runBackward(gOut);
        Tensor[] ins = node.inputs();
        for (int i = 0; i < ins.length; i++) {
          Tensor in = ins[i];
          if (in == null) continue;
          Tensor g = gIn == null ? null : gIn[i];
          if (in.gradFn() != null) {
            Node child = in.gradFn();
            if (child.sequence() < floor) continue;  // below every requested tensor: not walked
            if (g != null) accumulate(slots, child, in.outputIndex(), g);
            int c = consumers.merge(child, -1, Integer::sum);
            if (c == 0) ready.add(child);
          } else if (g != null) {
            deliverLeaf(in, g, wanted, result, accumulateLeaves);
          }
        }
      }
    }
  }

  private static void deliverLeaf(Tensor leaf, Tensor g, Map<Tensor, Integer> wanted, Tensor[] result,
      boolean accumulateLeaves) {
    Integer idx = wanted.get(leaf);
    if (idx != null) result[idx] = result[idx] == null ? g : plus(result[idx], g);
    if (accumulateLeaves && leaf.requiresGrad()) {
      try (GradMode.Guard off = GradMode.set(false)) {
        Tensor acc = leaf.grad();
        if (acc == null || acc.isClosed()) {
          Tensor copy = g.copyContiguous();
          Scope.transfer(copy.storage(), leaf.storage().owner());
          Internals.tensor().setGrad(leaf, copy);
        } else if (acc.dtype().isHalf()) {  // summed in F32, rounded once
          Internals.tensor().copyFrom(acc, acc.castTo(DType.F32).add(g.castTo(DType.F32)).castTo(acc.dtype()));
        } else {
          acc.addInPlace(g);
        }
      }
    }
  }

  private static void accumulate(Map<Node, Tensor[]> slots, Node node, int index, Tensor g) {
    Tensor[] s = slots.computeIfAbsent(node, n -> new Tensor[n.numOutputs()]);
    s[index] = s[index] == null ? g : plus(s[index], g);
  }

  /**
   * a + b for gradient accumulation (differentiable). BF16/F16 gradients, which no arithmetic
   * op takes, are summed in F32 and rounded back.
   */
  private static Tensor plus(Tensor a, Tensor b) {
    if (a.dtype().isHalf() || b.dtype().isHalf()) {
      DType t = a.dtype();
      return a.to(DType.F32).add(b.to(DType.F32)).to(t);
    }
    return a.add(b);
  }

  // The smallest node number grad() must walk to: that of the lowest requested non-leaf tensor's
  // node; Long.MIN_VALUE (everything) for backward() or when a leaf is requested.
  private static long walkFloor(Map<Tensor, Integer> wanted, boolean allLeaves) {
    if (allLeaves) return Long.MIN_VALUE;
    long floor = Long.MAX_VALUE;
    for (Tensor t : wanted.keySet()) {
      Node n = t.gradFn();
      if (n == null) return Long.MIN_VALUE;
      floor = Math.min(floor, n.sequence());
    }
    return floor;
  }

  private static void countConsumers(List<Node> roots, Map<Node, Integer> consumers, long floor) {
    Deque<Node> stack = new ArrayDeque<>();
    Map<Node, Boolean> seen = new IdentityHashMap<>();
    for (Node root : roots)
      if (seen.put(root, true) == null) stack.push(root);
    while (!stack.isEmpty()) {
      Node n = stack.pop();
      for (Tensor in : n.inputs()) {
        if (in == null || in.gradFn() == null || in.gradFn().sequence() < floor) continue;
        Node c = in.gradFn();
        consumers.merge(c, 1, Integer::sum);
        if (seen.put(c, true) == null) stack.push(c);
      }
    }
  }

  // A node is needed when some requested tensor (or, for backward(), any leaf) lies below it.
  private static boolean isNeeded(Node root, Map<Tensor, Integer> wanted, boolean allLeaves, Map<Node, Boolean> memo,
      long floor) {
    // iterative post-order to survive deep tapes (long unrolled loops)
    Deque<Node> stack = new ArrayDeque<>();
    Deque<Boolean> expanded = new ArrayDeque<>();
    stack.push(root);
    expanded.push(false);
    while (!stack.isEmpty()) {
      Node n = stack.pop();
      boolean exp = expanded.pop();
      if (memo.containsKey(n)) continue;
      if (!exp) {
        stack.push(n);
        expanded.push(true);
        for (Tensor in : n.inputs())
          if (in != null && in.gradFn() != null && in.gradFn().sequence() >= floor && !memo.containsKey(in.gradFn())) {
            stack.push(in.gradFn());
            expanded.push(false);
          }
      } else {
        boolean need = false;
        for (Tensor in : n.inputs()) {
          if (in == null) continue;
          if (wanted.containsKey(in)) need = true;
          else if (in.gradFn() == null) need |= allLeaves;
          else need |= memo.getOrDefault(in.gradFn(), false);
        }
        memo.put(n, need);
      }
    }
    return memo.get(root);
  }

  // ---- Hessian-vector products --------------------------------------------------------------

  /**
   * Hessian-vector product of a scalar {@code output} in {@code inputs}, by reverse over reverse:
   * the gradient is built with {@code createGraph}, then its vector-Jacobian product with
   * {@code v} is taken, so {@code H v = ∇(∇f · v)} without forming H (two backward passes, any op
   * with a second-order rule, the fused kernels included).
   * {@code Autograd.hvp(loss, List.of(w), List.of(v), false).get(0)} has w's shape.
   *
   * @param output a one-element tensor that depends on the inputs
   * @param inputs tensors that require grad
   * @param v one direction per input, of its shape, dtype and device
   * @param createGraph record the second pass too (for third derivatives, or a meta-gradient
   *     through the product)
   * @return H v, one tensor per input (zeros where the gradient does not depend on the inputs)
   * @throws MetakernelsException when a direction does not match its input
   */
  public static List<Tensor> hvp(Tensor output, List<Tensor> inputs, List<Tensor> v, boolean createGraph) {
    checkDirections("hvp", inputs, v);
    List<Tensor> g = grad(output, inputs, true);
    return vjpOfGradient(g, inputs, v, createGraph);
  }

  /**
   * Hessian-vector product of {@code f} at {@code x}: {@code Autograd.hvp(f, List.of(x), List.of(v))}
   * is H_f(x) v, x's shape. Inputs that do not require grad are differentiated through a detached
   * view (nothing is written to them).
   *
   * @param f a function of the inputs returning one element
   * @param x the point
   * @param v one direction per input
   * @return H v, one tensor per input
   */
  public static List<Tensor> hvp(java.util.function.Function<List<Tensor>, Tensor> f, List<Tensor> x, List<Tensor> v) {
    return hvp(f, x, v, false);
  }

  /**
   * Hessian-vector product of {@code f} at {@code x}, recorded for further differentiation when
   * {@code createGraph} (inputs that require grad are used as they are, so the product is
   * differentiable in them and in {@code v}). {@code f} runs with recording on whatever the
   * caller's mode: {@code Autograd.hvp(f, List.of(x), List.of(v), true).get(0)} has x's shape.
   *
   * @param f a function of the inputs returning one element
   * @param x the point
   * @param v one direction per input
   * @param createGraph record the second pass too
   * @return H v, one tensor per input
   */
  public static List<Tensor> hvp(java.util.function.Function<List<Tensor>, Tensor> f, List<Tensor> x, List<Tensor> v,
      boolean createGraph) {
    checkDirections("hvp", x, v);
    List<Tensor> at = new ArrayList<>(x.size());
    for (Tensor t : x) at.add(t.requiresGrad() ? t : Forward.detachKeepingTangents(t).requiresGrad(true));
    try (GradMode.Guard on = GradMode.set(true)) {
      return hvp(f.apply(at), at, v, createGraph);
    }
  }

  /**
   * The vector-Jacobian product of a gradient {@code g} (built with {@code createGraph}) in
   * {@code inputs}: {@code Σ_i ∂(g_i · v_i)/∂inputs}. Gradients that carry no graph contribute
   * nothing (their function was linear in the inputs).
   */
  private static List<Tensor> vjpOfGradient(List<Tensor> g, List<Tensor> inputs, List<Tensor> v, boolean createGraph) {
    List<Tensor> outs = new ArrayList<>(), seeds = new ArrayList<>();
    for (int i = 0; i < g.size(); i++)
      if (g.get(i).requiresGrad()) {
        outs.add(g.get(i));
        seeds.add(v.get(i));
      }
    if (outs.isEmpty()) {
      List<Tensor> z = new ArrayList<>();
      for (Tensor t : inputs) z.add(Tensor.zerosLike(t));
      return z;
    }
    return grad(outs, inputs, seeds, createGraph);
  }

  private static void checkDirections(String op, List<Tensor> x, List<Tensor> v) {
    if (x.size() != v.size())
      throw new MetakernelsException(op + ": " + x.size() + " inputs but " + v.size() + " directions");
    for (int i = 0; i < x.size(); i++) {
      Tensor a = x.get(i), b = v.get(i);
      a.address(op);
      b.address(op);
      if (!Arrays.equals(a.shape(), b.shape()) || a.dtype() != b.dtype() || a.device() != b.device())
        throw new MetakernelsException(op + ": direction " + i + " " + b.describe() + " does not match input "
            + a.describe() + " (same shape, dtype and device)");
    }
  }

  // ---- forward mode ---------------------------------------------------------------------------

  /**
   * Jacobian-vector product: runs {@code f} at {@code primals} with {@code tangents} carried
   * forward op by op (see {@link Forward}) and returns its outputs and their tangents J·t
   * (zeros for an output that does not depend on the primals). One pass, as cheap as about two
   * runs of f; no tape is needed. Levels nest: f may itself call jvp, or grad (forward over
   * reverse, {@link #hvpForward}); with the grad mode recording and primals that require grad,
   * the tangents are differentiable in reverse mode too.
   *
   * <pre>{@code
   * Forward.Jvp r = Autograd.jvp(xs -> List.of(xs.get(0).tanh().matmul(w)), List.of(x), List.of(t));
   * Tensor jt = r.tangents().get(0);        // J t, the output's shape [B, N]
   * }</pre>
   *
   * @param f a function of the primals
   * @param primals the point, floating point
   * @param tangents one direction per primal, of its shape, dtype and device
   * @return f's outputs and their tangents
   * @throws MetakernelsException when a tangent does not match its primal or a tensor was freed
   *     (before f runs)
   */
  public static Forward.Jvp jvp(java.util.function.Function<List<Tensor>, List<Tensor>> f, List<Tensor> primals,
      List<Tensor> tangents) {
    if (primals.size() != tangents.size())
      throw new MetakernelsException("jvp: " + primals.size() + " primals but " + tangents.size() + " tangents");
    for (int i = 0; i < primals.size(); i++) Forward.checkTangent("jvp", i, primals.get(i), tangents.get(i));
    try (Forward.Level lvl = Forward.enter()) {
      List<Tensor> in = new ArrayList<>(primals.size());
      for (int i = 0; i < primals.size(); i++) in.add(lvl.dual(primals.get(i), tangents.get(i)));
      List<Tensor> out = f.apply(in);
      List<Tensor> tan = new ArrayList<>(out.size());
      for (Tensor o : out) tan.add(lvl.tangentOrZeros(o));
      return new Forward.Jvp(out, tan);
    }
  }

  /**
   * Hessian-vector product of {@code f} at {@code x} by forward over reverse: the gradient of f
   * is computed (one backward pass, no {@code createGraph}) with the directions {@code v} carried
   * forward through both passes, and H v is the gradient's tangent. The same result as
   * {@link #hvp(java.util.function.Function, List, List)} (reverse over reverse) without taping
   * the backward pass. {@code Autograd.hvpForward(f, List.of(x), List.of(v)).get(0)} has x's shape.
   *
   * @param f a function of the inputs returning one element
   * @param x the point
   * @param v one direction per input, of its shape, dtype and device
   * @return H v, one tensor per input
   * @throws MetakernelsException when a direction does not match its input
   */
  public static List<Tensor> hvpForward(java.util.function.Function<List<Tensor>, Tensor> f, List<Tensor> x,
      List<Tensor> v) {
    return hvpForward(f, x, v, false);
  }

  /**
   * Forward-over-reverse Hessian-vector product, recorded for further differentiation when
   * {@code createGraph} (in the inputs that require grad and in {@code v}).
   * {@code Autograd.hvpForward(f, List.of(x), List.of(v), true).get(0)} has x's shape.
   *
   * @param f a function of the inputs returning one element
   * @param x the point
   * @param v one direction per input
   * @param createGraph record the product for reverse mode
   * @return H v, one tensor per input
   * @throws MetakernelsException when a direction does not match its input
   */
  public static List<Tensor> hvpForward(java.util.function.Function<List<Tensor>, Tensor> f, List<Tensor> x,
      List<Tensor> v, boolean createGraph) {
    checkDirections("hvpForward", x, v);
    try (GradMode.Guard on = GradMode.set(true); Forward.Level lvl = Forward.enter(createGraph)) {
      List<Tensor> at = new ArrayList<>(x.size());
      for (int i = 0; i < x.size(); i++) {
        Tensor p = x.get(i);
        Tensor d = lvl.dual(createGraph && p.requiresGrad() ? p : Forward.detachKeepingTangents(p), v.get(i));
        if (!d.requiresGrad()) d.requiresGrad(true);
        at.add(d);
      }
      Tensor y = f.apply(at);
      List<Tensor> g = grad(y, at, createGraph);
      List<Tensor> r = new ArrayList<>(g.size());
      for (Tensor t : g) r.add(lvl.tangentOrZeros(t));
      return r;
    }
  }
}
