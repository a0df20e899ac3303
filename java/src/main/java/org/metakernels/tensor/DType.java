package org.metakernels.tensor;

/**
 * Element types. F32 and F64 compute on the CPU; F32 (and F64 for dense ops) on CUDA, with BF16
 * and F16 as storage types there (cast to F32 to compute). I64 holds indices (targets, argmax,
 * gather/index-select positions) and takes part in no arithmetic.
 */
public enum DType {
  F32(0, 4),
  F64(1, 8),
  BF16(2, 2),
  F16(3, 2),
  I64(4, 8);

  /** The code of this type in the C ABI ({@code enum mk_dtype}). */
  public final int code;
  /** Bytes per element. */
  public final int size;

  DType(int code, int size) {
    this.code = code;
    this.size = size;
  }

  /** True for the types arithmetic ops accept (F32, F64). */
  public boolean isFloating() {
    return this == F32 || this == F64;
  }
}
