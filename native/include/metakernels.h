/*
 * metakernels.h: the C ABI of metakernels.
 *
 * Flat extern "C": raw pointers, int64_t sizes, strides in elements, a void* stream (a
 * cudaStream_t on CUDA, ignored on the CPU) and an int status (MK_OK = 0). Every entry point
 * validates all its arguments before any kernel runs; on failure it returns a non-zero status
 * and mk_last_error() describes what was expected. Names: mk_<family>_<op>_<pass>.
 *
 * `device` selects the kernel set: MK_DEVICE_CPU runs kernels/cpu, MK_DEVICE_CUDA the CUDA
 * library attached with mk_runtime_attach_cuda (pointers are then device pointers).
 */
#ifndef METAKERNELS_H
#define METAKERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- codes and limits -------------------------------------------------------------------
 * Declared here and nowhere else. Every constant is an enum member with an explicit value; the
 * build generates the Java constants from this header (org.metakernels.runtime.Codes, each name
 * without its MK_ prefix, by cmake/gen_java_codes.cmake), and the kernels use these names. */

/* Version of this ABI and of the kernel table between libmetakernels and libmetakernels_cuda. */
enum mk_abi { MK_ABI_VERSION = 2 };

enum mk_status {
  MK_OK = 0,
  MK_ERR_INVALID_ARGUMENT = 1,
  MK_ERR_UNSUPPORTED = 2,
  MK_ERR_DEVICE = 3,
  MK_ERR_NO_DEVICE = 4,
  MK_ERR_INTERNAL = 5
};

enum mk_device { MK_DEVICE_CPU = 0, MK_DEVICE_CUDA = 1 };

/* Element types. I64 is for indices only. */
enum mk_dtype { MK_F32 = 0, MK_F64 = 1, MK_BF16 = 2, MK_F16 = 3, MK_I64 = 4 };

enum mk_limits {
  MK_MAX_RANK = 8,                /* rank of a strided operand */
  MK_ATTENTION_MAX_HEAD_DIM = 256 /* D and Dv of softmax attention */
};

/* CPU instruction sets (mk_runtime_cpu_isa, mk_runtime_set_cpu_isa). */
enum mk_cpu_isa { MK_CPU_ISA_AUTO = 0, MK_CPU_ISA_AVX2 = 2, MK_CPU_ISA_AVX512 = 3 };

/* Elementwise unary ops of mk_dense_unary_forward: y = f(x; p). */
enum mk_unary_op {
  MK_UNARY_NEG = 0, MK_UNARY_EXP = 1, MK_UNARY_LOG = 2, MK_UNARY_TANH = 3, MK_UNARY_SIGMOID = 4,
  MK_UNARY_RELU = 5, MK_UNARY_GELU = 6, MK_UNARY_SQRT = 7, MK_UNARY_SQUARE = 8, MK_UNARY_ABS = 9,
  MK_UNARY_SIGN = 10, MK_UNARY_POW_SCALAR = 11, MK_UNARY_ADD_SCALAR = 12, MK_UNARY_MUL_SCALAR = 13,
  MK_UNARY_RSUB_SCALAR = 14, MK_UNARY_RECIPROCAL = 15, MK_UNARY_RSQRT = 16, MK_UNARY_STEP = 17,
  MK_UNARY_ELU1 = 18, MK_UNARY_ELU1_GRAD = 19, MK_UNARY_LOG1P = 20, MK_UNARY_COS = 21, MK_UNARY_SIN = 22,
  MK_UNARY_CLAMP_MIN = 23, MK_UNARY_CLAMP_MAX = 24, MK_UNARY_COPY = 25, MK_UNARY_SOFTPLUS = 26,
  MK_UNARY_COUNT = 27
};

/* Elementwise binary ops of mk_dense_binary_forward: out = f(a, b), broadcasting through strides. */
enum mk_binary_op {
  MK_BINARY_ADD = 0, MK_BINARY_SUB = 1, MK_BINARY_MUL = 2, MK_BINARY_DIV = 3, MK_BINARY_MAX = 4,
  MK_BINARY_MIN = 5, MK_BINARY_POW = 6, MK_BINARY_EQ = 7, MK_BINARY_NE = 8, MK_BINARY_LT = 9,
  MK_BINARY_LE = 10, MK_BINARY_GT = 11, MK_BINARY_GE = 12,
  MK_BINARY_COUNT = 13
};

