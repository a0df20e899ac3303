package org.metakernels.runtime;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
import org.metakernels.tensor.Device;

/** mk_runtime_noop (GpuLaunchBench's bare launch): nothing on the CPU; a bad or absent device is an error naming it. */
class RuntimeNoopTest {
  @Test
  void noopOnTheCpuIsOkAndBadDevicesAreNamed() {
    Native.ensureLoaded();
    assertEquals(Codes.OK, MkNative.mk_runtime_noop(Device.CPU.code, 0L));
    assertNotEquals(Codes.OK, MkNative.mk_runtime_noop(7, 0L));
    String msg = MkNative.mk_last_error().getString();
    assertTrue(msg.contains("mk_runtime_noop") && msg.contains("unknown device 7"), msg);
    if (!Backend.get().cudaAvailable()) {
      assertNotEquals(Codes.OK, MkNative.mk_runtime_noop(Device.CUDA.code, 0L));
      assertTrue(
          MkNative.mk_last_error().getString().contains("mk_runtime_noop"), MkNative.mk_last_error().getString());
    } else {
      assertEquals(Codes.OK, MkNative.mk_runtime_noop(Device.CUDA.code, 0L));
      assertEquals(Codes.OK, MkNative.mk_runtime_cuda_synchronize(0L));
    }
  }
}
