/**
 * The op families, each with its derivative rule beside it: elementwise
 * ({@link org.metakernels.ops.Dense}), views and copies ({@link org.metakernels.ops.Views}),
 * reductions and softmax ({@link org.metakernels.ops.Reductions}), matmul
 * ({@link org.metakernels.ops.Linalg}), indexing ({@link org.metakernels.ops.Indexing}), fused
 * softmax attention ({@link org.metakernels.ops.Attention}), linear attention
 * ({@link org.metakernels.ops.LinearAttention}), and layers and losses composed from them
 * ({@link org.metakernels.ops.Functional}). Most are also {@link org.metakernels.tensor.Tensor}
 * methods.
 *
 * <pre>{@code
 * Tensor out = Attention.softmax(q, k, v, Attention.Options.causal());   // q, k, v [B, H, N, D]: [B, H, N, D]
 * }</pre>
 */
package org.metakernels.ops;
