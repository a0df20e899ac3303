/**
 * Meta-learning building blocks: fused differentiable optimizer steps for unrolled inner loops
 * ({@link org.metakernels.meta.InnerStep}: SGD, SGD with momentum, Adam and AdamW, one native
 * kernel per parameter tensor and one for its vector-Jacobian product, differentiable in the
 * parameters, the gradients, the optimizer state and tensor hyperparameters such as a learned
 * learning rate).
 *
 * <pre>{@code
 * Tensor lr = Tensor.scalar(0.1, DType.F64, Device.CPU).requiresGrad(true);
 * Tensor g = Autograd.grad(innerLoss, List.of(w), true).get(0);
 * Tensor w1 = InnerStep.sgd(w, g, lr);                                       // w's shape
 * Tensor metaGrad = Autograd.grad(outerLoss(w1), List.of(lr), false).get(0);  // [], d outer / d lr
 * }</pre>
 */
package org.metakernels.meta;
