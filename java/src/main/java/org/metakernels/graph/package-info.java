/**
 * Graph message passing: {@link org.metakernels.graph.Graph} (the CSR by destination and its
 * transpose, built once from a COO edge index by a deterministic sort, with degrees, self-loops
 * and the GCN normalisation), {@link org.metakernels.graph.MessagePassing} (the aggregation
 * out[i] = ⊕_{j → i} w_ji x[j] for ⊕ ∈ {@link org.metakernels.graph.Reduce} sum, mean, max, min,
 * and the per-edge product sddmm; deterministic kernels, differentiable in the features and the
 * edge weights to any order) and {@link org.metakernels.graph.Graphs} (seeded R-MAT graphs).
 *
 * <pre>{@code
 * try (Graph g = Graph.fromEdges(edgeIndex, n); Graph gn = g.gcnNormalized(DType.F32)) {
 *   Tensor h = MessagePassing.aggregate(gn, x, gn.edgeWeight(), Reduce.SUM);   // x [n, F]: [n, F]
 * }
 * }</pre>
 */
package org.metakernels.graph;
