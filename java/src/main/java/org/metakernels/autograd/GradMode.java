package org.metakernels.autograd;

/** Per-thread switch that decides whether ops are recorded on the tape. */
public final class GradMode {
  private static final ThreadLocal<boolean[]> ENABLED = ThreadLocal.withInitial(() -> new boolean[] {true});

  private GradMode() {}

  public static boolean isEnabled() {
    return ENABLED.get()[0];
  }

  /** Sets the mode and returns a guard that restores the previous one on close. */
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

    @Override
    public void close() {
      cell[0] = prev;
    }
  }
}
