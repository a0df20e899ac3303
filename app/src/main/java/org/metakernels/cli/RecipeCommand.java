package org.metakernels.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * Runs a named recipe; {@code recipe --list} shows them. Each recipe is a subcommand with its own
 * options ({@code recipe icl --steps 500} is {@code demo --steps 500}; {@link Main} adds them).
 */
@Command(name = "recipe", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = "Run a meta-learning recipe by name: recipe NAME [OPTIONS] (recipe NAME --help for its options).")
final class RecipeCommand implements Callable<Integer> {
  @Parameters(arity = "0..1", paramLabel = "NAME", description = "a recipe (--list shows them)")
  String name;

  @Option(names = "--list", description = "List the recipes.")
  boolean list;

  @Spec
  CommandSpec spec;

  @Override
  public Integer call() {
    // a known NAME runs as a subcommand and never gets here
    if (name != null)
      throw Checks.usage(spec, "unknown recipe '" + name + "' (recipes: " + String.join(", ", spec.subcommands().keySet()) + ")");
    PrintWriter out = spec.commandLine().getOut();
    out.println("recipes:");
    out.println("  icl           transformers learn in-context by gradient descent (von Oswald et al. 2022); same as `demo`");
    out.println("  gtn           Generative Teaching Networks on MNIST digits (Such et al. 2019) against training on real digits");
    out.println("  maml-sine     MAML on sinusoid regression (Finn et al. 2017), second and first order, vs pretraining");
    out.println("  reweight      learning to reweight examples by meta-gradient (Ren et al. 2018), 40 % flipped labels");
    out.println("  es-objective  a temporally-aware learned loss for a classifier, meta-trained by evolution strategies");
    out.println("  meow          heterogeneous graph contrastive learning with weighted negatives, MEOW / AdaMEOW (Yu et al. 2023)");
    return 0;
  }
}
