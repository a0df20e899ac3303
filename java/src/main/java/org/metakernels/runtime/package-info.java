/**
 * The runtime layer: the backend choice ({@link org.metakernels.runtime.Backend}: CUDA if its
 * library loads and a device exists, else the CPU), errors
 * ({@link org.metakernels.runtime.MetakernelsException}, naming the op and the shapes), the
 * constants of the C ABI ({@link org.metakernels.runtime.Codes}, generated from
 * {@code native/include/metakernels.h}), and the JNI and CUDA plumbing the ops use
 * ({@code MkNative}, the JavaCPP mirror of the C header, left out of these pages;
 * {@link org.metakernels.runtime.MkCudaNative}, {@link org.metakernels.runtime.Native},
 * {@link org.metakernels.runtime.CudaRuntime}, {@link org.metakernels.runtime.Transfer},
 * {@link org.metakernels.runtime.RawPointer}).
 *
 * <pre>{@code
 * System.out.println(Backend.get().describeLine());   // device, CPU ISA, matmul, CUDA, ABI
 * }</pre>
 */
package org.metakernels.runtime;
