package org.metakernels.tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Owner of every tensor made while it is open on this thread. Scopes nest; closing one frees
 * all the memory it owns (CPU and GPU) at once, deterministically. A result leaves with
 * {@link #keep(Tensor)}, which moves its storage to the enclosing scope.
 *
 * <pre>{@code
 * try (Scope scope = Scope.open()) {
 *   Tensor x = Tensor.randn(new long[] {32, 10}, DType.F64, Device.CPU, 7L);
 *   Tensor y = scope.keep(x.tanh().sum());   // y survives, x and tanh(x) are freed
 * }
 * }</pre>
 *
 * Tensors made outside any scope belong to the caller, who frees them with
 * {@link Tensor#close()}.
 *
 * <p>What a scope owns: the memory of every tensor made on its thread while it is the innermost
 * open scope — results, temporaries and the gradients {@code Autograd.grad} returns — unless
 * {@link #keep(Tensor)} or {@link #transfer(Storage, Scope)} moved it. It does not own the
 * parameters and state of modules and optimizers (they hold their own until their
 * {@code close()}), nor tensors made on other threads. After it closes, using one of its tensors,
 * or running a backward that saved one, throws {@link IllegalStateException}; nothing crashes.
 *
 * <p>Threads: scopes are per thread. {@link #open()} pushes on the calling thread's stack, and a
 * scope must be closed there, innermost first; {@link #close()} from another thread throws. A
 * tensor may be handed to other threads, which must be done with it before its scope closes.
 */
public final class Scope implements AutoCloseable {
  private static final ThreadLocal<Deque<Scope>> STACK = ThreadLocal.withInitial(ArrayDeque::new);

  private final List<Storage> owned = new ArrayList<>();
  private final Scope parent;
  private final Thread thread;
  private boolean closed;

  private Scope(Scope parent) {
    this.parent = parent;
    this.thread = Thread.currentThread();
  }

  /**
   * Opens a scope nested in the current one (if any) on this thread; close it on the same thread,
   * innermost first ({@code try (Scope scope = Scope.open()) {...}}).
   *
   * @return the new scope, now current
   */
  public static Scope open() {
    Deque<Scope> stack = STACK.get();
    Scope s = new Scope(stack.peek());
    stack.push(s);
    return s;
  }

  /**
   * The innermost open scope of this thread, or null.
   *
   * @return the current scope or null
   */
  public static Scope current() {
    return STACK.get().peek();
  }

  static void adopt(Storage s) {
    Scope cur = STACK.get().peek();
    if (cur != null) cur.take(s);
  }

  private void take(Storage s) {
    s.setOwner(this);
    owned.add(s);
  }

  /**
   * Moves {@code t}'s storage (shared by its views) to the enclosing scope, or to the caller
   * when this is the outermost scope; a gradient accumulated in it moves along. Its autograd
   * history is kept: keep leaves of a tape you still want to differentiate through, or
   * {@link Tensor#detach()} first. {@code Tensor y = scope.keep(x.sum())}: y, shape [], survives.
   *
   * @param t a tensor made in this scope (or elsewhere: then nothing moves)
   * @return {@code t}
   * @throws IllegalStateException when this scope is closed
   */
  public Tensor keep(Tensor t) {
    if (closed) throw new IllegalStateException("keep: scope already closed");
    Storage s = t.storage();
    if (s.owner() == this) {
      if (parent != null) parent.take(s);
      else s.setOwner(null);
    }
    if (t.grad() != null && t.grad().storage().owner() == this) keep(t.grad());
    return t;
  }

  /**
   * Hands a storage to {@code target}, or to the caller when {@code target} is null (who then
   * frees it with {@link Tensor#close()}). This is how long-lived tensors leave every scope:
   * {@link org.metakernels.nn.Module} parameters, optimizer state and the gradients autograd
   * accumulates into leaves. {@code Scope.transfer(w.storage(), null)}: w outlives the scope.
   *
   * @param s the storage (e.g. {@link Tensor#storage()})
   * @param target the new owner, or null for the caller
   * @throws IllegalStateException when {@code target} is closed
   */
  public static void transfer(Storage s, Scope target) {
    if (s.owner() == target) return;
    if (target == null) s.setOwner(null);
    else {
      if (target.closed) throw new IllegalStateException("transfer: target scope is closed");
      target.take(s);
    }
  }

  /**
   * Number of storages this scope frees on close.
   *
   * @return the count of live storages owned
   */
  public int size() {
    int n = 0;
    for (Storage s : owned) if (s.owner() == this && !s.isClosed()) n++;
    return n;
  }

  /**
   * True once {@link #close()} ran.
   *
   * @return whether this scope is closed
   */
  public boolean isClosed() {
    return closed;
  }

  /** The storages this scope owns now (not freed, not kept by a parent), in allocation order. */
  List<Storage> ownedNow() {
    List<Storage> r = new ArrayList<>();
    for (Storage s : owned) if (s.owner() == this && !s.isClosed()) r.add(s);
    return r;
  }

  /** Frees everything this scope still owns. Scopes must close innermost first. */
  @Override
  public void close() {
    if (closed) return;
    if (Thread.currentThread() != thread)
      throw new IllegalStateException("Scope.close: a scope must be closed on the thread that opened it");
    Deque<Scope> stack = STACK.get();
    if (stack.peek() != this)
      throw new IllegalStateException("Scope.close: an inner scope is still open (close scopes innermost first)");
    stack.pop();
    closed = true;
    for (Storage s : owned) if (s.owner() == this) s.free();
    owned.clear();
  }
}
