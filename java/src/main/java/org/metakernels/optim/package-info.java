/**
 * Optimizers that update parameters in place from their accumulated gradients
 * ({@link org.metakernels.optim.SGD} with momentum, {@link org.metakernels.optim.Adam}), and
 * SGD's update as a differentiable function for inner loops
 * ({@link org.metakernels.optim.SGD#differentiableStep(java.util.List, java.util.List, double)}).
 *
 * <pre>{@code
 * SGD opt = new SGD(net.parameters(), 0.1, 0.9, 0.0);
 * loss.backward();
 * opt.step();                                   // every parameter keeps its shape
 * }</pre>
 */
package org.metakernels.optim;
