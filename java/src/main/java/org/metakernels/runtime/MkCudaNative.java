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

  public static native @Cast("intptr_t") long mk_cuda_kernel_table();

  public static native @Cast("const char*") BytePointer mk_cuda_build_info();
}
