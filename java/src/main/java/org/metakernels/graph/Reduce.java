package org.metakernels.graph;

import org.metakernels.runtime.Codes;

/**
 * How {@link MessagePassing#aggregate(Graph, org.metakernels.tensor.Tensor, Reduce)} combines the messages a node
 * receives: {@code MessagePassing.aggregate(g, x, Reduce.MAX)}. A node without in-edges gets 0
 * for every reduction.
 */
public enum Reduce {
  /** Σ_k w_k x[src_k]. */
  SUM(Codes.GRAPH_REDUCE_SUM),
  /** The sum divided by the in-degree (the number of in-edges, not the sum of their weights). */
  MEAN(Codes.GRAPH_REDUCE_MEAN),
  /** Elementwise max of w_k x[src_k]; the gradient goes to the first maximal edge of each element. */
  MAX(Codes.GRAPH_REDUCE_MAX),
  /** Elementwise min of w_k x[src_k]; the gradient goes to the first minimal edge of each element. */
  MIN(Codes.GRAPH_REDUCE_MIN);

  final int code;

  Reduce(int code) {
    this.code = code;
  }
}
