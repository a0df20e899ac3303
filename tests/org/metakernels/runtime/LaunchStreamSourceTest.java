package org.metakernels.runtime;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The stream rule in the sources: every Java call of a kernel entry point (first parameter
 * {@code int device}, last {@code void* stream}, read from {@code native/include/metakernels.h}) passes
 * {@code t.launchStream()} — the calling thread's current stream — and never {@code t.stream()}
 * (where t's memory was allocated) or a literal 0. A call written the old way still compiles and
 * runs on the CPU, so this check is what catches it without a GPU.
 */
class LaunchStreamSourceTest {
  static Path root() {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !Files.exists(p.resolve("native/include/metakernels.h"))) p = p.getParent();
    assertNotNull(p, "the repository root (native/include/metakernels.h) above " + Path.of("").toAbsolutePath());
    return p;
  }

  /** The kernel entry points: first parameter {@code int device}, last {@code void* stream}. */
  static Set<String> streamFunctions(String header) {
    Set<String> names = new HashSet<>();
    Matcher m = Pattern.compile("\\b(mk_\\w+)\\s*\\(([^;{]*?)\\)\\s*;", Pattern.DOTALL).matcher(header);
    while (m.find()) {
      String params = m.group(2).replaceAll("\\s+", " ").trim();
      if (params.startsWith("int device") && params.endsWith("void* stream")) names.add(m.group(1));
    }
    return names;
  }

  /** The last top-level argument of the call whose '(' is at {@code open}. */
  static String lastArgument(String src, int open) {
    int depth = 0, start = open + 1;
    for (int i = open; i < src.length(); i++) {
      char c = src.charAt(i);
      if (c == '(')
        depth++;
      else if (c == ')' && --depth == 0)
        return src.substring(start, i).trim();
      else if (c == ',' && depth == 1)
        start = i + 1;
    }
    throw new AssertionError("unbalanced call at " + open);
  }

  @Test
  void everyLaunchPassesTheCurrentStream() throws IOException {
    Path root = root();
    Set<String> launches = streamFunctions(Files.readString(root.resolve("native/include/metakernels.h")));
    assertTrue(launches.contains("mk_dense_matmul_forward") && launches.contains("mk_attention_softmax_forward")
            && launches.size() > 20,
        "the header's stream-taking entry points: " + launches);
    List<String> wrong = new ArrayList<>();
    int checked = 0;
    List<Path> files;
    try (Stream<Path> s = Files.walk(root.resolve("java/src/main/java"))) {
      files = s.filter(p -> p.toString().endsWith(".java")).toList();
    }
    Pattern call = Pattern.compile("MkNative\\.(mk_\\w+)\\s*\\(");
    for (Path f : files) {
      if (f.getFileName().toString().equals("MkNative.java")) continue;
      String src = Files.readString(f);
      Matcher m = call.matcher(src);
      while (m.find()) {
        if (!launches.contains(m.group(1))) continue;
        checked++;
        String last = lastArgument(src, m.end() - 1);
        if (!last.equals("launchStream()") && !last.endsWith(".launchStream()"))
          wrong.add(root.relativize(f) + ": " + m.group(1) + "(..., " + last + ")");
      }
    }
    assertTrue(checked > 20, "found the launches (" + checked + ")");
    assertTrue(
        wrong.isEmpty(), "launches not on the current stream (pass t.launchStream()):\n" + String.join("\n", wrong));
  }
}
