package org.metakernels.runtime;

/**
 * Status handling for calls into {@link MkNative}: a non-zero status becomes a
 * {@link MetakernelsException} carrying the native message and the Java-side context.
 */
public final class Native {
  public static final int OK = 0;
  public static final int ERR_INVALID_ARGUMENT = 1;
  public static final int ERR_UNSUPPORTED = 2;
  public static final int ERR_DEVICE = 3;
  public static final int ERR_NO_DEVICE = 4;
  public static final int ERR_INTERNAL = 5;

  private Native() {}

  /** Loads the native library (idempotent); the first call also attaches BLAS and CUDA. */
  public static void ensureLoaded() {
    Backend.get();
  }

  /**
   * Throws when {@code status} is not OK. {@code context} is what the Java side knows (the op
   * and the shapes), e.g. {@code "matmul [2, 3] x [4, 5]"}.
   */
  public static void check(int status, String context) {
    if (status == OK) return;
    String msg = MkNative.mk_last_error().getString();
    throw new MetakernelsException(context + ": " + msg, status);
  }

  public static String lastError() {
    return MkNative.mk_last_error().getString();
  }
}
