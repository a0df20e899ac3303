package org.metakernels.runtime;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of {@code native/include/metakernels.h} (libmetakernels): one static method
 * per C function, same name, same argument order. Pointers travel as raw addresses
 * ({@code long}); shapes and strides as {@code long[]}. Nothing but this class and
 * {@link MkCudaNative} touches JNI; callers go through {@link Native}, which turns statuses into
 * {@link MetakernelsException}s.
 */
@Platform(include = "metakernels.h", link = "metakernels")
public final class MkNative {
  static {
    Loader.load();
  }

  private MkNative() {}

  // ---- runtime
  public static native int mk_abi_version();

  public static native @Cast("const char*") BytePointer mk_last_error();

  public static native int mk_runtime_cpu_isa();

  public static native int mk_runtime_set_cpu_isa(int isa);

  public static native int mk_runtime_num_threads();

  public static native int mk_runtime_set_num_threads(int n);

  public static native int mk_runtime_attach_blas(String soname);

  public static native int mk_runtime_has_blas();

  public static native int mk_runtime_attach_cuda(@Cast("const void*") long table);

  public static native int mk_runtime_has_cuda();

  public static native int mk_runtime_cuda_device_count();

  public static native int mk_runtime_cuda_synchronize(@Cast("void*") long stream);

  // ---- host memory
  public static native @Cast("intptr_t") long mk_host_alloc(@Cast("int64_t") long nbytes);

  public static native void mk_host_free(@Cast("void*") long ptr);

  public static native @Cast("int64_t") long mk_host_live_bytes();

  public static native @Cast("int64_t") long mk_host_cached_bytes();

  public static native void mk_host_empty_cache();

  public static native int mk_host_set_cache_limit(@Cast("int64_t") long bytes);

  // ---- tensor
  public static native int mk_tensor_fill_forward(int device, int dtype, @Cast("int64_t") long n,
      @Cast("void*") long dst, double value, @Cast("void*") long stream);

  public static native int mk_tensor_copy_forward(int device, int dtype, int rank,
      @Cast("const int64_t*") long[] shape, @Cast("const void*") long src,
      @Cast("const int64_t*") long[] srcStrides, @Cast("void*") long dst,
      @Cast("const int64_t*") long[] dstStrides, @Cast("void*") long stream);

  public static native int mk_tensor_cast_forward(int device, int srcDtype, int dstDtype,
      @Cast("int64_t") long n, @Cast("const void*") long src, @Cast("void*") long dst,
      @Cast("void*") long stream);

  public static native int mk_tensor_random_forward(int device, int dtype, int dist,
      @Cast("int64_t") long n, @Cast("void*") long dst, @Cast("int64_t") long seed, double a,
      double b, @Cast("void*") long stream);

  // ---- dense
  public static native int mk_dense_unary_forward(int device, int dtype, int op, int rank,
      @Cast("const int64_t*") long[] shape, @Cast("const void*") long x,
      @Cast("const int64_t*") long[] xStrides, @Cast("void*") long y, double p,
      @Cast("void*") long stream);

  public static native int mk_dense_binary_forward(int device, int dtype, int op, int rank,
      @Cast("const int64_t*") long[] shape, @Cast("const void*") long a,
      @Cast("const int64_t*") long[] aStrides, @Cast("const void*") long b,
      @Cast("const int64_t*") long[] bStrides, @Cast("void*") long out, @Cast("void*") long stream);

  public static native int mk_dense_where_forward(int device, int dtype, int rank,
      @Cast("const int64_t*") long[] shape, @Cast("const void*") long cond,
      @Cast("const int64_t*") long[] cStrides, @Cast("const void*") long a,
      @Cast("const int64_t*") long[] aStrides, @Cast("const void*") long b,
      @Cast("const int64_t*") long[] bStrides, @Cast("void*") long out, @Cast("void*") long stream);

  public static native int mk_dense_reduce_forward(int device, int dtype, int op,
      @Cast("int64_t") long outer, @Cast("int64_t") long len, @Cast("int64_t") long inner,
      @Cast("const void*") long x, @Cast("void*") long y, @Cast("int64_t*") long indices,
      @Cast("void*") long stream);

  public static native int mk_dense_softmax_forward(int device, int dtype, int log,
      @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("const void*") long x,
      @Cast("void*") long y, @Cast("void*") long stream);

  public static native int mk_dense_matmul_forward(int device, int dtype, @Cast("int64_t") long batch,
      @Cast("int64_t") long m, @Cast("int64_t") long n, @Cast("int64_t") long k,
      @Cast("const void*") long a, @Cast("int64_t") long aBs, @Cast("int64_t") long aRs,
      @Cast("int64_t") long aCs, @Cast("const void*") long b, @Cast("int64_t") long bBs,
      @Cast("int64_t") long bRs, @Cast("int64_t") long bCs, @Cast("void*") long c,
      @Cast("int64_t") long cBs, @Cast("void*") long stream);

  public static native int mk_dense_index_select_forward(int device, int dtype,
      @Cast("int64_t") long outer, @Cast("int64_t") long srcLen, @Cast("int64_t") long inner,
      @Cast("const void*") long x, @Cast("const int64_t*") long idx, @Cast("int64_t") long nIdx,
      @Cast("void*") long y, @Cast("void*") long stream);

  public static native int mk_dense_index_add_forward(int device, int dtype,
      @Cast("int64_t") long outer, @Cast("int64_t") long dstLen, @Cast("int64_t") long inner,
      @Cast("void*") long dst, @Cast("const int64_t*") long idx, @Cast("int64_t") long nIdx,
      @Cast("const void*") long src, @Cast("void*") long stream);

