package org.metakernels.runtime;

import static org.bytedeco.cuda.global.cudart.*;

import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.javacpp.Loader;

/**
 * The CUDA side of the runtime layer, through the bytedeco CUDA presets: device discovery, a
 * view of the native caching allocator, host/device copies and attaching cuBLAS (whose products
 * run behind the C ABI, in {@code mk_dense_matmul_forward}). Only touched once {@link #tryInit()}
 * succeeded; on machines without a driver the presets throw {@link UnsatisfiedLinkError} and
 * metakernels stays on the CPU. Programs rarely need it beyond {@link #synchronize()} (for
 * timing) and the allocator's counters.
 *
 * <p>Streams: work goes to the calling thread's current stream, the legacy default stream
 * (handle 0) unless a {@link #useStream(CudaStream)} scope chose one of {@link #newStream()};
 * the rules (ops on the current stream, memory safe across streams, host copies wait) are at
 * {@link CudaStream}.
 *
 * <pre>{@code
 * CudaRuntime.get().synchronize();                       // wait for the GPU (every stream)
 * long live = CudaRuntime.get().allocator().liveBytes();
 * try (CudaStream s = CudaRuntime.get().newStream(); CudaRuntime.StreamScope use = CudaRuntime.useStream(s)) {
 *   Tensor y = x.exp();                                  // runs on s
 * }
 * }</pre>
 */
public final class CudaRuntime {
  private static volatile CudaRuntime instance;

  private final String name;
  private final int driver;
  private final int runtime;
  private final String buildInfo;
  private final CachingAllocator allocator = new CachingAllocator();

  private CudaRuntime(String name, int driver, int runtime, String buildInfo) {
    this.name = name;
    this.driver = driver;
    this.runtime = runtime;
    this.buildInfo = buildInfo;
  }

  /** The artifact that carries libmetakernels_cuda.so. */
  static final String CUDA_FLAVOUR = "org.metakernels:metakernels:" + Loader.getPlatform() + "-cuda";

  /** Whether the CUDA flavour's library is on the class path (metakernels-platform-gpu). */
  static boolean flavourPresent() {
    return MkCudaNative.class.getResource(Loader.getPlatform() + "/" + System.mapLibraryName("metakernels_cuda")) != null;
  }

  /**
   * Tries to bring CUDA up; returns null on success, else why not, naming the missing piece: the
   * CUDA flavour jar, the driver (libcuda.so.1), the CUDA 13 runtime (libcudart.so.13), the JNI
   * side of the CUDA presets, or a device.
   */
  static synchronized String tryInit() {
    if (instance != null) return null;
    if (!flavourPresent())
      return "the CUDA flavour is not on the class path (" + CUDA_FLAVOUR + ", which metakernels-platform-gpu brings)";
    try {
      Loader.load(org.bytedeco.cuda.global.cudart.class);
    } catch (Throwable t) {
      if (!loadable("libcuda.so.1")) return "no CUDA driver (libcuda.so.1 not found)";
      if (!loadable("libcudart.so.13")) return "no CUDA 13 runtime (libcudart.so.13 not on the library path)";
      return "the CUDA presets' JNI library did not load: " + firstLine(t);
    }
    int[] count = new int[1];
    int st = cudaGetDeviceCount(count);
    if (st != 0 || count[0] == 0) return "no CUDA device (cudaGetDeviceCount: status " + st + ", " + count[0] + " devices)";
    String info;
    long table;
    try {
      Loader.load(MkCudaNative.class);
      info = MkCudaNative.mk_cuda_build_info().getString();
      table = MkCudaNative.mk_cuda_kernel_table();
    } catch (Throwable t) {
      return "libmetakernels_cuda did not load: " + firstLine(t);
    }
    if (table == 0) return "libmetakernels_cuda " + info;
    int attach = MkNative.mk_runtime_attach_cuda(table);
    if (attach != Codes.OK) return "attach failed: " + Native.lastError();
    // cuBLAS is optional: without it matmul runs on the built-in CUDA kernel (slow, correct). The
    // presets load libcublas; native finds it by soname and owns the handle, the math mode (the
    // TF32 switch) and the stream of every call.
    String blasNote;
    try {
      Loader.load(org.bytedeco.cuda.global.cublas.class);
      int cs = MkNative.mk_runtime_attach_cublas("libcublas.so.13");
      blasNote = cs == Codes.OK ? "cuBLAS (TF32 while Backend.allowTf32())"
          : "cuBLAS unusable (" + Native.lastError() + "), matmul on the built-in kernel";
    } catch (Throwable t) {
      blasNote = "cuBLAS presets did not load (" + firstLine(t) + "), matmul on the built-in kernel";
    }
    info = info + "; matmul: " + blasNote;
    cudaDeviceProp prop = new cudaDeviceProp();
    cudaGetDeviceProperties(prop, 0);
    int[] drv = new int[1], rt = new int[1];
    cudaDriverGetVersion(drv);
    cudaRuntimeGetVersion(rt);
    instance = new CudaRuntime(prop.name().getString(), drv[0], rt[0], info);
    return null;
  }

