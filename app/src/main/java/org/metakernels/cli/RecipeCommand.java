package org.metakernels.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** Runs a named recipe; {@code recipe --list} shows them. */
@Command(name = "recipe", mixinStandardHelpOptions = true, description = "Run a meta-learning recipe by name.")
final class RecipeCommand implements Callable<Integer> {
  @Parameters(arity = "0..1", paramLabel = "NAME", description = "icl (in-context learning = the demo)")
  String name;

  @CommandLine.Option(names = "--list", description = "List the recipes.")
  boolean list;

  @CommandLine.Unmatched
  String[] rest = new String[0];

  @Override
  public Integer call() {
    if (list || name == null) {
      System.out.println("recipes:");
      System.out.println("  icl   transformers learn in-context by gradient descent (von Oswald et al. 2022); same as `demo`");
      return 0;
    }
    if (name.equals("icl")) return new CommandLine(new DemoCommand()).execute(rest);
    System.err.println("unknown recipe '" + name + "' (try --list)");
    return 2;
  }
}
