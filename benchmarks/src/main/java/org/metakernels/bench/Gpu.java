package org.metakernels.bench;

import org.metakernels.runtime.Backend;
import org.metakernels.runtime.CudaRuntime;

/** GPU benchmark support: fail fast without a device, and wait for queued kernels. */
final class Gpu {
  private Gpu() {}

  /** Throws at once where there is no CUDA device, so JMH reports the benchmark as failed instead of timing the CPU. */
  static void require(String what) {
    Backend b = Backend.get();
    if (!b.cudaAvailable())
      throw new IllegalStateException(what + ": no CUDA device (" + b.cudaReason() + "); GPU benchmarks do not fall back to the CPU");
    // tests/gpu-emu: an emulated device computes correctly and times nothing worth a number
    if (CudaRuntime.get().isEmulated())
      throw new IllegalStateException(what + ": the CUDA device is the host emulator (" + b.cudaReason() + "); GPU benchmarks need a GPU");
  }

  /** Kernels are asynchronous: a timed call ends only when the device is done. */
  static void sync() {
    CudaRuntime.get().synchronize();
  }
}
