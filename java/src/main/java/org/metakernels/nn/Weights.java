package org.metakernels.nn;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.metakernels.tensor.Tensor;

/**
 * Substituted ("fast") weights for a functional call: full dotted parameter names to tensors.
 * A module looks its parameters up here first, so an inner loop can run a module with
 * weights that are functions of the meta-parameters.
 *
 * <pre>{@code
 * Map<String, Tensor> fast = new LinkedHashMap<>();
 * List<Tensor> g = Autograd.grad(loss, net.parameters(), true);
 * int i = 0;
 * for (var e : net.namedParameters().entrySet()) fast.put(e.getKey(), e.getValue().sub(g.get(i++).mul(0.01)));
 * Tensor y = net.forward(x, Weights.of(fast));   // differentiable in the meta-parameters
 * }</pre>
 */
public final class Weights {
  private static final Weights NONE = new Weights(Collections.emptyMap(), "");

  private final Map<String, Tensor> map;
  private final String prefix;

  private Weights(Map<String, Tensor> map, String prefix) {
    this.map = map;
    this.prefix = prefix;
  }

  /**
   * No substitutions: modules use their own parameters.
   *
   * @return the empty weights
   */
  public static Weights none() {
    return NONE;
  }

  /**
   * Substitutions by full dotted name ({@code "layer0.weight"}); names not listed fall back to the
   * module's own parameters.
   *
   * @param map names to tensors (copied; the tensors are not)
   * @return the weights
   */
  public static Weights of(Map<String, Tensor> map) {
    return new Weights(new LinkedHashMap<>(map), "");
  }

  /** The view for a child module named {@code name}. */
  Weights child(String name) {
    if (map.isEmpty()) return this;
    return new Weights(map, prefix + name + ".");
  }

  Tensor get(String localName) {
    return map.get(prefix + localName);
  }

  /**
   * True when nothing is substituted.
   *
   * @return whether the map is empty
   */
  public boolean isEmpty() {
    return map.isEmpty();
  }
}
