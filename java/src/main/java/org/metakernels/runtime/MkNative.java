package org.metakernels.runtime;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.MemberGetter;
import org.bytedeco.javacpp.annotation.MemberSetter;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of {@code native/include/metakernels.h} (libmetakernels): one static method
 * per C function, same name, same argument order. Pointers travel as raw addresses
 * ({@code long}); shapes and strides as {@code long[]}. Nothing but this class and
 * {@link MkCudaNative} touches JNI; callers go through {@link Native}, which turns statuses into
 * {@link MetakernelsException}s.
 */
@Platform(include = "metakernels.h", link = "metakernels", preload = "metakernels_ompwait")
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

  public static native int mk_runtime_set_allow_tf32(int allow);

  public static native int mk_runtime_allow_tf32();

  public static native int mk_runtime_attach_blas(String soname);

  public static native @Cast("const char*") BytePointer mk_runtime_blas_info();

  public static native int mk_runtime_attach_cublas(String soname);

  public static native int mk_runtime_has_cublas();

  public static native int mk_runtime_has_blas();

  public static native int mk_runtime_attach_cuda(@Cast("const void*") long table);

  public static native int mk_runtime_has_cuda();

  public static native int mk_runtime_cuda_device_count();

  public static native int mk_runtime_cuda_synchronize(@Cast("void*") long stream);

  public static native int mk_runtime_noop(int device, @Cast("void*") long stream);

  // ---- host memory
  public static native @Cast("intptr_t") long mk_host_alloc(@Cast("int64_t") long nbytes);

  public static native void mk_host_free(@Cast("void*") long ptr);

  public static native @Cast("int64_t") long mk_host_live_bytes();

  public static native @Cast("int64_t") long mk_host_cached_bytes();

  public static native void mk_host_empty_cache();

  public static native int mk_host_set_cache_limit(@Cast("int64_t") long bytes);

  public static native @Cast("intptr_t") long mk_device_alloc(@Cast("int64_t") long nbytes);

  public static native void mk_device_free(@Cast("void*") long ptr);

  public static native @Cast("int64_t") long mk_device_live_bytes();

  public static native @Cast("int64_t") long mk_device_cached_bytes();

  public static native void mk_device_empty_cache();

  public static native int mk_device_set_cache_limit(@Cast("int64_t") long bytes);

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
      @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

  public static native int mk_linear_attention_product_strided_forward(int device, int dtype,
      @Cast("int64_t") long batch, @Cast("int64_t") long heads, @Cast("int64_t") long nq,
      @Cast("int64_t") long nk, @Cast("int64_t") long dk, @Cast("int64_t") long dv,
      @Cast("const void*") long q, @Cast("const int64_t*") long[] qStrides,
      @Cast("const void*") long k, @Cast("const int64_t*") long[] kStrides,
      @Cast("const void*") long v, @Cast("const int64_t*") long[] vStrides,
      @Cast("void*") long out, @Cast("const int64_t*") long[] outStrides, int mask,
      @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

  public static native @Cast("int64_t") long mk_linear_attention_product_workspace(int device, int dtype,
      @Cast("int64_t") long dk, @Cast("int64_t") long dv);

  public static native int mk_linear_attention_momentum_forward(int device, int dtype,
      @Cast("int64_t") long groups, @Cast("int64_t") long n, @Cast("int64_t") long d,
      @Cast("const void*") long v, @Cast("void*") long out, double decay, int reverse,
      @Cast("void*") long stream);

  // ---- graph message passing
  public static native int mk_graph_spmm_forward(int device, int dtype, int reduce, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("int64_t") long nnz, @Cast("int64_t") long heads,
      @Cast("int64_t") long width, @Cast("const int64_t*") long rowPtr, @Cast("const int64_t*") long col,
      @Cast("const void*") long weight, @Cast("const int64_t*") long weightIndex, @Cast("const void*") long x,
      @Cast("void*") long out, @Cast("int64_t*") long arg, @Cast("void*") long stream);

  public static native int mk_graph_sddmm_forward(int device, int dtype, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("int64_t") long nnz, @Cast("int64_t") long heads,
      @Cast("int64_t") long width, @Cast("const int64_t*") long rowPtr, @Cast("const int64_t*") long col,
      @Cast("const void*") long a, @Cast("const void*") long b, @Cast("void*") long out,
      @Cast("void*") long stream);

  // ---- softmax attention
  /**
   * The parameter block of the softmax-attention passes ({@code mk_attention_params} of
   * metakernels.h): the inputs every pass shares, then the named inputs and outputs of each pass
   * (0 = absent). Native memory, zeroed when made: close it after the call. Each setter returns the
   * block, so a call reads {@code new mk_attention_params().batch(b).heads(h)...}.
   */
  @Name("mk_attention_params")
  public static final class mk_attention_params extends Pointer {
    static {
      Loader.load();
    }

    /** A zeroed block. */
    public mk_attention_params() {
      super((Pointer) null);
      allocate();
      Pointer.memset(this, 0, Loader.sizeof(mk_attention_params.class));
    }

    private native void allocate();

    @MemberGetter public native @Cast("int64_t") long batch();

    @MemberSetter public native mk_attention_params batch(@Cast("int64_t") long batch);

    @MemberGetter public native @Cast("int64_t") long heads();

    @MemberSetter public native mk_attention_params heads(@Cast("int64_t") long heads);

    @MemberGetter public native @Cast("int64_t") long kv_heads();

    @MemberSetter public native mk_attention_params kv_heads(@Cast("int64_t") long kv_heads);

    @MemberGetter public native @Cast("int64_t") long nq();

    @MemberSetter public native mk_attention_params nq(@Cast("int64_t") long nq);

    @MemberGetter public native @Cast("int64_t") long nk();

    @MemberSetter public native mk_attention_params nk(@Cast("int64_t") long nk);

    @MemberGetter public native @Cast("int64_t") long d();

    @MemberSetter public native mk_attention_params d(@Cast("int64_t") long d);

    @MemberGetter public native @Cast("int64_t") long dv();

    @MemberSetter public native mk_attention_params dv(@Cast("int64_t") long dv);

    @MemberGetter public native @Cast("intptr_t") long q();

    @MemberSetter public native mk_attention_params q(@Cast("const void*") long q);

    @MemberGetter public native @Cast("intptr_t") long k();

    @MemberSetter public native mk_attention_params k(@Cast("const void*") long k);

    @MemberGetter public native @Cast("intptr_t") long v();

    @MemberSetter public native mk_attention_params v(@Cast("const void*") long v);

    @MemberGetter public native @Cast("intptr_t") long bias();

    @MemberSetter public native mk_attention_params bias(@Cast("const void*") long bias);

    @MemberGetter public native @Cast("int64_t") long bias_bs();

    @MemberSetter public native mk_attention_params bias_bs(@Cast("int64_t") long bias_bs);

    @MemberGetter public native @Cast("int64_t") long bias_hs();

    @MemberSetter public native mk_attention_params bias_hs(@Cast("int64_t") long bias_hs);

    @MemberGetter public native @Cast("intptr_t") long key_lengths();

    @MemberSetter public native mk_attention_params key_lengths(@Cast("const int64_t*") long key_lengths);

    @MemberGetter public native double scale();

    @MemberSetter public native mk_attention_params scale(double scale);

    @MemberGetter public native int flags();

    @MemberSetter public native mk_attention_params flags(int flags);

    @MemberGetter public native @Cast("intptr_t") long out();

    @MemberSetter public native mk_attention_params out(@Cast("void*") long out);

    @MemberGetter public native @Cast("intptr_t") long lse();

    @MemberSetter public native mk_attention_params lse(@Cast("void*") long lse);

    @MemberGetter public native @Cast("intptr_t") long dout();

    @MemberSetter public native mk_attention_params dout(@Cast("const void*") long dout);

    @MemberGetter public native @Cast("intptr_t") long grad_q();

    @MemberSetter public native mk_attention_params grad_q(@Cast("void*") long grad_q);

    @MemberGetter public native @Cast("intptr_t") long grad_k();

    @MemberSetter public native mk_attention_params grad_k(@Cast("void*") long grad_k);

    @MemberGetter public native @Cast("intptr_t") long grad_v();

    @MemberSetter public native mk_attention_params grad_v(@Cast("void*") long grad_v);

    @MemberGetter public native @Cast("intptr_t") long grad_bias_full();

    @MemberSetter public native mk_attention_params grad_bias_full(@Cast("void*") long grad_bias_full);

    @MemberGetter public native @Cast("intptr_t") long cot_grad_q();

    @MemberSetter public native mk_attention_params cot_grad_q(@Cast("const void*") long cot_grad_q);

    @MemberGetter public native @Cast("intptr_t") long cot_grad_k();

    @MemberSetter public native mk_attention_params cot_grad_k(@Cast("const void*") long cot_grad_k);

    @MemberGetter public native @Cast("intptr_t") long cot_grad_v();

    @MemberSetter public native mk_attention_params cot_grad_v(@Cast("const void*") long cot_grad_v);

    @MemberGetter public native @Cast("intptr_t") long cot_grad_bias_full();

    @MemberSetter public native mk_attention_params cot_grad_bias_full(@Cast("const void*") long cot_grad_bias_full);

    @MemberGetter public native @Cast("intptr_t") long cot_q();

    @MemberSetter public native mk_attention_params cot_q(@Cast("void*") long cot_q);

    @MemberGetter public native @Cast("intptr_t") long cot_k();

    @MemberSetter public native mk_attention_params cot_k(@Cast("void*") long cot_k);

    @MemberGetter public native @Cast("intptr_t") long cot_v();

    @MemberSetter public native mk_attention_params cot_v(@Cast("void*") long cot_v);

    @MemberGetter public native @Cast("intptr_t") long cot_dout();

    @MemberSetter public native mk_attention_params cot_dout(@Cast("void*") long cot_dout);

    @MemberGetter public native @Cast("intptr_t") long cot_bias_full();

    @MemberSetter public native mk_attention_params cot_bias_full(@Cast("void*") long cot_bias_full);

    @MemberGetter public native @Cast("intptr_t") long tan_q();

    @MemberSetter public native mk_attention_params tan_q(@Cast("const void*") long tan_q);

    @MemberGetter public native @Cast("intptr_t") long tan_k();

    @MemberSetter public native mk_attention_params tan_k(@Cast("const void*") long tan_k);

    @MemberGetter public native @Cast("intptr_t") long tan_v();

    @MemberSetter public native mk_attention_params tan_v(@Cast("const void*") long tan_v);

    @MemberGetter public native @Cast("intptr_t") long tan_bias_full();

    @MemberSetter public native mk_attention_params tan_bias_full(@Cast("const void*") long tan_bias_full);

    @MemberGetter public native @Cast("intptr_t") long tan_out();

    @MemberSetter public native mk_attention_params tan_out(@Cast("void*") long tan_out);

    @MemberGetter public native @Cast("intptr_t") long tan_lse();

    @MemberSetter public native mk_attention_params tan_lse(@Cast("void*") long tan_lse);

    // the (batch, head, row) strides of the operands (ABI 16; all 0: contiguous), element i of 0..2

    @MemberGetter public native @Cast("int64_t") long q_strides(int i);

    @MemberSetter public native mk_attention_params q_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long k_strides(int i);

    @MemberSetter public native mk_attention_params k_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long v_strides(int i);

    @MemberSetter public native mk_attention_params v_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long out_strides(int i);

    @MemberSetter public native mk_attention_params out_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long dout_strides(int i);

    @MemberSetter public native mk_attention_params dout_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long grad_q_strides(int i);

    @MemberSetter public native mk_attention_params grad_q_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long grad_k_strides(int i);

    @MemberSetter public native mk_attention_params grad_k_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long grad_v_strides(int i);

    @MemberSetter public native mk_attention_params grad_v_strides(int i, @Cast("int64_t") long stride);

    // (ABI 17) the second-order passes' operands: backward_backward's cotangent inputs and outputs,
    // jvp's tangents and output tangent

    @MemberGetter public native @Cast("int64_t") long cot_grad_q_strides(int i);

    @MemberSetter public native mk_attention_params cot_grad_q_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long cot_grad_k_strides(int i);

    @MemberSetter public native mk_attention_params cot_grad_k_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long cot_grad_v_strides(int i);

    @MemberSetter public native mk_attention_params cot_grad_v_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long cot_q_strides(int i);

    @MemberSetter public native mk_attention_params cot_q_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long cot_k_strides(int i);

    @MemberSetter public native mk_attention_params cot_k_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long cot_v_strides(int i);

    @MemberSetter public native mk_attention_params cot_v_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long cot_dout_strides(int i);

    @MemberSetter public native mk_attention_params cot_dout_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long tan_q_strides(int i);

    @MemberSetter public native mk_attention_params tan_q_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long tan_k_strides(int i);

    @MemberSetter public native mk_attention_params tan_k_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long tan_v_strides(int i);

    @MemberSetter public native mk_attention_params tan_v_strides(int i, @Cast("int64_t") long stride);

    @MemberGetter public native @Cast("int64_t") long tan_out_strides(int i);

    @MemberSetter public native mk_attention_params tan_out_strides(int i, @Cast("int64_t") long stride);
  }

  public static native @Cast("int64_t") long mk_attention_softmax_workspace(int device, int dtype,
      @Const mk_attention_params p);

  public static native int mk_attention_softmax_forward(int device, int dtype, @Const mk_attention_params p,
      @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

  public static native int mk_attention_softmax_backward(int device, int dtype, @Const mk_attention_params p,
      @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

  public static native int mk_attention_softmax_backward_backward(int device, int dtype,
      @Const mk_attention_params p, @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes,
      @Cast("void*") long stream);

  public static native int mk_attention_softmax_jvp(int device, int dtype, @Const mk_attention_params p,
      @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

  // ---- meta: fused differentiable optimizer steps
  /**
   * The parameter block of the fused optimizer steps ({@code mk_meta_step_params} of
   * metakernels.h): sizes, flags, the inputs, the hyperparameters (arrays indexed by
   * {@code Codes.META_LR} ...), the forward's outputs, the backward's cotangents and gradients
   * (0 = absent). Native memory, zeroed when made: close it after the call.
   */
  @Name("mk_meta_step_params")
  public static final class mk_meta_step_params extends Pointer {
    static {
      Loader.load();
    }

    /** A zeroed block. */
    public mk_meta_step_params() {
      super((Pointer) null);
      allocate();
      Pointer.memset(this, 0, Loader.sizeof(mk_meta_step_params.class));
    }

    private native void allocate();

    @MemberGetter public native @Cast("int64_t") long n();

    @MemberSetter public native mk_meta_step_params n(@Cast("int64_t") long n);

    @MemberGetter public native int flags();

    @MemberSetter public native mk_meta_step_params flags(int flags);

    @MemberGetter public native @Cast("int64_t") long step();

    @MemberSetter public native mk_meta_step_params step(@Cast("int64_t") long step);

    @MemberGetter public native @Cast("intptr_t") long param();

    @MemberSetter public native mk_meta_step_params param(@Cast("const void*") long param);

    @MemberGetter public native @Cast("intptr_t") long grad();

    @MemberSetter public native mk_meta_step_params grad(@Cast("const void*") long grad);

    @MemberGetter public native @Cast("intptr_t") long buf();

    @MemberSetter public native mk_meta_step_params buf(@Cast("const void*") long buf);

    @MemberGetter public native @Cast("intptr_t") long m();

    @MemberSetter public native mk_meta_step_params m(@Cast("const void*") long m);

    @MemberGetter public native @Cast("intptr_t") long v();

    @MemberSetter public native mk_meta_step_params v(@Cast("const void*") long v);

    @MemberGetter public native @Cast("intptr_t") long hyper(int i);

    @MemberSetter public native mk_meta_step_params hyper(int i, @Cast("const void*") long hyper);

    @MemberGetter public native @Cast("int64_t") long hyper_stride(int i);

    @MemberSetter public native mk_meta_step_params hyper_stride(int i, @Cast("int64_t") long stride);

    @MemberGetter public native double hyper_value(int i);

    @MemberSetter public native mk_meta_step_params hyper_value(int i, double value);

    @MemberGetter public native @Cast("intptr_t") long param_out();

    @MemberSetter public native mk_meta_step_params param_out(@Cast("void*") long param_out);

    @MemberGetter public native @Cast("intptr_t") long buf_out();

    @MemberSetter public native mk_meta_step_params buf_out(@Cast("void*") long buf_out);

    @MemberGetter public native @Cast("intptr_t") long m_out();

    @MemberSetter public native mk_meta_step_params m_out(@Cast("void*") long m_out);

    @MemberGetter public native @Cast("intptr_t") long v_out();

    @MemberSetter public native mk_meta_step_params v_out(@Cast("void*") long v_out);

    @MemberGetter public native @Cast("intptr_t") long cot_param_out();

    @MemberSetter public native mk_meta_step_params cot_param_out(@Cast("const void*") long cot_param_out);

    @MemberGetter public native @Cast("intptr_t") long cot_buf_out();

    @MemberSetter public native mk_meta_step_params cot_buf_out(@Cast("const void*") long cot_buf_out);

    @MemberGetter public native @Cast("intptr_t") long cot_m_out();

    @MemberSetter public native mk_meta_step_params cot_m_out(@Cast("const void*") long cot_m_out);

    @MemberGetter public native @Cast("intptr_t") long cot_v_out();

    @MemberSetter public native mk_meta_step_params cot_v_out(@Cast("const void*") long cot_v_out);

    @MemberGetter public native @Cast("intptr_t") long cot_param();

    @MemberSetter public native mk_meta_step_params cot_param(@Cast("void*") long cot_param);

    @MemberGetter public native @Cast("intptr_t") long cot_grad();

    @MemberSetter public native mk_meta_step_params cot_grad(@Cast("void*") long cot_grad);

    @MemberGetter public native @Cast("intptr_t") long cot_buf();

    @MemberSetter public native mk_meta_step_params cot_buf(@Cast("void*") long cot_buf);

    @MemberGetter public native @Cast("intptr_t") long cot_m();

    @MemberSetter public native mk_meta_step_params cot_m(@Cast("void*") long cot_m);

    @MemberGetter public native @Cast("intptr_t") long cot_v();

    @MemberSetter public native mk_meta_step_params cot_v(@Cast("void*") long cot_v);

    @MemberGetter public native @Cast("intptr_t") long cot_hyper(int i);

    @MemberSetter public native mk_meta_step_params cot_hyper(int i, @Cast("void*") long cot);
  }

  public static native @Cast("int64_t") long mk_meta_sgd_step_workspace(int device, int dtype, @Const mk_meta_step_params p);

  public static native @Cast("int64_t") long mk_meta_adam_step_workspace(int device, int dtype, @Const mk_meta_step_params p);

  public static native int mk_meta_sgd_step_forward(int device, int dtype, @Const mk_meta_step_params p, @Cast("void*") long stream);

  public static native int mk_meta_sgd_step_backward(int device, int dtype, @Const mk_meta_step_params p,
      @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

  public static native int mk_meta_adam_step_forward(int device, int dtype, @Const mk_meta_step_params p, @Cast("void*") long stream);

  public static native int mk_meta_adam_step_backward(int device, int dtype, @Const mk_meta_step_params p,
      @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

  public static native @Cast("int64_t") long mk_host_peak_bytes();

  public static native @Cast("int64_t") long mk_host_reset_peak_bytes();

  public static native @Cast("int64_t") long mk_device_peak_bytes();

  public static native @Cast("int64_t") long mk_device_reset_peak_bytes();

  // ---- CUDA streams and events, the stream-aware device cache (metakernels.h, last section)
  public static native @Cast("intptr_t") long mk_device_alloc_on(@Cast("int64_t") long nbytes, @Cast("void*") long stream);

  public static native int mk_device_record_stream(@Cast("void*") long ptr, @Cast("void*") long stream);

  public static native int mk_device_block_stream(@Cast("void*") long ptr, @Cast("void**") long[] stream);

  public static native @Cast("int64_t") long mk_device_pending_bytes();

  public static native int mk_device_synchronize();

  public static native int mk_cuda_stream_create(@Cast("void**") long[] stream);

  public static native int mk_cuda_stream_destroy(@Cast("void*") long stream);

  public static native int mk_cuda_stream_synchronize(@Cast("void*") long stream);

  public static native int mk_cuda_stream_query(@Cast("void*") long stream, int[] done);

  public static native int mk_cuda_stream_wait_stream(@Cast("void*") long waiter, @Cast("void*") long waited);

  public static native int mk_cuda_event_create(@Cast("void**") long[] event);

  public static native int mk_cuda_event_destroy(@Cast("void*") long event);

  public static native int mk_cuda_event_record(@Cast("void*") long event, @Cast("void*") long stream);

  public static native int mk_cuda_event_query(@Cast("void*") long event, int[] done);

  public static native int mk_cuda_event_synchronize(@Cast("void*") long event);

  public static native int mk_cuda_stream_wait_event(@Cast("void*") long stream, @Cast("void*") long event);

  public static native @Cast("int64_t") long mk_cuda_live_streams();

  public static native @Cast("int64_t") long mk_cuda_live_events();

  public static native int mk_meta_per_example_linear_norm(int device, int dtype, @Cast("int64_t") long batch,
      @Cast("int64_t") long steps, @Cast("int64_t") long inFeatures, @Cast("int64_t") long outFeatures,
      @Cast("const void*") long x, @Cast("const void*") long gradOut, @Cast("void*") long norm2,
      @Cast("void*") long stream);

  public static native int mk_meta_es_perturb(int device, int dtype, @Cast("int64_t") long seed,
      @Cast("int64_t") long generation, @Cast("int64_t") long pairs, @Cast("int64_t") long n,
      @Cast("const void*") long theta, double sigma, @Cast("void*") long out, @Cast("void*") long stream);

  public static native int mk_meta_es_combine(int device, int dtype, @Cast("int64_t") long seed,
      @Cast("int64_t") long generation, @Cast("int64_t") long pairs, @Cast("int64_t") long n,
      @Cast("const void*") long weights, double scale, @Cast("const void*") long theta, @Cast("void*") long out,
      @Cast("void*") long stream);

  // ---- graph: edge softmax and the fused GAT aggregation
  public static native int mk_graph_edge_softmax_forward(int device, int dtype, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("int64_t") long nnz, @Cast("int64_t") long heads,
      @Cast("const int64_t*") long rowPtr, @Cast("const int64_t*") long col, @Cast("const void*") long scores,
      @Cast("const void*") long lseIn, @Cast("void*") long out, @Cast("void*") long lseOut,
      @Cast("void*") long stream);

  public static native int mk_graph_gat_forward(int device, int dtype, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("int64_t") long nnz, @Cast("int64_t") long heads,
      @Cast("int64_t") long width, double negativeSlope, @Cast("const int64_t*") long rowPtr,
      @Cast("const int64_t*") long col, @Cast("const void*") long x, @Cast("const void*") long sSrc,
      @Cast("const void*") long sDst, @Cast("void*") long out, @Cast("void*") long lse,
      @Cast("void*") long stream);

  public static native int mk_dense_linear_forward(int device, int dtype, int act, @Cast("int64_t") long rows,
      @Cast("int64_t") long in, @Cast("int64_t") long out, @Cast("const void*") long x,
      @Cast("const void*") long weight, @Cast("int64_t") long wRs, @Cast("int64_t") long wCs,
      @Cast("const void*") long bias, @Cast("void*") long y, @Cast("void*") long stream);

  public static native int mk_dense_linear_backward(int device, int dtype, int act, @Cast("int64_t") long rows,
      @Cast("int64_t") long in, @Cast("int64_t") long out, @Cast("const void*") long gradY,
      @Cast("const void*") long y, @Cast("const void*") long x, @Cast("const void*") long weight,
      @Cast("int64_t") long wRs, @Cast("int64_t") long wCs, @Cast("void*") long gradX,
      @Cast("void*") long gradWeight, @Cast("void*") long gradBias, @Cast("void*") long stream);

  public static native int mk_dense_mse_forward(int device, int dtype, @Cast("int64_t") long n,
      @Cast("const void*") long p, @Cast("const void*") long t, @Cast("void*") long out, @Cast("void*") long stream);

  public static native int mk_dense_mse_backward(int device, int dtype, @Cast("int64_t") long n,
      @Cast("const void*") long p, @Cast("const void*") long t, @Cast("const void*") long g,
      @Cast("void*") long gradP, @Cast("void*") long gradT, @Cast("void*") long stream);
  public static native int mk_dense_infonce_forward(int device, int dtype, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("const void*") long s, @Cast("const void*") long pos,
      @Cast("const void*") long logw, @Cast("void*") long loss, @Cast("void*") long stats, @Cast("void*") long stream);

  public static native int mk_dense_infonce_backward(int device, int dtype, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("const void*") long s, @Cast("const void*") long pos,
      @Cast("const void*") long logw, @Cast("const void*") long stats, @Cast("const void*") long g,
      @Cast("void*") long gradS, @Cast("void*") long gradLogw, @Cast("void*") long stream);

  public static native int mk_graph_gat_backward(int device, int dtype, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("int64_t") long nnz, @Cast("int64_t") long heads,
      @Cast("int64_t") long width, double negativeSlope, @Cast("const int64_t*") long rowPtr,
      @Cast("const int64_t*") long col, @Cast("const int64_t*") long colPtr, @Cast("const int64_t*") long cscRow,
      @Cast("const void*") long x, @Cast("const void*") long sSrc, @Cast("const void*") long sDst,
      @Cast("const void*") long lse, @Cast("const void*") long gradOut, @Cast("void*") long gradX,
      @Cast("void*") long gradSSrc, @Cast("void*") long gradSDst, @Cast("void*") long rowDot,
      @Cast("void*") long stream);

  /** The tensor-core attention kernel per dtype, head dim, architecture and causal (mk/attention_tc_choice.h). */
  public static native @Cast("const char*") BytePointer mk_attention_tc_kernels();

  /** Chooses the 16-bit tensor-core attention kernels (0: environment/default; codes ATTN_TC_SELECT_*). */
  public static native int mk_attention_tc_select(int forward, int backward, int second);
  /** The choice of {@link #mk_attention_tc_select} (each array: one element, may be null). */
  public static native int mk_attention_tc_selected(int[] forward, int[] backward, int[] second);

  /** Chooses the SIMT (F32/F64) attention kernels (0: environment/default; codes ATTN_SIMT_SELECT_*). */
  public static native int mk_attention_simt_select(int forward, int backward);
  /** The choice of {@link #mk_attention_simt_select} (each array: one element, may be null). */
  public static native int mk_attention_simt_selected(int[] forward, int[] backward);
  /** The SIMT attention kernel per dtype and head dim (mk/attention_simt_choice.h). */
  public static native @Cast("const char*") BytePointer mk_attention_simt_kernels();

  /** Chooses the CUDA linear-attention forms (0: environment/default; codes LINEAR_SELECT_*). */
  public static native int mk_linear_attention_select(int tensorCore, int f32);
  /** The choice of {@link #mk_linear_attention_select} (each array: one element, may be null). */
  public static native int mk_linear_attention_selected(int[] tensorCore, int[] f32);
  /** The linear-attention form choice (mk/linear_attention_choice.h). */
  public static native @Cast("const char*") BytePointer mk_linear_attention_forms();
}
