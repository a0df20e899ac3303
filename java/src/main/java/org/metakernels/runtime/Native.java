package org.metakernels.runtime;

/**
 * Status handling for calls into {@link MkNative}, part of the runtime layer: a non-zero status
 * becomes a {@link MetakernelsException} carrying the native message and the Java-side context.
 * The status codes are {@link Codes#OK}, {@link Codes#ERR_INVALID_ARGUMENT}, ... (generated from
 * the C header).
 */
public final class Native {
  private Native() {}

  /** Loads the native library (idempotent); the first call also attaches BLAS and CUDA. */
  public static void ensureLoaded() {
    Backend.get();
  }

  /**
   * Throws when {@code status} is not OK: {@code Native.check(MkNative.mk_...(...), "matmul [2, 3] x [4, 5]")}.
   *
   * @param status the native return value
   * @param context what the Java side knows (the op and the shapes), the message's prefix
   * @throws MetakernelsException with the status and {@code context + ": " + } the native message
   */
  public static void check(int status, String context) {
    if (status == Codes.OK) return;
    String msg = MkNative.mk_last_error().getString();
    throw new MetakernelsException(context + ": " + msg, status);
  }

  /**
   * As {@link #check(int, String)}, first closing {@code results} (null entries skipped) when the
   * call failed: outputs an op allocated before a native check refused its input (an index out of
   * range), which no one else could free when the op runs outside any scope.
   *
   * @param status the returned code
   * @param context what was being done, for the message
   * @param results the op's own allocations, freed on failure
   */
  public static void check(int status, String context, org.metakernels.tensor.Tensor... results) {
    if (status == Codes.OK) return;
    String msg = MkNative.mk_last_error().getString();
    for (org.metakernels.tensor.Tensor t : results)
      if (t != null) t.close();
    throw new MetakernelsException(context + ": " + msg, status);
  }

  /**
   * The message of the last failed native call on this thread.
   *
   * @return the message (empty when none)
   */
  public static String lastError() {
    return MkNative.mk_last_error().getString();
  }

  /**
   * As {@link #check(int, String)} with the message built only on failure, for calls made per op:
   * {@code Native.check(status, () -> "matmul " + a.describe())}. Building the shapes' text on every
   * call cost more than some small kernels (2026-12-04).
   *
   * @param status the native return value
   * @param context makes the message's prefix, called only when the status is not OK
   * @throws MetakernelsException with the status and the context's text and the native message
   */
  public static void check(int status, java.util.function.Supplier<String> context) {
    if (status == Codes.OK) return;
    check(status, context.get());
  }
}
