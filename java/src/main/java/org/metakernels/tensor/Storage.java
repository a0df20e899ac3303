package org.metakernels.tensor;

import org.metakernels.runtime.Backend;
import org.metakernels.runtime.CudaRuntime;
import org.metakernels.runtime.CudaStream;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;

/**
 * A block of native memory with one owner: a {@link Scope}, or the user when it was made
 * outside any scope (then {@link Tensor#close()} frees it). Views share a storage; once it is
 * freed every tensor on it throws {@link IllegalStateException}.
 */
public final class Storage {
  private long address;
  private final long nbytes;
  private final Device device;
  private Scope owner;
  private boolean closed;
  private int version;
  // CUDA: the stream the block was allocated for (the current stream then), and the other
  // streams already recorded as using it (mk_device_record_stream once per stream)
  private final CudaStream stream;
  private volatile CudaStream[] usedBy = NO_STREAMS;
  private static final CudaStream[] NO_STREAMS = {};

  private Storage(long address, long nbytes, Device device, CudaStream stream) {
    this.address = address;
    this.nbytes = nbytes;
    this.device = device;
    this.stream = stream;
  }

  static Storage allocate(long nbytes, Device device) {
    if (nbytes < 0) throw new MetakernelsException("allocate: negative size " + nbytes);
    long addr;
    CudaStream stream = null;
    if (device == Device.CPU) {
      Backend.get();
      addr = MkNative.mk_host_alloc(nbytes);
      if (addr == 0) throw new OutOfMemoryError("metakernels: cannot allocate " + nbytes + " host bytes (" + MkNative.mk_last_error().getString() + ")");
    } else {
      Backend.get().requireCuda("allocate");
      stream = CudaStream.current();
      addr = CudaRuntime.get().allocator().allocate(nbytes, stream);
    }
    Storage s = new Storage(addr, nbytes, device, stream);
    Scope.adopt(s);
    return s;
  }

  /**
   * The base address; throws {@link IllegalStateException} once freed.
   *
   * @param op the caller's name, for the exception's message
   * @return the address of byte 0
   */
  public long address(String op) {
    if (closed) throw new IllegalStateException(op + ": tensor storage was already freed (its scope or the tensor was closed)");
    return address;
  }

  /**
   * The size in bytes.
   *
   * @return the byte count
   */
  public long nbytes() {
    return nbytes;
  }

  /**
   * The stream a CUDA storage was allocated for (the current stream when it was made; null on
   * the CPU). Once that stream is closed its memory belongs to the default stream.
   *
   * @return the stream or null
   */
  public CudaStream stream() {
    return stream;
  }

  /**
   * The handle of {@link #stream()}: 0 on the CPU, for the default stream, or once the stream
   * was closed.
   *
   * @return the stream handle
   */
  public long streamHandle() {
    return stream == null ? 0L : stream.handleOrDefault();
  }

  /**
   * Records that work on {@code s} uses this CUDA storage (once per stream), so that its free
   * waits for that work before the block goes to another stream. Nothing for its own stream or on
   * the CPU.
   */
  void recordUse(CudaStream s) {
    if (stream == null || closed || s.handleOrDefault() == streamHandle()) return;
    CudaStream[] used = usedBy;
    for (CudaStream u : used)
      if (u == s) return;
    synchronized (this) {
      if (closed) return;
      CudaRuntime.get().allocator().recordStream(address, s);
      CudaStream[] grown = java.util.Arrays.copyOf(usedBy, usedBy.length + 1);
      grown[grown.length - 1] = s;
      usedBy = grown;
    }
  }

  /**
   * Where the memory lives.
   *
   * @return the device
   */
  public Device device() {
    return device;
  }

  /**
   * True once the memory was freed.
   *
   * @return whether the storage is freed
   */
  public boolean isClosed() {
    return closed;
  }

  /**
   * Bumped by every in-place write; autograd nodes compare it with what they saved.
   *
   * @return the number of in-place writes so far
   */
  public int version() {
    return version;
  }

  /** Records an in-place write (the ops reach it through {@code Internals}). */
  void bumpVersion() {
    version++;
  }

  /**
   * The scope that frees this storage, or null when the caller owns it.
   *
   * @return the owning scope or null
   */
  public Scope owner() {
    return owner;
  }

  void setOwner(Scope s) {
    owner = s;
  }

  /** Frees the memory now (idempotent). */
  void free() {
    if (closed) return;
    closed = true;
    if (device == Device.CPU) MkNative.mk_host_free(address);
    else CudaRuntime.get().allocator().release(address);
    address = 0;
  }
}
