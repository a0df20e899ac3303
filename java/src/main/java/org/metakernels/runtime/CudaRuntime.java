package org.metakernels.runtime;

import static org.bytedeco.cuda.global.cublas.*;
import static org.bytedeco.cuda.global.cudart.*;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.metakernels.tensor.DType;

/**
 * The CUDA side of the runtime layer, through the bytedeco CUDA presets: device discovery, the
 * caching allocator, host/device copies and cuBLAS. Only touched once {@link #tryInit()}
 * succeeded; on machines without a driver the presets throw {@link UnsatisfiedLinkError} and
 * metakernels stays on the CPU. Programs rarely need it beyond {@link #synchronize()} (for
 * timing) and the allocator's counters.
 *
 * <p>All work goes to the legacy default stream (stream 0), so freed blocks can be reused by the
 * next kernel without events (stream order) and host copies synchronise.
 *
 * <pre>{@code
 * CudaRuntime.get().synchronize();                       // wait for the GPU
 * long live = CudaRuntime.get().allocator().liveBytes();
 * }</pre>
 */
public final class CudaRuntime {
  private static volatile CudaRuntime instance;

  private final String name;
  private final int driver;
  private final int runtime;
  private final String buildInfo;
  private final CachingAllocator allocator = new CachingAllocator();
  private final cublasContext cublas;

  private CudaRuntime(String name, int driver, int runtime, String buildInfo, cublasContext cublas) {
    this.name = name;
    this.driver = driver;
    this.runtime = runtime;
    this.buildInfo = buildInfo;
    this.cublas = cublas;
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
    // cuBLAS is optional: without it matmul runs on the built-in CUDA kernel (slow, correct).
    cublasContext handle = null;
    String blasNote;
    try {
      Loader.load(org.bytedeco.cuda.global.cublas.class);
      handle = new cublasContext();
      int cs = cublasCreate_v2(handle);
      if (cs != 0) {
        blasNote = "cuBLAS unusable (cublasCreate status " + cs + "), matmul on the built-in kernel";
        handle = null;
      } else {
        blasNote = "cuBLAS (TF32 while Backend.allowTf32())";
      }
    } catch (Throwable t) {
      blasNote = "cuBLAS presets did not load (" + firstLine(t) + "), matmul on the built-in kernel";
      handle = null;
    }
    info = info + "; matmul: " + blasNote;
    cudaDeviceProp prop = new cudaDeviceProp();
    cudaGetDeviceProperties(prop, 0);
    int[] drv = new int[1], rt = new int[1];
    cudaDriverGetVersion(drv);
    cudaRuntimeGetVersion(rt);
    instance = new CudaRuntime(prop.name().getString(), drv[0], rt[0], info, handle);
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
    return name + ", driver " + driver / 1000 + "." + (driver % 1000) / 10 + ", runtime " + runtime / 1000 + "."
        + (runtime % 1000) / 10 + "; " + buildInfo;
  }

  /**
   * True when matmul runs on cuBLAS.
   *
   * @return whether cuBLAS is in use (else the built-in CUDA kernel)
   */
  public boolean hasCublas() {
    return cublas != null;
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
    int kind = hostToDevice ? cudaMemcpyHostToDevice : deviceToHost ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    check(cudaMemcpy(new RawPointer(dst, nbytes), new RawPointer(src, nbytes), nbytes, kind), "cudaMemcpy");
  }

  /** Waits until every kernel launched so far has finished. */
  public void synchronize() {
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }

  /**
   * Row-major batched GEMM C = A B (m x k times k x n) through cuBLAS (column-major), computed as
   * Cᵀ = Bᵀ Aᵀ; the built-in CUDA kernel without cuBLAS. Each matrix needs a unit stride on one
   * side (the caller copies otherwise). Strides are in elements; Bs is the batch stride.
   *
   * @param dtype F32 or F64
   * @param batch number of products
   * @param m rows of A and C
   * @param n columns of B and C
   * @param k columns of A, rows of B
   * @param a device address of A
   * @param aBs batch stride of A
   * @param aRs row stride of A
   * @param aCs column stride of A
   * @param b device address of B
   * @param bBs batch stride of B
   * @param bRs row stride of B
   * @param bCs column stride of B
   * @param c device address of C, written contiguous per matrix (row stride n)
   * @param cBs batch stride of C
   */
  public void gemm(DType dtype, long batch, long m, long n, long k, long a, long aBs, long aRs, long aCs, long b,
      long bBs, long bRs, long bCs, long c, long cBs) {
    if (cublas == null) {
      Native.check(MkNative.mk_dense_matmul_forward(Codes.DEVICE_CUDA, dtype.code, batch, m, n, k, a, aBs, aRs, aCs, b,
          bBs, bRs, bCs, c, cBs, 0L), "matmul (built-in CUDA kernel)");
      return;
    }
    // B as the column-major left operand (n x k after its op), A as the right one (k x m)
    long[] ob = operand(k, n, bRs, bCs, "B");
    long[] oa = operand(m, k, aRs, aCs, "A");
    int opB = (int) ob[0], opA = (int) oa[0];
    long ldb = ob[1], lda = oa[1];
    int st;
    if (dtype == DType.F32) {
      syncMathMode();
      st = cublasSgemmStridedBatched(cublas, opB, opA, (int) n, (int) m, (int) k, new FloatPointer(1f),
          new FloatPointer(new RawPointer(b, 0)), (int) ldb, bBs, new FloatPointer(new RawPointer(a, 0)), (int) lda, aBs,
          new FloatPointer(0f), new FloatPointer(new RawPointer(c, 0)), (int) n, cBs, (int) batch);
    } else if (dtype == DType.F64) {
      st = cublasDgemmStridedBatched(cublas, opB, opA, (int) n, (int) m, (int) k, new DoublePointer(1.0),
          new DoublePointer(new RawPointer(b, 0)), (int) ldb, bBs, new DoublePointer(new RawPointer(a, 0)), (int) lda,
          aBs, new DoublePointer(0.0), new DoublePointer(new RawPointer(c, 0)), (int) n, cBs, (int) batch);
    } else {
      throw new MetakernelsException("matmul: dtype " + dtype + " is not supported on CUDA");
    }
    if (st != 0) throw new MetakernelsException("matmul: cuBLAS status " + st + " for [" + batch + ", " + m + ", " + k
        + "] x [" + k + ", " + n + "]", Codes.ERR_DEVICE);
  }

