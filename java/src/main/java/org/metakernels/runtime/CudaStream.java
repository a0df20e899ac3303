package org.metakernels.runtime;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A CUDA stream owned by the caller (PyTorch's {@code torch.cuda.Stream}): made by
 * {@link CudaRuntime#newStream()}, freed by {@link #close()}. Kernels run on the calling thread's
 * <em>current</em> stream, the default stream unless a {@link CudaRuntime#useStream(CudaStream)}
 * scope chose another; a CUDA tensor created in that scope allocates its memory for that stream
 * and reports it in {@code Tensor.stream()}.
 *
 * <p>The rule when tensors live on different streams, as in PyTorch: an op runs on the current
 * stream whatever its inputs' streams; ordering work across streams is the caller's job
 * ({@link #waitFor(CudaStream)}, {@link CudaEvent}), but memory is safe without it: an input
 * read on a stream other than its own is recorded as used by that stream, so its block is not
 * handed to a third stream before that work has passed the point of the free (the native cache's
 * record_stream rule, automatic here). Host copies ({@code toDoubleArray}, {@code to(Device.CPU)})
 * wait for the tensor's stream and the current one. CPU tensors ignore streams. Streams made
 * here do not synchronise with the default stream (non-blocking): the default stream's work is
 * ordered before a stream's only through {@code waitFor} or a synchronisation.
 *
 * <pre>{@code
 * try (CudaStream s = CudaRuntime.get().newStream()) {
 *   s.waitFor(CudaStream.defaultStream());            // x was made on the default stream
 *   try (CudaRuntime.StreamScope use = CudaRuntime.useStream(s)) {
 *     Tensor y = x.matmul(w).tanh();                   // launched on s; y.stream() == s.handle()
 *   }
 *   s.synchronize();
 * }
 * }</pre>
 */
public final class CudaStream implements AutoCloseable {
  /** The CUDA calls behind a stream: native ones, or a stand-in in tests on a CPU-only machine. */
  interface Driver {
    long create();

    void destroy(long stream);

    void synchronize(long stream);

    boolean query(long stream);

    void waitStream(long waiter, long waited);

    long eventCreate();

    void eventDestroy(long event);

    void eventRecord(long event, long stream);

    boolean eventQuery(long event);

    void eventSynchronize(long event);

    void streamWaitEvent(long stream, long event);
  }

  /** The native driver: the mk_cuda_* entry points of metakernels.h. */
  static final Driver NATIVE = new Driver() {
    @Override
    public long create() {
      long[] s = new long[1];
      Native.check(MkNative.mk_cuda_stream_create(s), "CudaStream.create");
      return s[0];
    }

    @Override
    public void destroy(long stream) {
      Native.check(MkNative.mk_cuda_stream_destroy(stream), "CudaStream.close");
    }

    @Override
    public void synchronize(long stream) {
      Native.check(MkNative.mk_cuda_stream_synchronize(stream), "CudaStream.synchronize");
    }

    @Override
    public boolean query(long stream) {
      int[] done = new int[1];
      Native.check(MkNative.mk_cuda_stream_query(stream, done), "CudaStream.query");
      return done[0] != 0;
    }

    @Override
    public void waitStream(long waiter, long waited) {
      Native.check(MkNative.mk_cuda_stream_wait_stream(waiter, waited), "CudaStream.waitFor");
    }

    @Override
    public long eventCreate() {
      long[] e = new long[1];
      Native.check(MkNative.mk_cuda_event_create(e), "CudaEvent.create");
      return e[0];
    }

    @Override
    public void eventDestroy(long event) {
      Native.check(MkNative.mk_cuda_event_destroy(event), "CudaEvent.close");
    }

    @Override
    public void eventRecord(long event, long stream) {
      Native.check(MkNative.mk_cuda_event_record(event, stream), "CudaEvent.record");
    }

    @Override
    public boolean eventQuery(long event) {
      int[] done = new int[1];
      Native.check(MkNative.mk_cuda_event_query(event, done), "CudaEvent.query");
      return done[0] != 0;
    }

    @Override
    public void eventSynchronize(long event) {
      Native.check(MkNative.mk_cuda_event_synchronize(event), "CudaEvent.synchronize");
    }

    @Override
    public void streamWaitEvent(long stream, long event) {
      Native.check(MkNative.mk_cuda_stream_wait_event(stream, event), "CudaStream.waitFor");
    }
  };

  private static final AtomicLong IDS = new AtomicLong();
  private static final CudaStream DEFAULT = new CudaStream(NATIVE, 0L, 0L);
  private static final ThreadLocal<CudaStream> CURRENT = ThreadLocal.withInitial(() -> DEFAULT);

  private final Driver driver;
  private final long handle;
  private final long id;
  private volatile boolean closed;

  private CudaStream(Driver driver, long handle, long id) {
    this.driver = driver;
    this.handle = handle;
    this.id = id;
  }

  /** A new stream through {@code driver} (CudaRuntime.newStream; tests pass a stand-in). */
  static CudaStream create(Driver driver) {
    return new CudaStream(driver, driver.create(), IDS.incrementAndGet());
  }

  /**
   * The legacy default stream (handle 0): where work goes outside any {@code useStream} scope.
   * It is never closed.
   *
   * @return the default stream
   */
  public static CudaStream defaultStream() {
    return DEFAULT;
  }

  /**
   * The calling thread's current stream: the innermost open {@link CudaRuntime#useStream}
   * scope's, else the default stream.
   *
   * @return the current stream
   */
  public static CudaStream current() {
    return CURRENT.get();
  }

  static void setCurrent(CudaStream s) {
    CURRENT.set(s);
  }

  /**
   * The native handle ({@code cudaStream_t}), 0 for the default stream.
   *
   * @return the handle
   * @throws IllegalStateException once the stream was closed
   */
  public long handle() {
    if (closed) throw new IllegalStateException(this + " was closed: no work can be launched on it");
    return handle;
  }

  /**
   * The handle, or 0 once the stream was closed (its blocks then belong to the default stream).
   *
   * @return the handle or 0
   */
  public long handleOrDefault() {
    return closed ? 0L : handle;
  }

  /**
   * Whether this is the default stream.
   *
   * @return true for {@link #defaultStream()}
   */
  public boolean isDefault() {
    return handle == 0L;
  }

  /**
   * Whether {@link #close()} ran.
   *
   * @return true once closed
   */
  public boolean isClosed() {
    return closed;
  }

  /**
   * Blocks the calling thread until all work launched on this stream so far has finished.
   *
   * @throws IllegalStateException once closed
   */
  public void synchronize() {
    driver.synchronize(handle());
  }

  /**
   * Whether all work launched on this stream so far has finished (does not block).
   *
   * @return true when the stream is idle
   * @throws IllegalStateException once closed
   */
  public boolean query() {
    return driver.query(handle());
  }

  /**
   * Makes work launched on this stream from now on wait for all work launched on {@code other}
   * so far (an event recorded on {@code other}, waited for on the device: the host does not
   * block). {@code s.waitFor(s)} does nothing.
   *
   * @param other the stream to wait for
   * @throws IllegalStateException when either stream is closed
   */
  public void waitFor(CudaStream other) {
    if (other.driver != driver)
      throw new IllegalArgumentException(this + ".waitFor(" + other + "): streams of different runtimes");
    driver.waitStream(handle(), other.handle());
  }

  /**
   * Makes work launched on this stream from now on wait for {@code event}'s last record.
   *
   * @param event the event
   * @throws IllegalStateException when the stream or the event is closed
   */
  public void waitFor(CudaEvent event) {
    driver.streamWaitEvent(handle(), event.handle());
  }

  /**
   * A new event recorded on this stream now (the caller closes it).
   *
   * @return the event
   */
  public CudaEvent record() {
    CudaEvent e = CudaEvent.create(driver);
    try {
      e.record(this);
    } catch (RuntimeException ex) {
      e.close();
      throw ex;
    }
    return e;
  }

  /**
   * Waits for the stream's work, hands its memory to the default stream and destroys it. The
   * default stream cannot be closed, nor a stream that is current on this thread; a second close
   * is refused.
   *
   * @throws IllegalStateException when closed already, the default stream, or current here
   */
  @Override
  public void close() {
    if (isDefault()) throw new IllegalStateException("the default CUDA stream cannot be closed");
    if (CURRENT.get() == this)
      throw new IllegalStateException(this + " is the current stream of this thread: close its useStream scope first");
    synchronized (this) {
      if (closed) throw new IllegalStateException(this + " was already closed");
      driver.destroy(handle);
      closed = true;
    }
  }

  Driver driver() {
    return driver;
  }

  @Override
  public String toString() {
    return isDefault() ? "CudaStream(default)" : "CudaStream#" + id;
  }
}