/* Reductions of mk_dense_reduce_forward. */
enum mk_reduce_op { MK_REDUCE_SUM = 0, MK_REDUCE_MAX = 1, MK_REDUCE_MIN = 2, MK_REDUCE_COUNT = 3 };

/* Distributions of mk_tensor_random_forward. */
enum mk_random_dist { MK_RANDOM_UNIFORM = 0, MK_RANDOM_NORMAL = 1 };

/* Masks of mk_linear_attention_product_forward. */
enum mk_linear_attention_mask {
  MK_LINEAR_MASK_NONE = 0,      /* every key */
  MK_LINEAR_MASK_CAUSAL = 1,    /* keys i <= j */
  MK_LINEAR_MASK_ANTICAUSAL = 2 /* keys i >= j */
};

/* Flags of the softmax-attention entry points (see below). */
enum mk_attention_flags { MK_ATTENTION_CAUSAL = 1, MK_ATTENTION_TF32 = 2 };

/* ---- runtime ------------------------------------------------------------------------------ */
int mk_abi_version(void);
/* The message of the last failed call on this thread ("" if none). */
const char* mk_last_error(void);
/* MK_CPU_ISA_AVX2 or MK_CPU_ISA_AVX512: the kernels in use. */
int mk_runtime_cpu_isa(void);
/* Force the AVX2 path even where AVX-512 exists (MK_CPU_ISA_AVX2), or auto-detect again (MK_CPU_ISA_AUTO). */
int mk_runtime_set_cpu_isa(int isa);
/* Threads of the CPU kernels, for calls from every thread (not only the caller's, as
 * omp_set_num_threads would be). n = 0 restores the OpenMP default (OMP_NUM_THREADS or the cores). */
int mk_runtime_num_threads(void);
int mk_runtime_set_num_threads(int n);
/* Finds cblas_sgemm/cblas_dgemm in an already loaded library (by soname) and uses them. */
int mk_runtime_attach_blas(const char* soname);
int mk_runtime_has_blas(void);
/* table: the value of mk_cuda_kernel_table() from libmetakernels_cuda. */
int mk_runtime_attach_cuda(const void* table);
int mk_runtime_has_cuda(void);
int mk_runtime_cuda_device_count(void);
int mk_runtime_cuda_synchronize(void* stream);

/* ---- host memory -------------------------------------------------------------------------- */
/* 64-byte aligned, NULL on failure. Contents are undefined (not zeroed). Blocks of 64 KiB and
 * more are kept after mk_host_free in a cache keyed by size class (8 classes per power of two)
 * and handed out again, so loops of same-shaped tensors stop paying a page fault per 4 KiB of
 * fresh memory. */
void* mk_host_alloc(int64_t nbytes);
void mk_host_free(void* ptr);
/* Bytes currently held by mk_host_alloc's callers (cached blocks excluded). */
int64_t mk_host_live_bytes(void);
/* Bytes in the cache of freed blocks. */
int64_t mk_host_cached_bytes(void);
/* Frees every cached block. */
void mk_host_empty_cache(void);
/* Caps the cache (default 1 GiB; 0 disables it, freeing what it holds). */
int mk_host_set_cache_limit(int64_t bytes);

/* ---- tensor: memory ------------------------------------------------------------------------ */
int mk_tensor_fill_forward(int device, int dtype, int64_t n, void* dst, double value, void* stream);
int mk_tensor_copy_forward(int device, int dtype, int rank, const int64_t* shape, const void* src,
                           const int64_t* src_strides, void* dst, const int64_t* dst_strides,
                           void* stream);
int mk_tensor_cast_forward(int device, int src_dtype, int dst_dtype, int64_t n, const void* src,
                           void* dst, void* stream);
/* dist (mk_random_dist): MK_RANDOM_UNIFORM U(a, b), MK_RANDOM_NORMAL N(a, b^2). Same values on CPU and CUDA for a seed. */
int mk_tensor_random_forward(int device, int dtype, int dist, int64_t n, void* dst, int64_t seed,
                             double a, double b, void* stream);

/* ---- dense: elementwise ------------------------------------------------------------------- */
/* y (contiguous) = op(x; p), x strided over shape. Op codes: mk_unary_op. */
int mk_dense_unary_forward(int device, int dtype, int op, int rank, const int64_t* shape,
                           const void* x, const int64_t* x_strides, void* y, double p,
                           void* stream);
