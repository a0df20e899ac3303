package org.metakernels.runtime;

import org.bytedeco.javacpp.Pointer;

/**
 * A JavaCPP {@link Pointer} over an address owned elsewhere (a tensor's storage): no
 * deallocator, so wrapping never allocates native memory.
 */
public final class RawPointer extends Pointer {
  public RawPointer(long address, long capacityBytes) {
    this.address = address;
    this.position = 0;
    this.limit = capacityBytes;
    this.capacity = capacityBytes;
  }
}
