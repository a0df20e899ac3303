// A stand-in for libcublasLt.so.13: libjnicublas.so (the presets' cuBLAS JNI library) lists it as
// NEEDED with the version node libcublasLt.so.13; nothing in metakernels calls cuBLASLt, so the
// library only has to exist with that node (tests/gpu-emu/cublaslt.map).
extern "C" int cublasLtGetVersion(void) { return 130000; }