  public static native int mk_dense_gather_forward(int device, int dtype,
      @Cast("int64_t") long outer, @Cast("int64_t") long srcLen, @Cast("int64_t") long inner,
      @Cast("const void*") long x, @Cast("const int64_t*") long idx, @Cast("int64_t") long idxLen,
      @Cast("void*") long y, @Cast("void*") long stream);

  public static native int mk_dense_scatter_add_forward(int device, int dtype,
      @Cast("int64_t") long outer, @Cast("int64_t") long dstLen, @Cast("int64_t") long inner,
      @Cast("void*") long dst, @Cast("const int64_t*") long idx, @Cast("int64_t") long idxLen,
      @Cast("const void*") long src, @Cast("void*") long stream);

  // ---- linear attention
  public static native int mk_linear_attention_product_forward(int device, int dtype,
      @Cast("int64_t") long groups, @Cast("int64_t") long nq, @Cast("int64_t") long nk,
      @Cast("int64_t") long dk, @Cast("int64_t") long dv, @Cast("const void*") long q,
      @Cast("const void*") long k, @Cast("const void*") long v, @Cast("void*") long out, int mask,
      @Cast("void*") long stream);

  public static native int mk_linear_attention_momentum_forward(int device, int dtype,
      @Cast("int64_t") long groups, @Cast("int64_t") long n, @Cast("int64_t") long d,
      @Cast("const void*") long v, @Cast("void*") long out, double decay, int reverse,
      @Cast("void*") long stream);

  // ---- softmax attention
  public static native @Cast("int64_t") long mk_attention_softmax_workspace(int device, int dtype,
      @Cast("int64_t") long batch, @Cast("int64_t") long heads, @Cast("int64_t") long kvHeads,
      @Cast("int64_t") long nq, @Cast("int64_t") long nk, @Cast("int64_t") long d, @Cast("int64_t") long dv);

  public static native int mk_attention_softmax_forward(int device, int dtype, @Cast("int64_t") long batch,
      @Cast("int64_t") long heads, @Cast("int64_t") long kvHeads, @Cast("int64_t") long nq,
      @Cast("int64_t") long nk, @Cast("int64_t") long d, @Cast("int64_t") long dv, @Cast("const void*") long q,
      @Cast("const void*") long k, @Cast("const void*") long v, @Cast("const void*") long bias,
      @Cast("int64_t") long biasBs, @Cast("int64_t") long biasHs, @Cast("const int64_t*") long keyLengths,
      double scale, int flags, @Cast("void*") long out, @Cast("void*") long lse, @Cast("void*") long workspace,
      @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

  public static native int mk_attention_softmax_backward(int device, int dtype, @Cast("int64_t") long batch,
      @Cast("int64_t") long heads, @Cast("int64_t") long kvHeads, @Cast("int64_t") long nq,
      @Cast("int64_t") long nk, @Cast("int64_t") long d, @Cast("int64_t") long dv, @Cast("const void*") long q,
      @Cast("const void*") long k, @Cast("const void*") long v, @Cast("const void*") long bias,
      @Cast("int64_t") long biasBs, @Cast("int64_t") long biasHs, @Cast("const int64_t*") long keyLengths,
      double scale, int flags, @Cast("const void*") long out, @Cast("const void*") long lse,
      @Cast("const void*") long dout, @Cast("void*") long dq, @Cast("void*") long dk, @Cast("void*") long dvOut,
      @Cast("void*") long dbiasFull, @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes,
      @Cast("void*") long stream);

  public static native int mk_attention_softmax_backward_backward(int device, int dtype,
      @Cast("int64_t") long batch, @Cast("int64_t") long heads, @Cast("int64_t") long kvHeads,
      @Cast("int64_t") long nq, @Cast("int64_t") long nk, @Cast("int64_t") long d, @Cast("int64_t") long dv,
      @Cast("const void*") long q, @Cast("const void*") long k, @Cast("const void*") long v,
      @Cast("const void*") long bias, @Cast("int64_t") long biasBs, @Cast("int64_t") long biasHs,
      @Cast("const int64_t*") long keyLengths, double scale, int flags, @Cast("const void*") long out,
      @Cast("const void*") long lse, @Cast("const void*") long dout, @Cast("const void*") long gDq,
      @Cast("const void*") long gDk, @Cast("const void*") long gDv, @Cast("const void*") long gDbiasFull,
      @Cast("void*") long gq, @Cast("void*") long gk, @Cast("void*") long gv, @Cast("void*") long gDout,
      @Cast("void*") long gBiasFull, @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes,
      @Cast("void*") long stream);

  public static native int mk_attention_softmax_jvp(int device, int dtype, @Cast("int64_t") long batch,
      @Cast("int64_t") long heads, @Cast("int64_t") long kvHeads, @Cast("int64_t") long nq,
      @Cast("int64_t") long nk, @Cast("int64_t") long d, @Cast("int64_t") long dv, @Cast("const void*") long q,
      @Cast("const void*") long k, @Cast("const void*") long v, @Cast("const void*") long bias,
      @Cast("int64_t") long biasBs, @Cast("int64_t") long biasHs, @Cast("const int64_t*") long keyLengths,
      double scale, int flags, @Cast("const void*") long out, @Cast("const void*") long lse,
      @Cast("const void*") long tq, @Cast("const void*") long tk, @Cast("const void*") long tv,
      @Cast("const void*") long tbiasFull, @Cast("void*") long tout, @Cast("void*") long tlse,
      @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);
}
