package org.metakernels.tensor;

import org.metakernels.runtime.Backend;
import org.metakernels.runtime.CudaRuntime;
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

  private Storage(long address, long nbytes, Device device) {
    this.address = address;
    this.nbytes = nbytes;
    this.device = device;
  }

  static Storage allocate(long nbytes, Device device) {
    if (nbytes < 0) throw new MetakernelsException("allocate: negative size " + nbytes);
    long addr;
    if (device == Device.CPU) {
      Backend.get();
      addr = MkNative.mk_host_alloc(nbytes);
      if (addr == 0) throw new OutOfMemoryError("metakernels: cannot allocate " + nbytes + " host bytes (" + MkNative.mk_last_error().getString() + ")");
    } else {
      Backend.get().requireCuda("allocate");
      addr = CudaRuntime.get().allocator().allocate(nbytes);
    }
    Storage s = new Storage(addr, nbytes, device);
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
