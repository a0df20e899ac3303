package org.metakernels.tensor;

import org.metakernels.runtime.Codes;

/**
 * Element types. F32 and F64 are the arithmetic types: every op computes in them, on the CPU and
 * on CUDA. BF16 and F16 are storage types on both devices: tensors of them can be created
 * ({@link Tensor#zeros}, {@link Tensor#randn}, which samples in F32 and rounds), copied, viewed,
 * moved between devices, read back ({@link Tensor#toFloatArray}) and cast ({@link Tensor#to(DType)},
 * differentiable between all four floating-point types), and they can require gradients; the
 * ops that compute on them directly are softmax attention's forward and backward
 * ({@link org.metakernels.ops.Attention}, F32 arithmetic inside, tensor cores on CUDA), the
 * linear-attention product and momentum term ({@link org.metakernels.ops.LinearAttention}, the
 * same; every derivative order) and the gradient bookkeeping of autograd (sums of 16-bit gradients go through F32). Every other op
 * refuses them: cast to F32 first. I64 holds indices (targets, argmax, gather/index-select
 * positions) and takes part in no arithmetic.
 *
 * <pre>{@code
 * Tensor q = Tensor.randn(new long[] {2, 8, 1024, 64}, DType.BF16, Device.CUDA, 1L);   // BF16
 * Tensor o = Attention.softmax(q, q, q, Attention.Options.causal());               // BF16 [2, 8, 1024, 64]
 * float[] host = o.toFloatArray();
 * }</pre>
 */
public enum DType {
  /** 32-bit IEEE float: arithmetic on both devices. */
  F32(Codes.F32, 4),
  /** 64-bit IEEE float: arithmetic on both devices (GradCheck's type). */
  F64(Codes.F64, 8),
  /** bfloat16 (8-bit exponent, 7-bit mantissa): storage type; softmax attention computes on it. */
  BF16(Codes.BF16, 2),
  /** IEEE half (5-bit exponent, 10-bit mantissa): storage type; softmax attention computes on it. */
  F16(Codes.F16, 2),
  /** 64-bit signed integer: indices, class targets, key lengths. */
  I64(Codes.I64, 8);

  /** The code of this type in the C ABI ({@code enum mk_dtype}). */
  public final int code;
  /** Bytes per element. */
  public final int size;

  DType(int code, int size) {
    this.code = code;
    this.size = size;
  }

  /**
   * True for the types arithmetic ops accept (F32, F64).
   *
   * @return whether this is F32 or F64
   */
  public boolean isFloating() {
    return this == F32 || this == F64;
  }

  /**
   * True for the 16-bit storage types BF16 and F16.
   *
   * @return whether this is BF16 or F16
   */
  public boolean isHalf() {
    return this == BF16 || this == F16;
  }

  /**
   * True for every floating-point type (F32, F64, BF16, F16): those that can carry gradients.
   *
   * @return whether this is not I64
   */
  public boolean isFloatingPoint() {
    return isFloating() || isHalf();
  }
}
