package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.*;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.CudaRuntime;

/**
 * The emulated device of tests/gpu-emu (run.sh sets {@code -Dmetakernels.emulatedDevice=true}) is
 * the one that runs, and says so everywhere a person reads the device: a run of the gpu-tagged
 * tests on it must never pass for a GPU run, and on a GPU the emulator must never be suspected.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class EmulatedDeviceTest {
  static boolean emulatedRun() {
    return Boolean.getBoolean("metakernels.emulatedDevice");
  }

  @Test
  void theEmulatorIsLoadedAndNamesItself() {
    assumeTrue(emulatedRun(), "only under tests/gpu-emu/run.sh");
    CudaRuntime rt = CudaRuntime.get();
    assertTrue(rt.isEmulated(), "the emulated libmetakernels_cuda.so and the fake runtime are the ones loaded: " + rt.describe());
    assertTrue(rt.describe().startsWith("EMULATED DEVICE, NOT A GPU"), rt.describe());
    assertTrue(rt.describe().contains("metakernels host emulator (sm_90)"), "the device name from the fake cudart: " + rt.describe());
    assertTrue(Backend.get().cudaReason().contains("host emulator"), Backend.get().cudaReason());
  }

  @Test
  void aGpuIsNotTakenForTheEmulator() {
    assumeFalse(emulatedRun(), "on a GPU only");
    assertFalse(CudaRuntime.get().isEmulated(), CudaRuntime.get().describe());
  }
}
