package org.metakernels.tensor;

import org.metakernels.runtime.Backend;
import org.metakernels.runtime.Codes;

/**
 * Where a tensor's memory lives. {@link Tensor#to(Device)} moves a tensor (differentiably);
 * ops need all operands on one device.
 */
public enum Device {
  /** Host memory; the C++ kernels (AVX2 or AVX-512, OpenMP) and OpenBLAS. */
  CPU(Codes.DEVICE_CPU),
  /** Memory of CUDA device 0; the CUDA kernels and cuBLAS. */
  CUDA(Codes.DEVICE_CUDA);

  /** The code of this device in the C ABI ({@code enum mk_device}). */
  public final int code;

  Device(int code) {
    this.code = code;
  }

  /**
   * The device chosen at start-up: CUDA when its library loads and a GPU exists, else the CPU;
   * {@code -Dmetakernels.device=cpu|cuda} overrides.
   *
   * @return the default device
   */
  public static Device defaultDevice() {
    return Backend.get().defaultDevice();
  }
}
