package org.metakernels;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.StringWriter;
import java.lang.reflect.InvocationTargetException;
import java.net.URI;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
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
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.metakernels.runtime.Backend;

/**
 * Every {@code java} block of the repository's README.md, as printed there, compiles against the
 * library and runs: the blocks are read from the file (not copied into a test that could drift),
 * their {@code import} lines kept, the rest wrapped in a method of a class of its own, compiled with
 * the JDK's compiler on the test classpath and called. A block that uses names the README defines in
 * its prose (an {@code MLP net}, its data) gets them from {@link #context}: small real values, so the
 * block runs as well. A block on the GPU (the streams example) compiles everywhere and runs where
 * CUDA is.
 */
class ReadmeExamplesTest {
  @TempDir Path out;

  /** The imports every block gets (a reader's IDE adds them); the block's own come first. */
  private static final List<String> IMPORTS = List.of("java.util.*", "java.util.function.*",
      "org.metakernels.tensor.*", "org.metakernels.autograd.*", "org.metakernels.ops.*",
      "org.metakernels.graph.*", "org.metakernels.meta.*", "org.metakernels.nn.*", "org.metakernels.runtime.*");

  /** The README, from the working directory (the java module) upwards. */
  static Path readme() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path f = d.resolve("README.md");
      if (Files.isRegularFile(f) && Files.isDirectory(d.resolve("kernels"))) return f;
    }
    throw new IllegalStateException("README.md not found above " + Path.of("").toAbsolutePath());
  }

  /** The README's java blocks, each with the line it starts on. */
  record Block(int line, List<String> lines) {}

  static List<Block> blocks(List<String> readme) {
    List<Block> blocks = new ArrayList<>();
    List<String> cur = null;
    int start = 0;
    for (int i = 0; i < readme.size(); ++i) {
      String l = readme.get(i);
      if (cur == null && l.strip().equals("```java")) {
        cur = new ArrayList<>();
        start = i + 1;
      } else if (cur != null && l.strip().startsWith("```")) {
        blocks.add(new Block(start, cur));
        cur = null;
      } else if (cur != null) {
        cur.add(l);
      }
    }
    assertNull(cur, "README.md: the java block from line " + start + " is never closed");
    return blocks;
  }

  /**
   * Declarations for the names a block takes from the README's prose, chosen by what the block
   * uses: small, seeded, real values.
   */
  static String context(String body) {
    StringBuilder s = new StringBuilder();
    if (body.contains("net.") && body.contains("Unroll.builder()")) {
      // the Unroll section: an MLP, support and query sets, a learned step size
      s.append("MLP net = new MLP(new long[] {1, 8, 1}, Activation.TANH, DType.F64, Device.CPU, 1L);\n");
      s.append("Tensor xs = Tensor.randn(new long[] {10, 1}, DType.F64, Device.CPU, 2L), ys = xs.sin();\n");
      s.append("Tensor xq = Tensor.randn(new long[] {10, 1}, DType.F64, Device.CPU, 3L), yq = xq.sin();\n");
      s.append("Tensor lr = Tensor.scalar(0.01, DType.F64, Device.CPU).requiresGrad(true);\n");
    }
    if (body.contains("CudaRuntime.")) {
      // the streams section: x and w made on the default stream of the GPU
      s.append("Tensor x = Tensor.randn(new long[] {64, 32}, DType.F32, Device.CUDA, 1L);\n");
      s.append("Tensor w = Tensor.randn(new long[] {32, 16}, DType.F32, Device.CUDA, 2L);\n");
    }
    if (body.contains("PerExample.")) {
      // the per-example section: an MLP, a batch, a loss per example
      s.append("MLP mlp = new MLP(new long[] {6, 5, 3}, Activation.TANH, DType.F64, Device.CPU, 1L);\n");
      s.append("Tensor x = Tensor.randn(new long[] {4, 6}, DType.F64, Device.CPU, 2L);\n");
      s.append("Tensor y = Tensor.randn(new long[] {4, 3}, DType.F64, Device.CPU, 3L);\n");
      s.append("Function<Tensor, Tensor> lossPerExample = o -> o.sub(y).square().sum(1, false);\n");
    }
    return s.toString();
  }

  /** The class source of block {@code i}: its imports, then its body in {@code run()}. */
  static String source(int i, Block b) {
    StringBuilder imports = new StringBuilder(), body = new StringBuilder();
    for (String l : b.lines()) {
      if (l.strip().startsWith("import ")) imports.append(l.strip()).append('\n');
      else body.append(l).append('\n');
    }
    for (String p : IMPORTS) imports.append("import ").append(p).append(";\n");
    return imports + "public class ReadmeBlock" + i + " {\n  public static void run() throws Exception {\n"
        + context(body.toString()) + "// README.md line " + b.line() + "\n" + body + "  }\n}\n";
  }

  @TestFactory
  Stream<DynamicTest> everyJavaBlockCompilesAndRuns() throws IOException {
    List<Block> blocks = blocks(Files.readAllLines(readme()));
    assertTrue(blocks.size() >= 6, "README.md has " + blocks.size() + " java blocks");
    List<DynamicTest> tests = new ArrayList<>();
    for (int i = 0; i < blocks.size(); ++i) {
      final int n = i;
      final Block b = blocks.get(i);
      tests.add(DynamicTest.dynamicTest("README.md line " + b.line(), () -> compileAndRun(n, b)));
    }
    return tests.stream();
  }

  private void compileAndRun(int i, Block b) throws Exception {
    String name = "ReadmeBlock" + i, src = source(i, b);
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    assertNotNull(javac, "a JDK's compiler (the tests run on a JDK)");
    DiagnosticCollector<JavaFileObject> diags = new DiagnosticCollector<>();
    Path dir = Files.createDirectories(out.resolve(name));
    try (StandardJavaFileManager fm = javac.getStandardFileManager(diags, Locale.ROOT, null)) {
      fm.setLocation(StandardLocation.CLASS_OUTPUT, List.of(dir.toFile()));
      JavaFileObject file = new SimpleJavaFileObject(URI.create("string:///" + name + ".java"),
          JavaFileObject.Kind.SOURCE) {
        @Override
        public CharSequence getCharContent(boolean ignoreEncodingErrors) {
          return src;
        }
      };
      StringWriter log = new StringWriter();
      List<String> options = List.of("-classpath", System.getProperty("java.class.path"), "-proc:none");
      boolean ok = javac.getTask(log, fm, diags, options, null, List.of(file)).call();
      StringBuilder errors = new StringBuilder();
      for (Diagnostic<? extends JavaFileObject> d : diags.getDiagnostics())
        if (d.getKind() == Diagnostic.Kind.ERROR)
          errors.append("line ").append(d.getLineNumber()).append(": ").append(d.getMessage(Locale.ROOT)).append('\n');
      assertTrue(ok, "README.md's java block at line " + b.line() + " does not compile:\n" + errors + log
          + "\nas compiled:\n" + src);
    }
    // a block on the GPU compiles everywhere and runs where CUDA is
    if (src.contains("Device.CUDA") && !Backend.get().cudaAvailable()) return;
    try (URLClassLoader cl = new URLClassLoader(new URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
      try {
        cl.loadClass(name).getMethod("run").invoke(null);
      } catch (InvocationTargetException e) {
        throw new AssertionError("README.md's java block at line " + b.line() + " failed:\n" + src, e.getCause());
      }
    }
  }
}
