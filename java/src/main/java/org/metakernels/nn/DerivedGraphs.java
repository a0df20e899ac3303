package org.metakernels.nn;

import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.metakernels.graph.Graph;

/**
 * The graphs a layer derives from its input graphs (GCN-normalised, with self-loops replaced),
 * owned by the layer and cached per input graph object and variant (e.g. the dtype). An entry
 * lives while its input graph is open, so a backward recorded through it may run later and on any
 * thread, and a layer used with several open graphs (training and validation) keeps one entry per
 * graph instead of one per call; it is freed at the first call after its input graph was closed,
 * or with the layer. Thread-safe.
 */
final class DerivedGraphs implements AutoCloseable {
  private final Map<Graph, Map<Object, Graph>> entries = new IdentityHashMap<>();

  /**
   * The graph derived from {@code g} for {@code variant}, made by {@code make} when absent.
   *
   * @param g an open input graph
   * @param variant what else the derived graph depends on (equals/hashCode)
   * @param make builds it (a new graph, which this cache then owns)
   * @return the cached graph (owned by the layer: do not close it)
   */
  synchronized Graph get(Graph g, Object variant, Supplier<Graph> make) {
    entries.entrySet().removeIf(e -> {
      if (!e.getKey().isClosed()) return false;
      for (Graph d : e.getValue().values()) d.close();
      return true;
    });
    Map<Object, Graph> m = entries.computeIfAbsent(g, k -> new HashMap<>());
    Graph d = m.get(variant);
    if (d == null || d.isClosed()) {
      d = make.get();
      m.put(variant, d);
    }
    return d;
  }

  /** Frees every derived graph. */
  @Override
  public synchronized void close() {
    for (Map<Object, Graph> m : entries.values())
      for (Graph d : m.values()) d.close();
    entries.clear();
  }
}
