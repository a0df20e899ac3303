/**
 * Modules with named parameters ({@link org.metakernels.nn.Module}): {@link org.metakernels.nn.Linear},
 * {@link org.metakernels.nn.MLP}, {@link org.metakernels.nn.LayerNorm},
 * {@link org.metakernels.nn.MultiHeadAttention} and {@link org.metakernels.nn.LinearSelfAttention}.
 * Each can run with substituted ("fast") {@link org.metakernels.nn.Weights}, as inner loops need.
 *
 * <pre>{@code
 * MLP net = new MLP(new long[] {1, 40, 40, 1}, Activation.RELU, DType.F64, Device.CPU, 0L);
 * Tensor y = net.forward(x);                                  // x [B, 1]: [B, 1]
 * }</pre>
 */
package org.metakernels.nn;
