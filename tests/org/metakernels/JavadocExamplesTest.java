package org.metakernels;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.StringWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.StandardLocation;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every example of the library's javadoc, a {@code <pre>{@code ...}</pre>} block in a file of
 * {@code java/src/main/java}, compiles against the library as a user would write it: the block is
 * read from the source file (not copied into a test that could drift), put in a method of a class of
 * its own and compiled with the JDK's compiler on the test classpath, all blocks in one compiler run.
 *
 * <p>What a user's file would have is given: imports of the library's packages (and java.util,
 * java.util.function, java.nio.file), of the member types of the class whose file the block is in (a
 * user writes {@code import org.metakernels.ops.LinearAttention.Mask;}), and the names a block takes
 * from its prose ({@code x}, {@code net}, {@code graph}, ...) as fields of the types in {@link
 * #FREE} (a few files give a name another type: {@link #FREE_BY_FILE}). A block's own declarations
 * shadow those fields. {@code { ... }} stands for "your code" and compiles as an empty block.
 *
 * <p>The blocks are compiled, not run: their names have no values here (the README's examples, which
 * do run, are {@link ReadmeExamplesTest}'s). What this catches is an example that no longer matches
 * the API: a renamed or removed method, a changed parameter list or type, a wrong generic type.
 */
class JavadocExamplesTest {
  @TempDir Path out;

  /** Packages every block imports, as a user's IDE would add them. */
  private static final List<String> IMPORTS = List.of("java.util.*", "java.util.function.*",
      "java.nio.file.*", "org.metakernels.tensor.*", "org.metakernels.autograd.*",
      "org.metakernels.ops.*", "org.metakernels.graph.*", "org.metakernels.meta.*",
      "org.metakernels.nn.*", "org.metakernels.optim.*", "org.metakernels.runtime.*",
      "org.metakernels.io.*");

  /**
   * The names blocks take from their prose, with the types the prose gives them. A name no block
   * uses costs nothing; a name a block uses and nothing declares fails its compile with the block's
   * file and line.
   */
  static final String FREE = String.join("\n",
      "static Tensor x, y, w, b, q, k, v, u, t, x0, idx, logits, targets, memory, zPap, zPsp, lr;",
      "static Tensor loss, innerLoss, theta0, edgeIndex, m, buf, xs, ys, xq, yq, lengths;",
      "static long n;",
      "static long[] paper, author, paperIds, authorIds, paperIds2, subjectIds;",
      "static Graph graph;",
      "static HeteroGraph hetero;",
      "static MLP net;",
      "static Optimizer opt;",
      "static Map<String, Tensor> fastWeights;",
      "static CudaStream s, producer, consumer;",
      "static Tensor outerLoss(Tensor w) { return w.square().sum(); }",
      "static double[] evaluate(Tensor population) { return new double[(int) population.shape()[0]]; }");

  /** Names that a file's prose gives another type than {@link #FREE} does. */
  static final Map<String, String> FREE_BY_FILE = Map.of(
      // Views: the sizes of a reshape
      "Views.java", "static long b, n, h, dh;");

  /** A javadoc example: the file, the line of its {@code <pre>{@code}, its text. */
  record Block(Path file, int line, String text) {
    String where() {
      return root().relativize(file) + ":" + line;
    }
  }

  static Path root() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent())
      if (Files.isDirectory(d.resolve("kernels")) && Files.isDirectory(d.resolve("java/src/main/java"))) return d;
    throw new IllegalStateException("the repository root not found above " + Path.of("").toAbsolutePath());
  }

  private static final Pattern START = Pattern.compile("^\\s*\\*?\\s?<pre>\\{@code\\s*$");
  private static final Pattern END = Pattern.compile("^\\s*\\*?\\s?}</pre>\\s*$");
  private static final Pattern LINE = Pattern.compile("^\\s*\\* ?(.*)$");

  /** The examples of one source file. */
  static List<Block> blocks(Path file, List<String> lines) {
    List<Block> blocks = new ArrayList<>();
    StringBuilder cur = null;
    int start = 0;
    for (int i = 0; i < lines.size(); ++i) {
      String l = lines.get(i);
      if (cur == null) {
        if (START.matcher(l).matches()) {
          cur = new StringBuilder();
          start = i + 1;
        } else {
          assertFalse(l.contains("<pre>{@code"), file + ":" + (i + 1)
              + ": a <pre>{@code block must open on a line of its own (this test reads it)");
        }
      } else if (END.matcher(l).matches()) {
        blocks.add(new Block(file, start, cur.toString()));
        cur = null;
      } else {
        Matcher m = LINE.matcher(l);
        assertTrue(m.matches(), file + ":" + (i + 1) + ": a line of the example without its leading '*'");
        cur.append(m.group(1)).append('\n');
      }
    }
    assertNull(cur, file + ":" + start + ": the <pre>{@code block never ends with a line '}</pre>'");
    return blocks;
  }

  static List<Block> allBlocks() throws IOException {
    Path src = root().resolve("java/src/main/java");
    List<Block> all = new ArrayList<>();
    try (Stream<Path> files = Files.walk(src)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList())
        all.addAll(blocks(f, Files.readAllLines(f)));
    }
    return all;
  }

  /** The fully qualified name of the file's top-level class, or null for a package-info. */
  static String topLevelClass(Path file) {
    Path src = root().resolve("java/src/main/java");
    String rel = src.relativize(file).toString().replace('/', '.');
    String name = rel.substring(0, rel.length() - ".java".length());
    return name.endsWith("package-info") ? null : name;
  }

  /** The class source of block {@code i}. */
  static String source(int i, Block b) {
    StringBuilder s = new StringBuilder();
    for (String p : IMPORTS) s.append("import ").append(p).append(";\n");
    String top = topLevelClass(b.file());
    if (top != null) s.append("import ").append(top).append(".*;\n");
    String own = FREE_BY_FILE.getOrDefault(b.file().getFileName().toString(), "");
    s.append("public class JavadocBlock").append(i).append(" {\n");
    for (String decl : FREE.split("\n")) {
      // a file's own type for a name replaces the common one
      String d = decl;
      for (String name : names(own)) d = dropName(d, name);
      if (d != null) s.append(d).append('\n');
    }
    s.append(own).append('\n');
    s.append("static void example() throws Exception {\n// ").append(b.where()).append('\n');
    s.append(b.text().replace("{ ... }", "{ }")).append("}\n}\n");
    return s.toString();
  }

  /** The names a field declaration line declares ({@code static T a, b;}). */
  static List<String> names(String decls) {
    List<String> names = new ArrayList<>();
    for (String d : decls.split("\n")) {
      Matcher m = Pattern.compile("^static [\\w<>,\\[\\] ]+? (\\w+(?:, \\w+)*);$").matcher(d.strip());
      if (m.matches()) names.addAll(List.of(m.group(1).split(", ")));
    }
    return names;
  }

  /** The declaration without {@code name} (null when nothing is left); methods are kept. */
  static String dropName(String decl, String name) {
    if (decl == null) return null;
    Matcher m = Pattern.compile("^(static [\\w<>,\\[\\] ]+? )(\\w+(?:, \\w+)*);$").matcher(decl);
    if (!m.matches()) return decl;
    List<String> keep = new ArrayList<>(List.of(m.group(2).split(", ")));
    keep.remove(name);
    return keep.isEmpty() ? null : m.group(1) + String.join(", ", keep) + ";";
  }

  /** Compiles every block in one run; the errors of each, by index (empty: it compiled). */
  private Map<Integer, String> compileAll(List<Block> blocks) throws IOException {
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    assertNotNull(javac, "a JDK's compiler (the tests run on a JDK)");
    DiagnosticCollector<JavaFileObject> diags = new DiagnosticCollector<>();
    Map<JavaFileObject, Integer> index = new HashMap<>();
    List<JavaFileObject> units = new ArrayList<>();
    for (int i = 0; i < blocks.size(); ++i) {
      final String src = source(i, blocks.get(i));
      JavaFileObject file = new SimpleJavaFileObject(URI.create("string:///JavadocBlock" + i + ".java"),
          JavaFileObject.Kind.SOURCE) {
        @Override
        public CharSequence getCharContent(boolean ignoreEncodingErrors) {
          return src;
        }
      };
      units.add(file);
      index.put(file, i);
    }
    Map<Integer, String> errors = new LinkedHashMap<>();
    for (int i = 0; i < blocks.size(); ++i) errors.put(i, "");
    StringWriter log = new StringWriter();
    try (StandardJavaFileManager fm = javac.getStandardFileManager(diags, Locale.ROOT, null)) {
      fm.setLocation(StandardLocation.CLASS_OUTPUT, List.of(Files.createDirectories(out).toFile()));
      List<String> options = List.of("-classpath", System.getProperty("java.class.path"), "-proc:none",
          "-Xmaxerrs", "10000");
      javac.getTask(log, fm, diags, options, null, units).call();
    }
    for (Diagnostic<? extends JavaFileObject> d : diags.getDiagnostics()) {
      if (d.getKind() != Diagnostic.Kind.ERROR) continue;
      Integer i = d.getSource() == null ? null : index.get(d.getSource());
      String msg = "line " + d.getLineNumber() + ": " + d.getMessage(Locale.ROOT) + "\n";
      if (i == null) fail("javac error outside the examples: " + msg + log);
      errors.merge(i, msg, String::concat);
    }
    return errors;
  }

  @TestFactory
  Stream<DynamicTest> everyJavadocExampleCompiles() throws IOException {
    List<Block> blocks = allBlocks();
    assertTrue(blocks.size() >= 60, "found " + blocks.size() + " javadoc examples (66 on 2026-12-06)");
    Map<Integer, String> errors = compileAll(blocks);
    List<DynamicTest> tests = new ArrayList<>();
    for (int i = 0; i < blocks.size(); ++i) {
      final Block b = blocks.get(i);
      final String e = errors.get(i), src = source(i, b);
      tests.add(DynamicTest.dynamicTest(b.where(), () -> assertTrue(e.isEmpty(),
          "the javadoc example at " + b.where() + " does not compile:\n" + e + "\nas compiled:\n" + src)));
    }
    return tests.stream();
  }

  /** The reader fails loudly on what it cannot read, instead of skipping an example. */
  @Test
  void readerTakesTheBlockAndRejectsMalformedOnes() {
    Path f = Path.of("X.java");
    List<Block> b = blocks(f, List.of("/**", " * <pre>{@code", " * int a = 1;", " *   a++;", " * }</pre>", " */"));
    assertEquals(1, b.size());
    assertEquals("int a = 1;\n  a++;\n", b.get(0).text());
    assertEquals(2, b.get(0).line());
    assertThrows(AssertionError.class, () -> blocks(f, List.of(" * <pre>{@code", " * int a;")));
    assertThrows(AssertionError.class, () -> blocks(f, List.of(" * text <pre>{@code int a; }</pre>")));
  }

  /** A block that does not match the API fails (the test can fail). */
  @Test
  void aWrongExampleFailsToCompile() throws IOException {
    Path f = root().resolve("java/src/main/java/org/metakernels/ops/Dense.java");
    List<Block> wrong = List.of(new Block(f, 1, "Tensor y = Dense.tanh(x, x);\n"),
        new Block(f, 2, "Tensor y = Dense.tanh(undeclaredName);\n"),
        new Block(f, 3, "Tensor y = Dense.tanh(x);\n"));
    Map<Integer, String> e = compileAll(wrong);
    assertTrue(e.get(0).contains("tanh"), e.get(0));
    assertTrue(e.get(1).contains("undeclaredName"), e.get(1));
    assertEquals("", e.get(2));
  }
}
