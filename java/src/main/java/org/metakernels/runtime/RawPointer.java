package org.metakernels.runtime;

import org.bytedeco.javacpp.Pointer;

/**
 * A JavaCPP {@link Pointer} over an address owned elsewhere (a tensor's storage): no
 * deallocator, so wrapping never allocates or frees native memory. Part of the runtime layer:
 * {@code new FloatPointer(new RawPointer(t.address("read"), 4L * n)).get(out)}.
 */
public final class RawPointer extends Pointer {
  /**
   * A view of {@code capacityBytes} bytes at {@code address}.
   *
   * @param address the native address
   * @param capacityBytes the bytes it may reach (limit and capacity)
   */
  public RawPointer(long address, long capacityBytes) {
    this.address = address;
    this.position = 0;
    this.limit = capacityBytes;
    this.capacity = capacityBytes;
  }
}