/* out (contiguous) = op(a, b); zero strides broadcast. Op codes: mk_binary_op. */
int mk_dense_binary_forward(int device, int dtype, int op, int rank, const int64_t* shape,
                            const void* a, const int64_t* a_strides, const void* b,
                            const int64_t* b_strides, void* out, void* stream);
int mk_dense_where_forward(int device, int dtype, int rank, const int64_t* shape,
                           const void* cond, const int64_t* c_strides, const void* a,
                           const int64_t* a_strides, const void* b, const int64_t* b_strides,
                           void* out, void* stream);

/* ---- dense: reductions -------------------------------------------------------------------- */
/* x: [outer, len, inner] contiguous -> y: [outer, inner]; op: mk_reduce_op; indices
 * (I64 [outer, inner]) optional for max/min. */
int mk_dense_reduce_forward(int device, int dtype, int op, int64_t outer, int64_t len,
                            int64_t inner, const void* x, void* y, int64_t* indices,
                            void* stream);
/* Softmax (or log-softmax) over the last dim of x: [rows, cols] contiguous. */
int mk_dense_softmax_forward(int device, int dtype, int log, int64_t rows, int64_t cols,
                             const void* x, void* y, void* stream);

/* ---- dense: matmul ------------------------------------------------------------------------ */
/* c[b] (contiguous [m, n] per batch, batch stride c_bs) = a[b] @ b[b]; a, b strided.
 * On the CPU: BLAS when attached (one of each matrix's strides must be 1), else a blocked loop.
 * On CUDA this entry point is the fallback; the Java side uses cuBLAS. */
int mk_dense_matmul_forward(int device, int dtype, int64_t batch, int64_t m, int64_t n,
                            int64_t k, const void* a, int64_t a_bs, int64_t a_rs, int64_t a_cs,
                            const void* b, int64_t b_bs, int64_t b_rs, int64_t b_cs, void* c,
                            int64_t c_bs, void* stream);

/* ---- dense: indexing ---------------------------------------------------------------------- */
/* idx values are checked against the source length before any kernel runs. */
int mk_dense_index_select_forward(int device, int dtype, int64_t outer, int64_t src_len,
                                  int64_t inner, const void* x, const int64_t* idx, int64_t n_idx,
                                  void* y, void* stream);
int mk_dense_index_add_forward(int device, int dtype, int64_t outer, int64_t dst_len,
                               int64_t inner, void* dst, const int64_t* idx, int64_t n_idx,
                               const void* src, void* stream);
int mk_dense_gather_forward(int device, int dtype, int64_t outer, int64_t src_len, int64_t inner,
                            const void* x, const int64_t* idx, int64_t idx_len, void* y,
                            void* stream);
int mk_dense_scatter_add_forward(int device, int dtype, int64_t outer, int64_t dst_len,
                                 int64_t inner, void* dst, const int64_t* idx, int64_t idx_len,
                                 const void* src, void* stream);

/* ---- linear attention --------------------------------------------------------------------- */
/* out_j = sum_{i in M(j)} (q_j . k_i) v_i for `groups` (= batch*heads) independent groups;
 * q: [groups, nq, dk], k: [groups, nk, dk], v: [groups, nk, dv], out: [groups, nq, dv], all
 * contiguous. mask: mk_linear_attention_mask (all i, causal i <= j, anti-causal i >= j); masks need
 * nq == nk. O(n dk dv) time, O(dk dv) state: never an n x n matrix. The gradient of this
 * product is three more products, so one kernel serves every derivative order. */
int mk_linear_attention_product_forward(int device, int dtype, int64_t groups, int64_t nq,
                                        int64_t nk, int64_t dk, int64_t dv, const void* q,
                                        const void* k, const void* v, void* out, int mask,
                                        void* stream);
/* Momentum term of momentum attention (Dai et al., 2022): out_j = sum_{i<j} decay^(j-i) v_i
 * (reverse = 0) or sum_{i>j} decay^(i-j) v_i (reverse = 1, the adjoint). v, out: [groups, n, d]. */
int mk_linear_attention_momentum_forward(int device, int dtype, int64_t groups, int64_t n,
                                         int64_t d, const void* v, void* out, double decay,
                                         int reverse, void* stream);

