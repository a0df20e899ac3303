package org.metakernels.autograd;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.metakernels.tensor.Storage;
import org.metakernels.tensor.Tensor;

/**
 * One recorded op on the tape: its inputs (null where an input needs no gradient), the number
 * of outputs, and its backward rule. A rule maps the gradients of the outputs (null for an
 * output no gradient reached) to the gradients of the inputs (null for "none"), and is written
 * with differentiable tensor ops, so running it while recording builds the graph of the
 * gradient itself (grad-of-grad).
 */
public final class Node {
  /** The backward rule of an op. */
  @FunctionalInterface
  public interface Backward {
    /**
     * The gradients of the inputs given those of the outputs.
     *
     * @param gradOutputs one per output, null where no gradient reached it
     * @return one per input of the node, null for "none", each of its input's shape
     */
    Tensor[] apply(Tensor[] gradOutputs);
  }

  private final String name;
  private final Tensor[] inputs;
  private final int numOutputs;
  private final Backward backward;
  private final Storage[] saved;
  private final int[] savedVersions;
  /**
   * What each saved storage was, for messages: input i (i), output i (OUTPUT + i) or a captured
   * tensor (CAPTURED, with its field's name in savedField where that name means something).
   */
  private final int[] savedRole;
  private final String[] savedField;
  private static final int OUTPUT = 1 << 20, CAPTURED = -1;
  private final Tensor[] savedTensor;
  private final long[][] outputShapes;
  // Creation order, process-wide. A node is made after every tensor it consumes and so after
  // every node below it in the tape: nodes below a node all have smaller numbers. Autograd.grad
  // uses this to skip the part of a tape that lies below every tensor it was asked for.
  private static final AtomicLong SEQUENCE = new AtomicLong();
  private final long sequence = SEQUENCE.getAndIncrement();

  Node(String name, Tensor[] inputs, Tensor[] outputs, Backward backward) {
    this.name = name;
    this.inputs = new Tensor[inputs.length];
    for (int i = 0; i < inputs.length; i++)
      this.inputs[i] = inputs[i] != null && inputs[i].requiresGrad() ? inputs[i] : null;
    this.numOutputs = outputs.length;
    this.backward = backward;
    this.outputShapes = new long[outputs.length][];
    for (int i = 0; i < outputs.length; i++) outputShapes[i] = outputs[i].shape();
    // every tensor the backward can read: the declared inputs and outputs, and whatever else its
    // rule captured (an lse, key lengths, index tensors), each storage once
    List<Captures.Found> captured = Captures.of(backward);
    int n = inputs.length + outputs.length + captured.size();
    Storage[] st = new Storage[n];
    int[] role = new int[n];
    String[] field = new String[n];
    Tensor[] ts = new Tensor[n];
    int k = 0;
    for (int i = 0; i < inputs.length; i++) k = save(st, role, ts, k, inputs[i], i);
    for (int i = 0; i < outputs.length; i++) k = save(st, role, ts, k, outputs[i], OUTPUT + i);
    for (Captures.Found f : captured) {
      int k0 = k;
      k = save(st, role, ts, k, f.tensor(), CAPTURED);
      if (k > k0) field[k0] = f.field();
    }
    saved = Arrays.copyOf(st, k);
    savedRole = Arrays.copyOf(role, k);
    savedField = Arrays.copyOf(field, k);
    savedTensor = Arrays.copyOf(ts, k);
    savedVersions = new int[k];
    for (int i = 0; i < k; i++) savedVersions[i] = saved[i].version();
  }

  private static int save(Storage[] st, int[] role, Tensor[] ts, int k, Tensor t, int what) {
    if (t == null) return k;
    Storage s = t.storage();
    for (int i = 0; i < k; i++) if (st[i] == s) return k;
    st[k] = s;
    role[k] = what;
    ts[k] = t;
    return k + 1;
  }

  /**
   * The op's name, as given to {@link Autograd#record(String, Tensor, Tensor[], Backward)}.
   *
   * @return the name
   */
  public String name() {
    return name;
  }

  /**
   * Inputs that need gradients (others are null), in the op's order; the array itself, not a copy.
   *
   * @return the inputs
   */
  public Tensor[] inputs() {
    return inputs;
  }

  /**
   * How many tensors the op returned.
   *
   * @return the output count
   */
  public int numOutputs() {
    return numOutputs;
  }

  long[] outputShape(int i) {
    return outputShapes[i];
  }

  Tensor[] runBackward(Tensor[] gradOutputs) {
    for (int i = 0; i < saved.length; i++) {
      if (saved[i].isClosed())
        throw new IllegalStateException("backward of '" + name + "': " + role(i) + " ("
            + savedTensor[i].describe() + "), which it reads, was freed (its scope closed)");
      if (saved[i].version() != savedVersions[i])
        throw new IllegalStateException("backward of '" + name + "': " + role(i) + " ("
            + savedTensor[i].describe() + "), which it reads, was modified in place after the op ran (version "
            + savedVersions[i] + " -> " + saved[i].version() + "); edit a copy instead, or run the backward first");
    }
    Tensor[] g = backward.apply(gradOutputs);
    if (g == null || g.length != inputs.length)
      throw new IllegalStateException("backward of '" + name + "' returned " + (g == null ? "null" : g.length)
          + " gradients for " + inputs.length + " inputs");
    for (int i = 0; i < g.length; i++) {
      if (g[i] == null || inputs[i] == null) continue;
      if (!Arrays.equals(g[i].shape(), inputs[i].shape()))
        throw new IllegalStateException("backward of '" + name + "' returned a gradient of shape "
            + Arrays.toString(g[i].shape()) + " for input " + i + " of shape " + Arrays.toString(inputs[i].shape()));
    }
    return g;
  }

  private String role(int i) {
    int r = savedRole[i];
    if (r == CAPTURED) return savedField[i] == null ? "a tensor its rule captured" : "its saved '" + savedField[i] + "'";
    return r >= OUTPUT ? "output " + (r - OUTPUT) : "input " + r;
  }

  @Override
  public String toString() {
    return "Node(" + name + ")";
  }

  /** The node's creation number: larger than that of every node below it in its tape. */
  long sequence() {
    return sequence;
  }
}
