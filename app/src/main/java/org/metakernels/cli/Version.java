package org.metakernels.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import picocli.CommandLine.IVersionProvider;

/** The project's version, from the resource Maven filters at build time ({@code version.properties}). */
final class Version implements IVersionProvider {
  /**
   * The version of this build.
   *
   * @return e.g. {@code "0.1.0-SNAPSHOT"}
   */
  static String get() {
    try (InputStream in = Version.class.getResourceAsStream("version.properties")) {
      if (in == null) throw new IllegalStateException("version.properties is missing from the classpath");
      Properties p = new Properties();
      p.load(in);
      return p.getProperty("version");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public String[] getVersion() {
    return new String[] {"metakernels " + get()};
  }
}
