package org.metakernels.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The metakernels command line: {@code demo} (the in-context-learning reproduction, the main
 * job), {@code info} (backend and kernels), {@code recipe NAME}. Each takes {@code --help}.
 */
@Command(name = "metakernels", mixinStandardHelpOptions = true, version = "metakernels 0.1.0",
    description = "Fused kernels for meta-learning on the JVM.",
    subcommands = {DemoCommand.class, InfoCommand.class, RecipeCommand.class})
public final class Main implements Runnable {
  public static void main(String[] args) {
    System.setProperty("java.awt.headless", "true");
    int code = new CommandLine(new Main()).execute(args);
    System.exit(code);
  }

  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }
}
