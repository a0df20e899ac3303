package org.metakernels.nn;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.metakernels.tensor.Tensor;

/**
 * Substituted ("fast") weights for a functional call: full dotted parameter names to tensors.
 * A module looks its parameters up here first, so an inner loop can run a module with
 * weights that are functions of the meta-parameters.
 */
public final class Weights {
  private static final Weights NONE = new Weights(Collections.emptyMap(), "");

  private final Map<String, Tensor> map;
  private final String prefix;

  private Weights(Map<String, Tensor> map, String prefix) {
    this.map = map;
    this.prefix = prefix;
  }

  public static Weights none() {
    return NONE;
  }

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

  public boolean isEmpty() {
    return map.isEmpty();
  }
}