  /** Whether the dynamic loader can open {@code lib} (dlopen); used only to name what is missing. */
  static boolean loadable(String lib) {
    try {
      Loader.loadGlobal(lib);
      return true;
    } catch (Throwable t) {
      return false;
    }
  }

  private static String firstLine(Throwable t) {
    String m = String.valueOf(t.getMessage());
    int nl = m.indexOf('\n');
    return t.getClass().getSimpleName() + ": " + (nl >= 0 ? m.substring(0, nl) : m);
  }

  /**
   * The initialised runtime.
   *
   * @return the runtime
   * @throws MetakernelsException when CUDA is unavailable
   */
  public static CudaRuntime get() {
    CudaRuntime r = instance;
    if (r == null) {
      Backend.get().requireCuda("cuda");
      r = instance;
    }
    return r;
  }

  /**
   * Device name, driver and runtime versions, and the CUDA library's build and matmul notes.
   *
   * @return the description
   */
  public String describe() {
    return (isEmulated() ? "EMULATED DEVICE, NOT A GPU (kernels on the host, no timings): " : "") + name + ", driver " + driver / 1000 + "." + (driver % 1000) / 10 + ", runtime " + runtime / 1000 + "."
        + (runtime % 1000) / 10 + "; " + buildInfo;
  }

  /**
   * True when the "device" is the host emulator of tests/gpu-emu (its libmetakernels_cuda.so runs
   * the CUDA kernels on the CPU, one fiber per CUDA thread): results are real, timings are
   * meaningless, so benchmarks refuse to run on it.
   *
   * @return whether the CUDA library is the host emulator
   */
  public boolean isEmulated() {
    return buildInfo.startsWith("host emulator") || name.contains("host emulator");
  }

  /**
   * True when matmul runs on cuBLAS.
   *
   * @return whether cuBLAS is in use (else the built-in CUDA kernel)
   */
  public boolean hasCublas() {
    return MkNative.mk_runtime_has_cublas() != 0;
  }

  /**
   * The device memory allocator every CUDA tensor comes from.
   *
   * @return the allocator
   */
  public CachingAllocator allocator() {
    return allocator;
  }

  static void check(int status, String what) {
    if (status != 0)
      throw new MetakernelsException(what + ": CUDA error " + status + " (" + cudaGetErrorString(status).getString() + ")",
          Codes.ERR_DEVICE);
  }

  /**
   * Copies {@code nbytes} between host and device addresses (synchronous); with both flags false,
   * device to device.
   *
   * @param dst destination address
   * @param src source address
   * @param nbytes bytes to copy
   * @param hostToDevice src on the host, dst on the device
   * @param deviceToHost src on the device, dst on the host
   */
  public void memcpy(long dst, long src, long nbytes, boolean hostToDevice, boolean deviceToHost) {
    memcpy(dst, src, nbytes, hostToDevice, deviceToHost, CudaStream.current());
  }

  /**
   * Copies {@code nbytes} on {@code stream} (after the work launched on it so far) and waits for
   * the copy; with both flags false, device to device.
   *
   * @param dst destination address
   * @param src source address
   * @param nbytes bytes to copy
   * @param hostToDevice src on the host, dst on the device
   * @param deviceToHost src on the device, dst on the host
   * @param stream the stream to copy on
   */
  public void memcpy(long dst, long src, long nbytes, boolean hostToDevice, boolean deviceToHost, CudaStream stream) {
    int kind = hostToDevice ? cudaMemcpyHostToDevice : deviceToHost ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    long h = stream.handle();
    if (h == 0) {
      check(cudaMemcpy(new RawPointer(dst, nbytes), new RawPointer(src, nbytes), nbytes, kind), "cudaMemcpy");
      return;
    }
    // on the stream (a non-blocking stream is not ordered with cudaMemcpy's default stream)
    CUstream_st cs = new CUstream_st(new RawPointer(h, 0));
    check(cudaMemcpyAsync(new RawPointer(dst, nbytes), new RawPointer(src, nbytes), nbytes, kind, cs), "cudaMemcpyAsync");
    stream.synchronize();
  }

  /** Waits until every kernel launched so far, on every stream, has finished. */
  public void synchronize() {
    Native.check(MkNative.mk_device_synchronize(), "CudaRuntime.synchronize");
  }

  /**
   * A new stream (non-blocking: not ordered with the default stream), owned by the caller.
   *
   * @return the stream; close it when done
   */
  public CudaStream newStream() {
    return CudaStream.create(CudaStream.NATIVE);
  }

  /**
   * A new event, owned by the caller.
   *
   * @return the event; close it when done
   */
  public CudaEvent newEvent() {
    return CudaEvent.create(CudaStream.NATIVE);
  }

  /**
   * The calling thread's current stream ({@link CudaStream#current()}).
   *
   * @return the stream kernels launched now run on
   */
  public static CudaStream currentStream() {
    return CudaStream.current();
  }

