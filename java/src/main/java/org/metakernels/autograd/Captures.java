package org.metakernels.autograd;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.metakernels.tensor.Tensor;

/**
 * Finds every tensor a backward rule captured, so that {@link Node} can version-check all of
 * them and not only the op's declared inputs and outputs (issue 13: an edited {@code lse}, key
 * lengths or index tensor used to give a silently wrong gradient).
 *
 * <p>A rule is a lambda; the variables it captured are the fields of its (hidden) class. The scan
 * reads them, and follows: tensors (kept), arrays and collections (their elements), other lambdas
 * (a rule that calls another), records and the library's own helper objects (an op's options or
 * geometry, which hold the key lengths or the bias), to a depth of {@value #MAX_DEPTH}. It does not
 * follow into a tensor, the autograd graph, scopes, storages, modules or optimizers, nor into a
 * program's own classes other than lambdas and records. The fields worth reading are found once per
 * class ({@link ClassValue}, with whether to follow it at all); a field that cannot be made accessible (a class of a
 * named module that does not open its package) is skipped.
 */
final class Captures {
  static final int MAX_DEPTH = 4;

  private Captures() {}

  /** A tensor found, and the name of the field that held it where that name means something. */
  record Found(Tensor tensor, String field) {}

  /** How to read an object of one class: the fields worth reading (none: not followed). */
  private record Plan(Field[] fields, boolean named) {}

  private static final Plan SKIP = new Plan(new Field[0], false);

  private static final ClassValue<Plan> PLANS = new ClassValue<>() {
    @Override
    protected Plan computeValue(Class<?> c) {
      if (c.isArray() || !follow(c)) return SKIP;
      List<Field> r = new ArrayList<>();
      for (Class<?> k = c; k != null && k != Object.class; k = k.getSuperclass()) {
        for (Field f : k.getDeclaredFields()) {
          if (Modifier.isStatic(f.getModifiers()) || !mayHoldTensors(f.getType())) continue;
          try {
            f.setAccessible(true);
          } catch (RuntimeException e) { // InaccessibleObjectException, SecurityException
            continue;
          }
          r.add(f);
        }
      }
      // a lambda's fields are arg$1, arg$2, ...: no name worth printing
      return new Plan(r.toArray(new Field[0]), !(c.isHidden() || c.isSynthetic()));
    }
  };

  /** Whether a field of this declared type can lead to a tensor. */
  private static boolean mayHoldTensors(Class<?> t) {
    if (t.isPrimitive() || t.isEnum() || t == String.class || t == Class.class) return false;
    if (Number.class.isAssignableFrom(t) || t == Boolean.class || t == Character.class) return false;
    if (t.isArray()) return mayHoldTensors(t.getComponentType());
    return true;
  }

  /** Whether to read the fields of an object of this runtime class. */
  private static boolean follow(Class<?> c) {
    if (c.isHidden() || c.isSynthetic() || c.isRecord()) return true;
    String n = c.getName();
    if (!n.startsWith("org.metakernels.")) return false;
    return !(n.startsWith("org.metakernels.autograd.") || n.startsWith("org.metakernels.tensor.")
        || n.startsWith("org.metakernels.runtime.") || n.startsWith("org.metakernels.nn.")
        || n.startsWith("org.metakernels.optim."));
  }

  /**
   * The tensors {@code rule} captured, in field order (a tensor reached twice is listed twice; the
   * depth limit ends cycles).
   */
  static List<Found> of(Object rule) {
    List<Found> out = new ArrayList<>(4);
    scan(rule, null, 0, out);
    return out;
  }

  private static void scan(Object o, String field, int depth, List<Found> out) {
    if (o == null) return;
    if (o instanceof Tensor t) {
      out.add(new Found(t, field));
      return;
    }
    if (depth > MAX_DEPTH) return;
    if (o instanceof Object[] a) {
      for (Object e : a) scan(e, field, depth + 1, out);
      return;
    }
    if (o instanceof Collection<?> col) {
      for (Object e : col) scan(e, field, depth + 1, out);
      return;
    }
    Plan plan = PLANS.get(o.getClass());
    boolean named = plan.named();
    for (Field f : plan.fields()) {
      Object v;
      try {
        v = f.get(o);
      } catch (IllegalAccessException e) {
        continue;
      }
      scan(v, named ? f.getName() : field, depth + 1, out);
    }
  }
}
