package org.metakernels.runtime;

/**
 * A rejected call: wrong shapes, dtypes, devices or indices, or a failure reported by a native
 * kernel. The message names the op and the shapes involved. Inputs are unchanged when this is
 * thrown by validation (which runs before any kernel).
 */
public class MetakernelsException extends IllegalArgumentException {
  /** Serialization version. */
  private static final long serialVersionUID = 1L;
  /** The native status code, or -1 for a Java-side rejection. */
  private final int status;

  /**
   * A rejection found on the Java side (status -1).
   *
   * @param message what was wrong, naming the op and the shapes
   */
  public MetakernelsException(String message) {
    this(message, -1);
  }

  /**
   * A failure with a native status code.
   *
   * @param message what was wrong, naming the op and the shapes
   * @param status the {@code MK_ERR_*} code ({@link Codes}), or -1
   */
  public MetakernelsException(String message, int status) {
    super(message);
    this.status = status;
  }

  /**
   * The native status code ({@code MK_ERR_*}, e.g. {@link Codes#ERR_INVALID_ARGUMENT}), or -1
   * when the Java side rejected the call.
   *
   * @return the status
   */
  public int status() {
    return status;
  }
}
