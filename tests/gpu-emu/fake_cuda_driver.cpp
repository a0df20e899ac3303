// A stand-in for libcuda.so.1, the CUDA driver, for the emulated device (tests/gpu-emu/README.md).
// The presets' JNI library libjnicudart.so lists it as NEEDED and binds its cu* symbols lazily; the
// Java side calls none of them (the driver API the kernels need, cuTensorMapEncodeTiled, reaches the
// emulated library through the emulator's cudaGetDriverEntryPointByVersion, tests/cuda-emu/sm90_emu.h).
// A call into a driver function would stop the JVM with "symbol lookup error: ... cuXxx": add it
// here then, rather than a silent default.
extern "C" int cuDriverGetVersion(int* v) {
  if (v) *v = 13000;
  return 0;  // CUDA_SUCCESS
}
