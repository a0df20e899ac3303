package org.metakernels.runtime;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of {@code native/include/metakernels_cuda.h} (libmetakernels_cuda). Loading it
 * needs the CUDA runtime ({@code libcudart.so.13}); {@link Backend} only loads it after the
 * bytedeco CUDA presets found a driver and a device. The kernel table it returns is handed to
 * {@link MkNative#mk_runtime_attach_cuda}.
 */
@Platform(include = "metakernels_cuda.h", link = "metakernels_cuda")
public final class MkCudaNative {
  static {
    Loader.load();
  }

  private MkCudaNative() {}

  /**
   * The CUDA library's kernel table, for {@link MkNative#mk_runtime_attach_cuda}.
   *
   * @return its address, or 0 when the library was built as a stub (no nvcc)
   */
  public static native @Cast("intptr_t") long mk_cuda_kernel_table();

  /**
   * The CUDA runtime version and GPU architectures the library was built for, or that it is a stub.
   *
   * @return a C string owned by the library
   */
  public static native @Cast("const char*") BytePointer mk_cuda_build_info();
}
