package org.metakernels.cli;

import java.io.PrintWriter;
import java.util.Locale;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.metakernels.recipes.InContextDemo;

/**
 * The demo's training progress, counted in steps, one phase after the other: a progress bar on
 * stderr when it is a terminal, else a plain line each time a phase passes a tenth of its steps
 * (a log file gets about ten lines per phase, no carriage returns).
 */
final class StepProgress implements InContextDemo.Progress, AutoCloseable {
  private final PrintWriter err;
  private final boolean terminal;
  private String phase;
  private ProgressBar bar;
  private int tenths;
  private long start;

  /**
   * A display for one run.
   *
   * @param err where the plain lines go
   * @param terminal true to draw bars on {@link System#err} instead
   */
  StepProgress(PrintWriter err, boolean terminal) {
    this.err = err;
    this.terminal = terminal;
  }

  @Override
  public void step(String name, int done, int total) {
    if (!name.equals(phase)) {
      close();
      phase = name;
      tenths = 0;
      start = System.nanoTime();
      if (terminal)
        bar = new ProgressBarBuilder().setTaskName(String.format("%-16s", name)).setInitialMax(total)
            .setUnit(" steps", 1).setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).continuousUpdate()
            .setConsumer(new ConsoleProgressBarConsumer(System.err)).build();
    }
    if (bar != null) {
      bar.stepTo(done);
    } else if (10L * done / total > tenths) {
      tenths = (int) (10L * done / total);
      err.println(String.format(Locale.ROOT, "%-16s %d/%d steps (%d%%, %.1f s)", name, done, total,
          100L * done / total, (System.nanoTime() - start) / 1e9));
    }
  }

  @Override
  public void close() {
    if (bar != null) bar.close();
    bar = null;
  }
}
