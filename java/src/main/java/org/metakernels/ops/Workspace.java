package org.metakernels.ops;

import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * The Java half of the workspace protocol of metakernels.h: a fused entry point's
 * {@code mk_<family>_<op>_workspace(...)} gives the bytes a call needs, and the caller passes a
 * buffer of at least that size. The buffer is an uninitialised tensor (64-byte aligned, from the
 * host or device caching allocator), so it is freed with the scope that made it; one per call,
 * never shared by two calls at once.
 */
final class Workspace {
  private Workspace() {}

  /** An uninitialised buffer of at least {@code bytes} bytes (at least 8) on {@code device}. */
  static Tensor allocate(Device device, long bytes) {
    return Tensor.empty(new long[] {Math.max(1, (bytes + 7) / 8)}, DType.F64, device);
  }
}
