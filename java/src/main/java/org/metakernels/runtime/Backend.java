package org.metakernels.runtime;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.Loader;
import org.metakernels.tensor.Device;

/**
 * Loads the native libraries once and decides the default device: CUDA when the CUDA library
 * loads and a device exists, else the CPU. {@code -Dmetakernels.device=cpu|cuda} overrides
 * (asking for CUDA where there is none fails at start-up with the reason);
 * {@code -Dmetakernels.threads=N} sets the CPU threads (for calls from every Java thread). {@link #describe()} says what was
 * chosen and why (the {@code info} command prints it).
 */
public final class Backend {
  /**
   * The most CPU threads {@code -Dmetakernels.threads} may ask for (libgomp allocates per thread
   * up front: a mistyped count would exhaust memory instead of failing).
   */
  public static final int MAX_THREADS = 4096;

  private static volatile Backend instance;

  private final Device defaultDevice;
  private final boolean cudaAvailable;
  private final String cudaReason;
  private final boolean blas;
  private final String blasReason;
  private final String requested;

  private Backend() {
    // the JNI glue and libmetakernels
    int abi = MkNative.mk_abi_version();
    if (abi != Codes.ABI_VERSION)
      throw new IllegalStateException("metakernels: the native library has ABI " + abi + ", these classes expect "
          + Codes.ABI_VERSION + " (a libmetakernels from another build is on the library path)");
    String threads = System.getProperty("metakernels.threads");
    // applies to native calls from every Java thread (0 = the OpenMP default); a bad value fails here
    if (threads != null) {
      int n;
      try {
        n = Integer.parseInt(threads.trim());
      } catch (NumberFormatException e) {
        n = -1;
      }
      if (n < 0 || n > MAX_THREADS)
        throw new MetakernelsException("-Dmetakernels.threads=" + threads + ": not a thread count (expected 0 to "
            + MAX_THREADS + "; 0 = the OpenMP default)", Codes.ERR_INVALID_ARGUMENT);
      Native.check(MkNative.mk_runtime_set_num_threads(n), "-Dmetakernels.threads=" + threads);
    }
    // the one TF32 switch lives in native (mk_runtime_set_allow_tf32): attention and cuBLAS read it
    String tf32 = System.getProperty("metakernels.tf32");
    if (tf32 != null && !tf32.strip().equalsIgnoreCase("true") && !tf32.strip().equalsIgnoreCase("false"))
      throw new MetakernelsException("-Dmetakernels.tf32=" + tf32 + ": expected true or false", Codes.ERR_INVALID_ARGUMENT);
    if (tf32 != null && tf32.strip().equalsIgnoreCase("true")) MkNative.mk_runtime_set_allow_tf32(1);
    String isa = System.getProperty("metakernels.isa");
    if (isa != null) setCpuIsa(isa);

    boolean blasOk = false;
    String blasWhy;
    try {
      Loader.load(org.bytedeco.openblas.global.openblas_nolapack.class);
      int st = MkNative.mk_runtime_attach_blas("libopenblas.so.0");
      blasOk = st == Codes.OK;
      blasWhy = blasOk ? "OpenBLAS (bytedeco preset; " + MkNative.mk_runtime_blas_info().getString() + ")"
          : "OpenBLAS not usable: " + Native.lastError();
    } catch (Throwable t) {
      blasWhy = "OpenBLAS preset failed to load (" + t + "); matmul uses the built-in kernel";
    }
    this.blas = blasOk;
    this.blasReason = blasWhy;

    requested = System.getProperty("metakernels.device", "auto").trim().toLowerCase();
    if (!requested.equals("auto") && !requested.equals("cpu") && !requested.equals("cuda"))
      throw new IllegalStateException("metakernels.device must be auto, cpu or cuda, got '" + requested + "'");
    boolean cuda = false;
    String why;
    if (requested.equals("cpu")) {
      why = "not tried: -Dmetakernels.device=cpu";
    } else {
      String failure = CudaRuntime.tryInit();
      cuda = failure == null;
      why = cuda ? CudaRuntime.get().describe() : failure;
    }
    this.cudaAvailable = cuda;
    this.cudaReason = why;
    // one line where the CUDA flavour is installed but cannot run (no driver, no device, ...);
    // silence where the program chose the CPU flavour alone
    if (!cuda && requested.equals("auto") && CudaRuntime.flavourPresent())
      System.getLogger("org.metakernels").log(System.Logger.Level.INFO, "metakernels: running on the CPU: " + why);
    if (requested.equals("cuda") && !cuda)
      throw new IllegalStateException("metakernels: -Dmetakernels.device=cuda but CUDA is unavailable: " + why);
    this.defaultDevice = cuda && !requested.equals("cpu") ? Device.CUDA : Device.CPU;
  }

  /**
   * The process-wide backend, initialised on first use (loads the libraries, attaches OpenBLAS
   * and, when possible, CUDA): {@code Backend.get().describe()}.
   *
   * @return the backend
   * @throws IllegalStateException when the native library's ABI differs from these classes', or
   *     {@code -Dmetakernels.device=cuda} is set where CUDA is unavailable
   */
  public static Backend get() {
    Backend b = instance;
    if (b == null) {
      synchronized (Backend.class) {
        b = instance;
        if (b == null) instance = b = new Backend();
      }
    }
    return b;
  }

  /**
   * The device ops use when a program asks for the default: CUDA when available (unless
   * {@code -Dmetakernels.device=cpu}), else the CPU.
   *
   * @return the default device
   */
  public Device defaultDevice() {
    return defaultDevice;
  }

