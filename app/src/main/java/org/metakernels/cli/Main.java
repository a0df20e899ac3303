package org.metakernels.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.metakernels.runtime.MetakernelsException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.ExitCode;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * The metakernels command line: {@code demo} (the in-context-learning reproduction, the main
 * job), {@code info} (backend and kernels), {@code recipe NAME}, {@code help [COMMAND]}. Each
 * takes {@code --help}.
 *
 * <p>Every option is checked before any computation. Errors are one line on stderr (the stack
 * trace only with {@code --verbose}), and the exit code says what happened: 0 success, 1 a
 * runtime failure (the run was valid but could not be done here: no CUDA, an instruction set
 * this CPU lacks, a failed computation or write), 2 a usage error (an unknown command or option,
 * a value out of range, a bad {@code -Dmetakernels.*} setting, an output path that cannot be
 * written; nothing was computed).
 */
@Command(name = "metakernels", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = "Fused kernels for meta-learning on the JVM.",
    subcommands = {DemoCommand.class, InfoCommand.class, RecipeCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
  /** The exit codes, as the help text lists them. */
  private static final Map<String, String> EXIT_CODES = new LinkedHashMap<>();

  static {
    EXIT_CODES.put("0", "success");
    EXIT_CODES.put("1", "runtime failure: no CUDA, an instruction set this CPU lacks, a failed computation or write");
    EXIT_CODES.put("2", "usage error: unknown command or option, a bad value or -Dmetakernels.* setting, an "
        + "output path that cannot be written (nothing was computed)");
  }

  @Option(names = "--verbose", scope = ScopeType.INHERIT, description = "print the stack trace of a failure")
  boolean verbose;

  @Spec
  CommandSpec spec;

  /** True when stderr is a terminal: progress bars there, plain lines otherwise. */
  final boolean terminal;

  private Main(boolean terminal) {
    this.terminal = terminal;
  }

  /**
   * Runs the command line and exits with its code: {@code java -jar metakernels-all.jar demo}.
   *
   * @param args the arguments
   */
  public static void main(String[] args) {
    System.setProperty("java.awt.headless", "true");
    // the library's log lines (one, where the CUDA flavour cannot run) on one line each
    if (System.getProperty("java.util.logging.SimpleFormatter.format") == null)
      System.setProperty("java.util.logging.SimpleFormatter.format", "%4$s: %5$s%6$s%n");
    PrintWriter out = new PrintWriter(System.out, true), err = new PrintWriter(System.err, true);
    System.exit(execute(out, err, stderrIsTerminal(), args));
  }

  /**
   * Runs one command line in this process and returns its exit code (0 success, 1 runtime
   * failure, 2 usage error): {@code Main.execute(out, err, false, "demo", "--dim", "-3")} returns
   * 2 and writes one line to {@code err}.
   *
   * @param out where results and help go
   * @param err where errors and progress go
   * @param terminal whether {@code err} is a terminal (progress bars, else a plain line every 10 %)
   * @param args the arguments
   * @return the exit code
   */
  /** The command tree as {@link #execute} builds it (for tests of its help texts). */
  static CommandLine commandLine() {
    return commandLine(new Main(false));
  }

  /** The command tree of {@code main}: its subcommands, and the recipes under {@code recipe}. */
  private static CommandLine commandLine(Main main) {
    CommandLine cl = new CommandLine(main);
    CommandLine recipe = cl.getSubcommands().get("recipe");
    recipe.addSubcommand("icl", new CommandLine(new DemoCommand()).setCommandName("icl"));
    recipe.addSubcommand("gtn", new CommandLine(new GtnCommand()));
    recipe.addSubcommand("maml-sine", new CommandLine(new MamlSineCommand()));
    recipe.addSubcommand("reweight", new CommandLine(new ReweightCommand()));
    recipe.addSubcommand("es-objective", new CommandLine(new EsObjectiveCommand()));
    recipe.addSubcommand("meow", new CommandLine(new MeowCommand()));
    return cl;
  }

  public static int execute(PrintWriter out, PrintWriter err, boolean terminal, String... args) {
    Main main = new Main(terminal);
    CommandLine cl = commandLine(main);
    cl.setOut(out).setErr(err);
    addExitCodes(cl);
    cl.setParameterExceptionHandler((e, a) -> {
      e.getCommandLine().getErr().println(name(e.getCommandLine()) + ": " + usageMessage(e));
      if (main.verbose) e.printStackTrace(e.getCommandLine().getErr());
      return ExitCode.USAGE;
    });
    cl.setExecutionExceptionHandler((e, c, r) -> {
      c.getErr().println(name(c) + ": " + failureMessage(e) + (main.verbose ? "" : hint(e)));
      if (main.verbose) e.printStackTrace(c.getErr());
      return ExitCode.SOFTWARE;
    });
    try {
      return cl.execute(args);
    } catch (OutOfMemoryError | StackOverflowError e) {
      // Errors pass picocli's handler: one line here too (a heap or host allocation too large for
      // the settings asked, e.g. --batch 2000000000), the trace only with --verbose
      String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getClass().getSimpleName() + ": " + e.getMessage();
      err.println("metakernels: " + msg.lines().findFirst().orElse(msg) + (main.verbose ? "" : " (--verbose for the stack trace)"));
      if (main.verbose) e.printStackTrace(err);
      return ExitCode.SOFTWARE;
    } finally {
      out.flush();
      err.flush();
    }
  }

  @Override
  public void run() {
    throw new ParameterException(spec.commandLine(),
        "missing command (" + String.join(", ", spec.subcommands().keySet()) + ")");
  }

  private static void addExitCodes(CommandLine cl) {
    cl.getCommandSpec().usageMessage().exitCodeListHeading("%nExit codes:%n").exitCodeList(EXIT_CODES);
    for (CommandLine sub : cl.getSubcommands().values()) addExitCodes(sub);
  }

  private static String name(CommandLine c) {
    return c.getCommandSpec().qualifiedName();
  }

  private static String usageMessage(ParameterException e) {
    CommandLine c = e.getCommandLine();
    if (e instanceof UnmatchedArgumentException u && !u.isUnknownOption() && !c.getSubcommands().isEmpty()
        && c.getCommandSpec().positionalParameters().isEmpty())
      return "unknown command '" + u.getUnmatched().get(0) + "' (commands: "
          + String.join(", ", c.getSubcommands().keySet()) + ")";
    String m = oneLine(e.getMessage());
    if (e instanceof UnmatchedArgumentException u && !u.getSuggestions().isEmpty())
      m += " (did you mean " + String.join(" or ", u.getSuggestions()) + "?)";
    return m;
  }

  /** Our own failures and the core's rejections speak for themselves; anything else is named. */
  private static String failureMessage(Exception e) {
    if (e instanceof Checks.Failure || e instanceof MetakernelsException) return oneLine(e.getMessage());
    return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + oneLine(e.getMessage()));
  }

  private static String hint(Exception e) {
    return e instanceof Checks.Failure ? "" : " (--verbose for the stack trace)";
  }

  /** The message on one line: line breaks and the indentation after them become one space. */
  static String oneLine(String s) {
    return s == null ? "" : s.strip().replaceAll("\\s*\\R\\s*", " ");
  }

  /**
   * Whether stderr is a terminal. Linux names fd 2's target in /proc (a tty or pts device for a
   * terminal); elsewhere a console means stdin and stdout are terminals, the best guess left.
   */
  private static boolean stderrIsTerminal() {
    try {
      String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
      return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
    } catch (Exception e) {
      return System.console() != null;
    }
  }
}
