package org.metakernels.autograd;

/**
 * Per-thread switch that decides whether ops are recorded on the tape (on by default).
 * {@link Autograd#noGrad()} and {@link Autograd#enableGrad()} are the usual ways to flip it:
 *
 * <pre>{@code
 * try (GradMode.Guard off = GradMode.set(false)) {
 *   Tensor y = x.mul(2.0);      // not recorded: y.requiresGrad() is false
 * }
 * }</pre>
 */
public final class GradMode {
  private static final ThreadLocal<boolean[]> ENABLED = ThreadLocal.withInitial(() -> new boolean[] {true});

  private GradMode() {}

  /**
   * Whether ops on this thread are recorded now.
   *
   * @return the current mode
   */
  public static boolean isEnabled() {
    return ENABLED.get()[0];
  }

  /**
   * Sets the mode and returns a guard that restores the previous one on close.
   *
   * @param enabled true to record
   * @return the guard
   */
  public static Guard set(boolean enabled) {
    boolean[] cell = ENABLED.get();
    boolean prev = cell[0];
    cell[0] = enabled;
    return new Guard(cell, prev);
  }

  /** Restores the previous grad mode; use with try-with-resources. */
  public static final class Guard implements AutoCloseable {
    private final boolean[] cell;
    private final boolean prev;

    private Guard(boolean[] cell, boolean prev) {
      this.cell = cell;
      this.prev = prev;
    }

    /** Restores the mode that was in force when the guard was made. */
    @Override
    public void close() {
      cell[0] = prev;
    }
  }
}
