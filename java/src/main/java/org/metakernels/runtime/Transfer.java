package org.metakernels.runtime;

import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * Copies tensors between the host and a CUDA device (contiguous result); part of the runtime
 * layer, behind {@link Tensor#to(Device)}.
 */
public final class Transfer {
  private Transfer() {}

  /**
   * A contiguous copy of {@code x} on {@code to} (a plain copy when x is already there); not
   * recorded. Runs on the current stream after the work of x's own stream, and returns once the
   * copy is done. {@code Transfer.copy(x, Device.CUDA)}: x's shape and dtype on the GPU.
   *
   * @param x the tensor
   * @param to the target device
   * @return the copy
   * @throws MetakernelsException when a CUDA side is needed and unavailable
   */
  public static Tensor copy(Tensor x, Device to) {
    x.address("to(" + to + ")");
    if (x.device() == to) return x.copyContiguous();
    Backend.get().requireCuda("to(" + to + ")");
    // the copy runs on the current stream; a device source made on another stream is waited for
    // first (a host copy must see finished values), on the device, then the copy itself is waited for
    CudaStream current = CudaStream.current();
    if (x.device() == Device.CUDA && x.stream() != current.handle())
      Native.check(MkNative.mk_cuda_stream_wait_stream(current.handle(), x.stream()), "to(" + to + ") " + x.describe());
    Tensor src = x.isContiguous() ? x : x.copyContiguous();
    Tensor y = Tensor.empty(x.shape(), x.dtype(), to);
    long nbytes = x.numel() * x.dtype().size;
    if (nbytes > 0)
      CudaRuntime.get().memcpy(y.address("to"), src.address("to"), nbytes, to == Device.CUDA, to == Device.CPU);
    return y;
  }
}
