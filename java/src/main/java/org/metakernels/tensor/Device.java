package org.metakernels.tensor;

import org.metakernels.runtime.Backend;
import org.metakernels.runtime.Codes;

/** Where a tensor's memory lives. */
public enum Device {
  CPU(Codes.DEVICE_CPU),
  CUDA(Codes.DEVICE_CUDA);

  /** The code of this device in the C ABI ({@code enum mk_device}). */
  public final int code;

  Device(int code) {
    this.code = code;
  }

  /**
   * The device chosen at start-up: CUDA when its library loads and a GPU exists, else the CPU;
   * {@code -Dmetakernels.device=cpu|cuda} overrides.
   */
  public static Device defaultDevice() {
    return Backend.get().defaultDevice();
  }
}