/* ---- softmax attention ----------------------------------------------------------------------- */
/* q: [B, H, Nq, D], k: [B, Hkv, Nk, D], v: [B, Hkv, Nk, Dv] contiguous (Hkv divides H: grouped
 * query attention), D, Dv <= MK_ATTENTION_MAX_HEAD_DIM. S = scale q k^T + bias, P = softmax(S), out = P v.
 * bias (may be NULL): element (b, h, i, j) at bias[b*bias_bs + h*bias_hs + i*Nk + j] (strides 0
 * broadcast). key_lengths (may be NULL; [B], on the tensors' device): keys j >= L_b are padding.
 * flags: MK_ATTENTION_CAUSAL: query i sees keys j <= i + L_b - Nq (bottom-right aligned);
 * MK_ATTENTION_TF32: the F32 forward and backward on CUDA may use TF32 tensor cores (where the
 * device's shared memory holds their tiles; ignored elsewhere). Other bits are refused. Rows that see no key give
 * out = 0, lse = -inf. Tiled with an online softmax: no Nq x Nk buffer. Every pass takes a
 * workspace of mk_attention_softmax_workspace() bytes (O((Nq + Nk) D), never Nq x Nk).
 * dtype: F32 or F64 for every pass; BF16 and F16 for the forward and the backward only (tensor
 * cores on CUDA, F32 arithmetic inside): then q, k, v, bias, out, dout, dq, dk, dv and dbias_full
 * are in that 16-bit type and lse is F32 ([B, H, Nq] floats). The backward-backward and the JVP
 * refuse 16-bit types (MK_ERR_UNSUPPORTED): cast to F32 for those. */
int64_t mk_attention_softmax_workspace(int device, int dtype, int64_t batch, int64_t heads,
                                       int64_t kv_heads, int64_t nq, int64_t nk, int64_t d, int64_t dv);
/* out: [B, H, Nq, Dv]; lse: [B, H, Nq] (may be NULL). */
int mk_attention_softmax_forward(int device, int dtype, int64_t batch, int64_t heads, int64_t kv_heads,
                                 int64_t nq, int64_t nk, int64_t d, int64_t dv, const void* q, const void* k,
                                 const void* v, const void* bias, int64_t bias_bs, int64_t bias_hs,
                                 const int64_t* key_lengths, double scale, int flags, void* out, void* lse,
                                 void* workspace, int64_t workspace_bytes, void* stream);
/* Gradients for dout; any output may be NULL. dbias_full: [B, H, Nq, Nk] (the caller sums
 * broadcast dims). Two passes (query blocks for dq, key blocks for dk/dv): deterministic. */
int mk_attention_softmax_backward(int device, int dtype, int64_t batch, int64_t heads, int64_t kv_heads,
                                  int64_t nq, int64_t nk, int64_t d, int64_t dv, const void* q, const void* k,
                                  const void* v, const void* bias, int64_t bias_bs, int64_t bias_hs,
                                  const int64_t* key_lengths, double scale, int flags, const void* out,
                                  const void* lse, const void* dout, void* dq, void* dk, void* dv_out,
                                  void* dbias_full, void* workspace, int64_t workspace_bytes, void* stream);
/* The vector-Jacobian product of the backward: given cotangents of (dq, dk, dv, dbias) (any may
 * be NULL = 0), returns those of (q, k, v, dout, bias). Fused: three passes over the tiles. */
int mk_attention_softmax_backward_backward(int device, int dtype, int64_t batch, int64_t heads, int64_t kv_heads,
                                           int64_t nq, int64_t nk, int64_t d, int64_t dv, const void* q,
                                           const void* k, const void* v, const void* bias, int64_t bias_bs,
                                           int64_t bias_hs, const int64_t* key_lengths, double scale, int flags,
                                           const void* out, const void* lse, const void* dout, const void* g_dq,
                                           const void* g_dk, const void* g_dv, const void* g_dbias_full,
                                           void* gq, void* gk, void* gv, void* g_dout, void* g_bias_full,
                                           void* workspace, int64_t workspace_bytes, void* stream);
/* Forward-mode product: tangents of (q, k, v, bias) (NULL = 0) -> tangents of out and lse. */
int mk_attention_softmax_jvp(int device, int dtype, int64_t batch, int64_t heads, int64_t kv_heads, int64_t nq,
                             int64_t nk, int64_t d, int64_t dv, const void* q, const void* k, const void* v,
                             const void* bias, int64_t bias_bs, int64_t bias_hs, const int64_t* key_lengths,
                             double scale, int flags, const void* out, const void* lse, const void* tq,
                             const void* tk, const void* tv, const void* tbias_full, void* tout, void* tlse,
                             void* workspace, int64_t workspace_bytes, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* METAKERNELS_H */
