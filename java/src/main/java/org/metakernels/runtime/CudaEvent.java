package org.metakernels.runtime;

/**
 * A CUDA event owned by the caller: a point in a stream's work that the host can query or wait
 * for and that other streams can wait for ({@link CudaStream#waitFor(CudaEvent)}). Made by
 * {@link CudaStream#record()} or {@link CudaRuntime#newEvent()}; freed by {@link #close()}.
 *
 * <pre>{@code
 * try (CudaEvent done = producer.record()) {   // after the work launched on producer so far
 *   consumer.waitFor(done);                     // consumer's later work starts after it
 *   boolean finished = done.query();
 * }
 * }</pre>
 */
public final class CudaEvent implements AutoCloseable {
  private final CudaStream.Driver driver;
  private final long handle;
  private volatile boolean closed;

  private CudaEvent(CudaStream.Driver driver, long handle) {
    this.driver = driver;
    this.handle = handle;
  }

  static CudaEvent create(CudaStream.Driver driver) {
    return new CudaEvent(driver, driver.eventCreate());
  }

  /**
   * The native handle ({@code cudaEvent_t}).
   *
   * @return the handle
   * @throws IllegalStateException once closed
   */
  public long handle() {
    if (closed) throw new IllegalStateException("CudaEvent was closed");
    return handle;
  }

  /**
   * Records the event at the current end of {@code stream}'s work (a later record replaces it).
   *
   * @param stream the stream
   * @throws IllegalStateException when the event or the stream is closed
   */
  public void record(CudaStream stream) {
    driver.eventRecord(handle(), stream.handle());
  }

  /**
   * Whether the work before the last record has finished (true for an event never recorded).
   *
   * @return true when complete
   */
  public boolean query() {
    return driver.eventQuery(handle());
  }

  /** Blocks until the work before the last record has finished. */
  public void synchronize() {
    driver.eventSynchronize(handle());
  }

  /**
   * Destroys the event; a second close is refused.
   *
   * @throws IllegalStateException when closed already
   */
  @Override
  public synchronized void close() {
    if (closed) throw new IllegalStateException("CudaEvent was already closed");
    driver.eventDestroy(handle);
    closed = true;
  }
}
