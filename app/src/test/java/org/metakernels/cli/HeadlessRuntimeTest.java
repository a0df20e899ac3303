package org.metakernels.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Method;
import org.junit.jupiter.api.Test;

/**
 * The command line on a Java runtime without java.desktop (a jlink image, as the GPU check carries:
 * benchmarks/gpu/pack.sh): every command but the PNG writers must run there. On 2026-12-05 `info`
 * failed with NoClassDefFoundError java/awt/image/RenderedImage, because picocli builds every
 * subcommand and linking GtnCommand made the verifier load AWT classes.
 *
 * <p>The check: the cli package's classes are defined again by a loader that refuses java.awt and
 * javax.imageio (the java.desktop module) and delegates everything else; `info` and `help` run
 * through it.
 */
class HeadlessRuntimeTest {
  /** Defines org.metakernels.cli classes itself; refuses java.desktop's packages. */
  static final class NoDesktopLoader extends ClassLoader {
    NoDesktopLoader(ClassLoader parent) {
      super(parent);
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
      if (name.startsWith("java.awt.") || name.startsWith("javax.imageio."))
        throw new ClassNotFoundException(name + " (java.desktop is refused by this test)");
      if (!name.startsWith("org.metakernels.cli.")) return super.loadClass(name, resolve);
      synchronized (getClassLoadingLock(name)) {
        Class<?> c = findLoadedClass(name);
        if (c == null) {
          String resource = name.replace('.', '/') + ".class";
          try (InputStream in = getParent().getResourceAsStream(resource)) {
            if (in == null) throw new ClassNotFoundException(name);
            byte[] bytes = in.readAllBytes();
            c = defineClass(name, bytes, 0, bytes.length);
          } catch (IOException e) {
            throw new ClassNotFoundException(name, e);
          }
        }
        if (resolve) resolveClass(c);
        return c;
      }
    }
  }

  private static String[] run(String... args) throws Exception {
    ClassLoader loader = new NoDesktopLoader(HeadlessRuntimeTest.class.getClassLoader());
    Class<?> main = Class.forName("org.metakernels.cli.Main", true, loader);
    assertNotSame(Main.class, main, "the test's loader defines the cli classes itself");
    Method execute = main.getMethod("execute", PrintWriter.class, PrintWriter.class, boolean.class, String[].class);
    StringWriter out = new StringWriter(), err = new StringWriter();
    int code = (int) execute.invoke(null, new PrintWriter(out, true), new PrintWriter(err, true), false, args);
    return new String[] {Integer.toString(code), out.toString(), err.toString()};
  }

  @Test
  void infoRunsWithoutJavaDesktop() throws Exception {
    String[] r = run("info");
    assertEquals("0", r[0], r[2]);
    assertTrue(r[1].contains("native ABI:"), r[1]);
  }

  @Test
  void helpOfEveryRecipeRunsWithoutJavaDesktop() throws Exception {
    for (String recipe : new String[] {"icl", "gtn", "maml-sine", "reweight", "es-objective", "meow"}) {
      String[] r = run("recipe", recipe, "--help");
      assertEquals("0", r[0], recipe + ": " + r[2]);
    }
  }

  @Test
  void theLoaderDoesRefuseJavaDesktop() {
    ClassLoader loader = new NoDesktopLoader(HeadlessRuntimeTest.class.getClassLoader());
    assertThrows(ClassNotFoundException.class, () -> Class.forName("java.awt.image.RenderedImage", false, loader));
  }
}
