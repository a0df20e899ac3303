/**
 * Tensors and their memory: {@link org.metakernels.tensor.Tensor} (a strided view of a
 * {@link org.metakernels.tensor.Storage}, with its ops as methods),
 * {@link org.metakernels.tensor.DType}, {@link org.metakernels.tensor.Device}, and
 * {@link org.metakernels.tensor.Scope}, which owns every tensor made while it is open and frees
 * them all when it closes.
 *
 * <pre>{@code
 * try (Scope scope = Scope.open()) {
 *   Tensor x = Tensor.randn(new long[] {32, 10}, DType.F64, Device.CPU, 7L);
 *   Tensor y = scope.keep(x.matmul(x.mT()).sum());      // [], outlives the scope
 * }
 * }</pre>
 */
package org.metakernels.tensor;