  /**
   * Makes {@code stream} the calling thread's current stream until the returned scope closes,
   * which restores the previous one; scopes nest and close in reverse order. CUDA tensors created
   * inside allocate for {@code stream} and every op launched inside runs on it. Needs no GPU for
   * the default stream.
   *
   * <pre>{@code
   * try (CudaRuntime.StreamScope use = CudaRuntime.useStream(s)) {
   *   Tensor y = x.exp();          // y.stream() == s.handle()
   * }
   * }</pre>
   *
   * @param stream an open stream
   * @return the scope to close
   * @throws IllegalStateException when the stream is closed
   */
  public static StreamScope useStream(CudaStream stream) {
    if (stream == null) throw new IllegalArgumentException("useStream: stream is null");
    if (stream.isClosed()) throw new IllegalStateException("useStream: " + stream + " was closed");
    return new StreamScope(stream);
  }

  /**
   * The scope of {@link #useStream(CudaStream)}: closing it restores the stream that was
   * current before, on the thread that opened it.
   */
  public static final class StreamScope implements AutoCloseable {
    private final CudaStream stream;
    private final CudaStream previous;
    private final Thread thread = Thread.currentThread();
    private boolean closed;

    private StreamScope(CudaStream stream) {
      this.stream = stream;
      this.previous = CudaStream.current();
      CudaStream.setCurrent(stream);
    }

    /**
     * The stream this scope made current.
     *
     * @return the stream
     */
    public CudaStream stream() {
      return stream;
    }

    /**
     * Restores the previous stream; idempotent.
     *
     * @throws IllegalStateException on another thread, or while an inner scope is still open
     */
    @Override
    public void close() {
      if (closed) return;
      if (Thread.currentThread() != thread)
        throw new IllegalStateException("a useStream scope must be closed on the thread that opened it (" + thread.getName() + ")");
      if (CudaStream.current() != stream)
        throw new IllegalStateException("useStream scopes close in reverse order: the current stream is " + CudaStream.current()
            + ", not " + stream);
      closed = true;
      CudaStream.setCurrent(previous);
    }
  }

  /**
   * The device side of the native caching allocator ({@code mk_device_alloc_on}, the same design
   * as the host's: size classes, a free list per class, the cache emptied and the allocation
   * retried once when cudaMalloc fails), stream-aware: a freed block goes back at once to the
   * stream it was allocated for, to another stream only after the events recorded at its free
   * have completed. Counts are in class-rounded bytes.
   */
  public static final class CachingAllocator {
    CachingAllocator() {}

    /**
     * A device block of at least {@code nbytes}.
     *
     * @param nbytes the size
     * @return the device address
     * @throws OutOfMemoryError when the device has no room even after the cache was emptied
     */
    public long allocate(long nbytes) {
      return allocate(nbytes, CudaStream.current());
    }

    /**
     * A device block of at least {@code nbytes} for {@code stream}.
     *
     * @param nbytes the size
     * @param stream the stream that will use it
     * @return the device address
     * @throws OutOfMemoryError when the device has no room even after the cache was emptied
     * @throws MetakernelsException when the native side refuses the stream
     */
    public long allocate(long nbytes, CudaStream stream) {
      long a = MkNative.mk_device_alloc_on(nbytes, stream.handle());
      if (a == 0) {
        String why = Native.lastError();
        if (why.contains("out of device memory")) throw new OutOfMemoryError("metakernels: " + why);
        throw new MetakernelsException("allocate: " + why, Codes.ERR_INVALID_ARGUMENT);
      }
      return a;
    }

    /**
     * Marks a live block as used by {@code stream} too, so its free waits for that stream's work
     * before another stream gets it (tensors do this themselves when an op reads them on another
     * stream).
     *
     * @param address the block's address
     * @param stream the stream using it
     */
    public void recordStream(long address, CudaStream stream) {
      Native.check(MkNative.mk_device_record_stream(address, stream.handle()), "recordStream");
    }

    /**
     * Bytes of freed blocks that still wait for another stream's work before any stream but
     * their own may reuse them.
     *
     * @return the pending bytes
     */
    public long pendingBytes() {
      return MkNative.mk_device_pending_bytes();
    }

    /**
     * Hands a block of {@link #allocate(long)} back to the cache.
     *
     * @param address the device address
     */
    public void release(long address) {
      MkNative.mk_device_free(address);
    }

    /** Synchronises the device (every stream) and returns every cached block to the driver. */
    public void emptyCache() {
      MkNative.mk_device_empty_cache();
    }

    /**
     * Bytes held by live tensors (size-class rounded).
     *
     * @return the live bytes
     */
    public long liveBytes() {
      return MkNative.mk_device_live_bytes();
    }

    /**
     * Bytes waiting in the cache.
     *
     * @return the cached bytes
     */
    public long cachedBytes() {
      return MkNative.mk_device_cached_bytes();
    }
  }

}
