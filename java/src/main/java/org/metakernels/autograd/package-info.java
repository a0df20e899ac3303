/**
 * Reverse-mode differentiation on a define-by-run tape: {@link org.metakernels.autograd.Autograd}
 * (gradients, vector-Jacobian products, gradients of gradients), the per-thread recording
 * switch {@link org.metakernels.autograd.GradMode}, the tape's {@link org.metakernels.autograd.Node}s,
 * and {@link org.metakernels.autograd.GradCheck}, which checks first and second derivatives
 * against finite differences.
 *
 * <pre>{@code
 * List<Tensor> g = Autograd.grad(loss, List.of(w), true);                    // [10, 1]
 * Tensor hv = Autograd.grad(g.get(0).mul(v).sum(), List.of(w), false).get(0); // H v, [10, 1]
 * }</pre>
 */
package org.metakernels.autograd;