  /**
   * True when the CUDA library loaded and a device exists; false under
   * {@code -Dmetakernels.device=cpu}, which does not try.
   *
   * @return whether CUDA tensors can be made
   */
  public boolean cudaAvailable() {
    return cudaAvailable;
  }

  /**
   * Why CUDA is or is not in use.
   *
   * @return the device and driver, or the reason it failed
   */
  public String cudaReason() {
    return cudaReason;
  }

  /**
   * True when CPU matmul runs on OpenBLAS (else on the built-in kernel).
   *
   * @return whether OpenBLAS is attached
   */
  public boolean hasBlas() {
    return blas;
  }

  /**
   * Throws a {@link MetakernelsException} naming {@code op} when CUDA is unavailable.
   *
   * @param op the caller's name, for the message
   */
  public void requireCuda(String op) {
    if (!cudaAvailable) throw new MetakernelsException(op + ": CUDA is unavailable (" + cudaReason + ")", Codes.ERR_NO_DEVICE);
  }

  /**
   * Whether F32 work on CUDA may use TF32 tensor cores (10-bit mantissa products, F32 sums): the
   * softmax-attention forward and backward, the linear-attention product (every derivative order:
   * its gradients are the same product) and the cuBLAS matmuls. One switch, kept by the native
   * runtime ({@code mk_runtime_allow_tf32}) and read by every call. Off by default;
   * {@code -Dmetakernels.tf32=true} turns it on at start. The CPU ignores it.
   *
   * @return the current setting
   */
  public static boolean allowTf32() {
    Native.ensureLoaded();
    return MkNative.mk_runtime_allow_tf32() != 0;
  }

  /**
   * Sets {@link #allowTf32()} for the attention and linear-attention kernels and cuBLAS from the next
   * call on.
   *
   * <pre>{@code
   * Backend.setAllowTf32(true);   // F32 attention on CUDA: TF32 tensor cores where the tiles fit
   * }</pre>
   *
   * @param allow true to allow TF32
   */
  public static void setAllowTf32(boolean allow) {
    Native.ensureLoaded();  // reads -Dmetakernels.tf32 first, so this call has the last word
    MkNative.mk_runtime_set_allow_tf32(allow ? 1 : 0);
  }

  /**
   * Chooses the instruction set of the CPU kernels: {@code "avx2"}, {@code "avx512"} or
   * {@code "auto"} (the best this CPU has; the default). Also read from
   * {@code -Dmetakernels.isa}. Both builds compute the same results to rounding; forcing AVX2
   * on an AVX-512 machine tests the fallback path.
   *
   * @param isa the name, case-insensitive
   * @throws MetakernelsException when the CPU lacks the requested ISA or the name is unknown
   */
  public static void setCpuIsa(String isa) {
    int level = switch (isa.trim().toLowerCase()) {
      case "auto", "" -> Codes.CPU_ISA_AUTO;
      case "avx2" -> Codes.CPU_ISA_AVX2;
      case "avx512", "avx-512" -> Codes.CPU_ISA_AVX512;
      default -> throw new MetakernelsException(
          "Backend.setCpuIsa: unknown ISA '" + isa + "' (expected avx2, avx512 or auto)", Codes.ERR_INVALID_ARGUMENT);
    };
    int st = MkNative.mk_runtime_set_cpu_isa(level);
    if (st != Codes.OK) throw new MetakernelsException("Backend.setCpuIsa: " + Native.lastError(), st);
  }

  /**
   * Host memory: freed blocks of 64 KiB and more are cached by size class and reused (no page
   * faults for loops of same-shaped tensors).
   *
   * @return the bytes the cache holds
   */
  public static long hostCachedBytes() {
    return MkNative.mk_host_cached_bytes();
  }

  /** Frees every cached host block (live tensors are untouched). */
  public static void emptyHostCache() {
    MkNative.mk_host_empty_cache();
  }

  /**
   * Caps the host block cache (default 1 GiB; 0 disables it).
   *
   * @param bytes the cap
   */
  public static void setHostCacheLimit(long bytes) {
    Native.check(MkNative.mk_host_set_cache_limit(bytes), "Backend.setHostCacheLimit(" + bytes + ")");
  }

  /**
   * The instruction set the CPU kernels use.
   *
   * @return "AVX-512" or "AVX2"
   */
  public String cpuIsa() {
    return MkNative.mk_runtime_cpu_isa() == Codes.CPU_ISA_AVX512 ? "AVX-512" : "AVX2";
  }

  /**
   * The OpenMP threads of the CPU kernels ({@code -Dmetakernels.threads} sets them).
   *
   * @return the thread count
   */
  public int cpuThreads() {
    return MkNative.mk_runtime_num_threads();
  }

  /**
   * What was chosen and why: device, CPU kernels, matmul, CUDA and the native ABI, one line each
   * (the {@code info} command prints them).
   *
   * @return the lines
   */
  public List<String> describe() {
    List<String> l = new ArrayList<>();
    l.add("device:        " + defaultDevice + (requested.equals("auto") ? " (auto)" : " (-Dmetakernels.device=" + requested + ")"));
    l.add("cpu kernels:   " + cpuIsa() + ", " + cpuThreads() + " OpenMP threads");
    l.add("cpu matmul:    " + blasReason);
    l.add("cuda:          " + (cudaAvailable ? "available: " : "unavailable: ") + cudaReason);
    l.add("native ABI:    " + MkNative.mk_abi_version());
    return l;
  }

  /**
   * {@link #describe()} joined with newlines.
   *
   * @return the text
   */
  public String describeLine() {
    return String.join("\n", describe());
  }
}