  private int mathMode = CUBLAS_DEFAULT_MATH;

  // The handle follows the runtime's one TF32 switch (mk_runtime_allow_tf32), read per F32 call.
  private synchronized void syncMathMode() {
    int want = MkNative.mk_runtime_allow_tf32() != 0 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
    if (want != mathMode) {
      int st = cublasSetMathMode(cublas, want);
      if (st != 0) throw new MetakernelsException("matmul: cublasSetMathMode status " + st, Codes.ERR_DEVICE);
      mathMode = want;
    }
  }

  // A row-major [r, c] matrix with strides (rs, cs) seen by column-major cuBLAS as Xᵀ:
  // {op, ld}. Unit column stride: stored as Xᵀ already (N); unit row stride: stored as X (T).
  private static long[] operand(long r, long c, long rs, long cs, String name) {
    if (cs == 1 || c == 1) return new long[] {CUBLAS_OP_N, Math.max(Math.max(rs, c), 1)};
    if (rs == 1 || r == 1) return new long[] {CUBLAS_OP_T, Math.max(Math.max(cs, r), 1)};
    throw new MetakernelsException("matmul: cuBLAS needs a unit stride in " + name + " (strides " + rs + ", " + cs + ")");
  }

  /**
   * Caching allocator over cudaMalloc: freed blocks go to a free list per rounded size and are
   * reused in stream order; {@link #emptyCache()} returns them to the driver. Sizes are rounded
   * to 512 bytes below 1 MiB and to 1 MiB above.
   */
  public static final class CachingAllocator {
    private final Map<Long, ArrayDeque<Long>> free = new HashMap<>();
    private long cachedBytes;
    private long liveBytes;

    static long round(long n) {
      if (n <= 0) return 512;
      if (n < (1L << 20)) return (n + 511) / 512 * 512;
      return (n + (1L << 20) - 1) >> 20 << 20;
    }

    /**
     * A device block of at least {@code nbytes}: a cached one of the same rounded size, else a new
     * one (emptying the cache and retrying once when cudaMalloc fails).
     *
     * @param nbytes the size
     * @return the device address
     */
    public synchronized long allocate(long nbytes) {
      long size = round(nbytes);
      ArrayDeque<Long> list = free.get(size);
      if (list != null && !list.isEmpty()) {
        cachedBytes -= size;
        liveBytes += size;
        return list.pop();
      }
      Pointer p = new Pointer();
      int st = cudaMalloc(p, size);
      if (st != 0) {
        cudaGetLastError();
        emptyCache();
        st = cudaMalloc(p, size);
      }
      check(st, "cudaMalloc(" + size + ")");
      liveBytes += size;
      return p.address();
    }

    /**
     * Returns a block to the cache (not to the driver).
     *
     * @param address the block, from {@link #allocate}
     * @param nbytes the size it was allocated with
     */
    public synchronized void release(long address, long nbytes) {
      long size = round(nbytes);
      free.computeIfAbsent(size, s -> new ArrayDeque<>()).push(address);
      cachedBytes += size;
      liveBytes -= size;
    }

    /** Returns every cached block to the driver. */
    public synchronized void emptyCache() {
      cudaDeviceSynchronize();
      for (ArrayDeque<Long> list : free.values())
        for (long a : list) cudaFree(new RawPointer(a, 0));
      free.clear();
      cachedBytes = 0;
    }

    /**
     * Bytes in blocks handed out and not released (rounded sizes).
     *
     * @return the live bytes
     */
    public synchronized long liveBytes() {
      return liveBytes;
    }

    /**
     * Bytes in released blocks kept for reuse.
     *
     * @return the cached bytes
     */
    public synchronized long cachedBytes() {
      return cachedBytes;
    }
  }
}
