package org.metakernels.runtime;

/**
 * A rejected call: wrong shapes, dtypes, devices or indices, or a failure reported by a native
 * kernel. The message names the op and the shapes involved. Inputs are unchanged when this is
 * thrown by validation (which runs before any kernel).
 */
public class MetakernelsException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  private final int status;

  public MetakernelsException(String message) {
    this(message, -1);
  }

  public MetakernelsException(String message, int status) {
    super(message);
    this.status = status;
  }

  /** The native status code ({@code MK_ERR_*}), or -1 when the Java side rejected the call. */
  public int status() {
    return status;
  }
}
