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
enum mk_abi { MK_ABI_VERSION = 17 };

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
  MK_ATTENTION_MAX_HEAD_DIM = 256, /* D and Dv of softmax attention */
  MK_LINEAR_ATTENTION_MAX_HEAD_DIM = 1024 /* dk and dv of linear attention */
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
  MK_LINEAR_MASK_ANTICAUSAL = 2, /* keys i >= j */
  /* A flag OR-ed into a mask: F32 on CUDA may run on TF32 tensor cores (the chunk-parallel form;
   * products of 10-bit-mantissa values, F32 sums and states). The runtime's TF32 switch
   * (mk_runtime_set_allow_tf32) adds it to every F32 call on CUDA; the CPU ignores it. */
  MK_LINEAR_MASK_TF32 = 4
};

/* Reductions of mk_graph_spmm_forward: how the messages of a node's in-edges combine. */
enum mk_graph_reduce {
  MK_GRAPH_REDUCE_SUM = 0,
  MK_GRAPH_REDUCE_MEAN = 1, /* the sum divided by the node's in-degree (its row length) */
  MK_GRAPH_REDUCE_MAX = 2,  /* elementwise, with the argmax edge of every output element */
  MK_GRAPH_REDUCE_MIN = 3,
  MK_GRAPH_REDUCE_COUNT = 4
};

/* Flags of the softmax-attention entry points (see below). */
enum mk_attention_flags { MK_ATTENTION_CAUSAL = 1, MK_ATTENTION_TF32 = 2, MK_ATTENTION_TOP_LEFT = 4 };

/* Fused differentiable optimizer steps (mk_meta_*_step_*): the index of each hyperparameter in the
 * hyper arrays of mk_meta_step_params, and the flags. */
enum mk_meta_hyper {
  MK_META_LR = 0, MK_META_MOMENTUM = 1, MK_META_WEIGHT_DECAY = 2, MK_META_BETA1 = 3, MK_META_BETA2 = 4,
  MK_META_EPS = 5,
  MK_META_HYPER_COUNT = 6
};
enum mk_meta_flags {
  MK_META_NESTEROV = 1,             /* SGD: u = d + mu b' instead of b' */
  MK_META_DECOUPLED_WEIGHT_DECAY = 2 /* Adam: AdamW's p (1 - lr wd) instead of wd p added to the gradient */
};
/* The activation of the fused linear layer (mk_dense_linear_*): each has a derivative written in its
 * output y = act(z), so the backward reads y and never z. */
enum mk_linear_act {
  MK_LINEAR_ACT_IDENTITY = 0, /* y = z,              act' = 1 */
  MK_LINEAR_ACT_RELU = 1,     /* y = max(z, 0),      act' = [y > 0] */
  MK_LINEAR_ACT_TANH = 2,     /* y = tanh z,         act' = 1 - y^2 */
  MK_LINEAR_ACT_SIGMOID = 3,  /* y = 1 / (1 + e^-z), act' = y (1 - y) */
  MK_LINEAR_ACT_COUNT = 4
};

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
/* The one TF32 switch (off by default): while on, F32 work on CUDA may use TF32 tensor cores
 * (10-bit mantissa products, F32 sums): the softmax-attention forward and backward (as if every
 * call passed MK_ATTENTION_TF32), the linear-attention product (as if every call passed
 * MK_LINEAR_MASK_TF32) and the cuBLAS matmuls, which read it per call. */
int mk_runtime_set_allow_tf32(int allow);
int mk_runtime_allow_tf32(void);
int mk_runtime_attach_blas(const char* soname);
int mk_runtime_has_blas(void);
/* The attached BLAS: its soname, and for OpenBLAS its build configuration and the core type it
 * runs ("" before mk_runtime_attach_blas). */
const char* mk_runtime_blas_info(void);
/* Finds cuBLAS (cublasCreate_v2, cublasSetMathMode, cublasSetStream_v2, cublas{S,D}gemmStridedBatched)
 * in a library opened by soname ("libcublas.so.13", already loaded by the CUDA presets or found by
 * the dynamic loader) and creates the process's handle: from then on mk_dense_matmul_forward on CUDA
 * runs F32/F64 products through it, TF32 per the switch above, on the call's stream. */
int mk_runtime_attach_cublas(const char* soname);
int mk_runtime_has_cublas(void);
/* table: the value of mk_cuda_kernel_table() from libmetakernels_cuda. */
int mk_runtime_attach_cuda(const void* table);
int mk_runtime_has_cuda(void);
int mk_runtime_cuda_device_count(void);
int mk_runtime_cuda_synchronize(void* stream);
/* Launches one empty kernel on the stream (CUDA; nothing on the CPU) and returns without waiting: the
 * floor under every entry point's cost (GpuLaunchBench sets a tiny op beside it). */
int mk_runtime_noop(int device, void* stream);

/* ---- host and device memory ---------------------------------------------------------------- */
/* One caching design for both (native/src/memory.cpp): freed blocks wait in a free list per size
 * class (8 per power of two) for the next request of that class, under a cap; an allocation that
 * fails empties the cache and tries once more. */
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
/* Device memory of the attached CUDA library (cudaMalloc), 512-byte classes at least; every freed
 * block is cached (no cap by default). mk_device_alloc is mk_device_alloc_on(nbytes, NULL): a block
 * for the default stream; the stream rules are at mk_device_alloc_on below. NULL on failure, with
 * the error. mk_device_free takes only blocks of mk_device_alloc / mk_device_alloc_on. */
void* mk_device_alloc(int64_t nbytes);
void mk_device_free(void* ptr);
int64_t mk_device_live_bytes(void);
int64_t mk_device_cached_bytes(void);
/* Synchronises the device (every stream) and frees every cached block. */
void mk_device_empty_cache(void);
int mk_device_set_cache_limit(int64_t bytes);

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
 * On CUDA: cuBLAS where it takes the strides (and the dtype), else the kernel table's naive
 * matmul. */
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

/* ---- workspaces ---------------------------------------------------------------------------
 * One protocol for every fused entry point that needs scratch: mk_<family>_<op>_workspace(...)
 * returns the bytes a call needs (on the CPU for the current thread count; -1 with
 * mk_last_error() set when the device is unusable), and the entry point takes
 * (void* workspace, int64_t workspace_bytes) and refuses fewer bytes. The caller owns the buffer
 * (Java allocates it through the caching allocators); a workspace is never shared by two calls
 * running at once. */

/* ---- linear attention --------------------------------------------------------------------- */
/* out_j = sum_{i in M(j)} (q_j . k_i) v_i for `groups` (= batch*heads) independent groups;
 * q: [groups, nq, dk], k: [groups, nk, dk], v: [groups, nk, dv], out: [groups, nq, dv], all
 * contiguous. mask: mk_linear_attention_mask (all i, causal i <= j, anti-causal i >= j); masks need
 * nq == nk. O(n dk dv) time, O(dk dv) state: never an n x n matrix. The gradient of this
 * product is three more products, so one kernel serves every derivative order. dtype F32, F64,
 * BF16 or F16 (16-bit: computed in F32 with F32 state, the output rounded to the input type; on
 * CUDA on tensor cores, m16n8k16 MMAs, where the key dim is <= 256). mask | MK_LINEAR_MASK_TF32, or
 * the runtime's TF32 switch: F32 on CUDA on TF32 tensor cores (m16n8k8 MMAs, F32 state; same key
 * dims), else exact F32; ignored by the CPU and the other dtypes. */
int mk_linear_attention_product_forward(int device, int dtype, int64_t groups, int64_t nq,
                                        int64_t nk, int64_t dk, int64_t dv, const void* q,
                                        const void* k, const void* v, void* out, int mask,
                                        void* workspace, int64_t workspace_bytes, void* stream);
/* The same product on strided groups: batch x heads groups (group b * heads + h), q: [batch, heads,
 * nq, dk], k: [.., nk, dk], v: [.., nk, dv], out: [.., nq, dv], each with three strides in elements
 * (batch, head, row; the columns unit-stride; NULL: contiguous). So [B, N, H, D] projections are
 * read as [B, H, N, D] without a copy (strides (N H D, D, H D)), a window of rows is a pointer and a
 * row stride, and a stride of 0 shares k or v between heads. Strides must not be negative; out's must
 * give each element its own place, and out's memory must not meet an input's (their byte ranges).
 * The CPU reads the strides directly and gives the bits of the contiguous form; CUDA packs strided
 * operands into device scratch (one strided copy each, on the call's stream) and runs the contiguous
 * kernels. Otherwise as mk_linear_attention_product_forward (the same workspace). */
int mk_linear_attention_product_strided_forward(int device, int dtype, int64_t batch, int64_t heads,
                                                int64_t nq, int64_t nk, int64_t dk, int64_t dv, const void* q,
                                                const int64_t* q_strides, const void* k,
                                                const int64_t* k_strides, const void* v,
                                                const int64_t* v_strides, void* out,
                                                const int64_t* out_strides, int mask, void* workspace,
                                                int64_t workspace_bytes, void* stream);
/* Bytes of workspace of mk_linear_attention_product_forward (0 on CUDA). */
int64_t mk_linear_attention_product_workspace(int device, int dtype, int64_t dk, int64_t dv);
/* Momentum term of momentum attention (Dai et al., 2022): out_j = sum_{i<j} decay^(j-i) v_i
 * (reverse = 0) or sum_{i>j} decay^(i-j) v_i (reverse = 1, the adjoint). v, out: [groups, n, d].
 * BF16 / F16: the running sum in F32, each output rounded. */
int mk_linear_attention_momentum_forward(int device, int dtype, int64_t groups, int64_t n,
                                         int64_t d, const void* v, void* out, double decay,
                                         int reverse, void* stream);

/* ---- softmax attention ----------------------------------------------------------------------- */
/* S = scale q k^T + bias, masked; P = softmax(S) by rows; out = P v; lse = logsumexp(S) by rows.
 * q: [B, H, Nq, D], k: [B, Hkv, Nk, D], v: [B, Hkv, Nk, Dv], contiguous unless strides are given
 * (the *_strides fields at the end of the block; Hkv divides H: grouped-query attention), 1 <= D, Dv <= MK_ATTENTION_MAX_HEAD_DIM. Rows that see no key give
 * out = 0, lse = -inf. Tiled with an online softmax: never an Nq x Nk buffer (except the optional
 * full bias gradients). dtype: F32, F64, BF16 or F16 for every pass; for BF16/F16 every tensor is
 * in that type except lse and tan_lse, which are F32. The 16-bit forward and backward compute in
 * F32 inside their kernels (tensor cores on CUDA); the 16-bit backward_backward and jvp run the F32
 * kernels on F32 copies made here (scratch from the caching allocator) and round their outputs.
 *
 * Every pass takes one parameter block: the inputs all passes share, then the named inputs and
 * outputs of each pass (NULL = zero for an input, not wanted for an output). A pass reads only
 * the fields its comment names; zero the block first (= {0}) and fill what the pass needs. */
typedef struct mk_attention_params {
  /* sizes */
  int64_t batch, heads, kv_heads, nq, nk, d, dv;
  /* inputs of every pass */
  const void* q;
  const void* k;
  const void* v;
  /* optional bias: element (b, h, i, j) at bias[b*bias_bs + h*bias_hs + i*Nk + j] (strides 0 broadcast) */
  const void* bias;
  int64_t bias_bs, bias_hs;
  /* optional [B] key lengths, on the tensors' device: keys j >= L_b are padding */
  const int64_t* key_lengths;
  double scale;
  /* mk_attention_flags: MK_ATTENTION_CAUSAL: query i sees keys j <= i + L_b - Nq (bottom-right
   * aligned, as FlashAttention >= 2.1); with MK_ATTENTION_TOP_LEFT too (since ABI 17): keys
   * j <= i (top-left aligned, as PyTorch's is_causal; TOP_LEFT without CAUSAL is refused); the two
   * agree where L_b = Nq. MK_ATTENTION_TF32: the F32 forward and backward on CUDA may use TF32
   * tensor cores (where the device's shared memory holds their tiles; ignored elsewhere). Other bits
   * are refused. */
  int flags;
  /* forward: writes out [B, H, Nq, Dv] and lse [B, H, Nq] (lse may be NULL);
   * every later pass reads both */
  void* out;
  void* lse;
  /* backward: reads dout [B, H, Nq, Dv]; writes the gradients grad_q, grad_k, grad_v (shaped as
   * q, k, v) and grad_bias_full [B, H, Nq, Nk] (the caller sums broadcast dims). Two passes
   * (query blocks for grad_q, key blocks for grad_k and grad_v): deterministic. */
  const void* dout;
  void* grad_q;
  void* grad_k;
  void* grad_v;
  void* grad_bias_full;
  /* backward_backward, the vector-Jacobian product of the backward: reads dout and the cotangents
   * of (grad_q, grad_k, grad_v, grad_bias_full); writes those of (q, k, v, dout, bias (full)).
   * Fused: three passes over the tiles. */
  const void* cot_grad_q;
  const void* cot_grad_k;
  const void* cot_grad_v;
  const void* cot_grad_bias_full;
  void* cot_q;
  void* cot_k;
  void* cot_v;
  void* cot_dout;
  void* cot_bias_full;
  /* jvp, the forward-mode product: reads the tangents of (q, k, v, bias (full [B, H, Nq, Nk]));
   * writes those of out and lse */
  const void* tan_q;
  const void* tan_k;
  const void* tan_v;
  const void* tan_bias_full;
  void* tan_out;
  void* tan_lse;
  /* strided operands (since ABI 16): element (b, h, i, c) of q at
   * q[b * q_strides[0] + h * q_strides[1] + i * q_strides[2] + c], likewise k, v, out, dout,
   * grad_q, grad_k and grad_v with their own strides (h a key/value head for k, v, grad_k and
   * grad_v); columns are unit-stride. All three 0, as in a zeroed block: contiguous. Taken on the
   * CPU in F32 and F64, which reads and writes them in place (the bits of contiguous copies), by
   * every pass: the forward and the backward since ABI 16, the backward_backward and the jvp since
   * ABI 17 (with the triples below); the CUDA device and 16-bit calls refuse a block with any set.
   * Each pass takes the triples of its own operands only (a triple of another pass's operand is
   * refused). Strides are not negative; where any is set, each output's strides reach no element
   * twice and no output shares memory with another output or with an input. */
  int64_t q_strides[3];
  int64_t k_strides[3];
  int64_t v_strides[3];
  int64_t out_strides[3];
  int64_t dout_strides[3];
  int64_t grad_q_strides[3];
  int64_t grad_k_strides[3];
  int64_t grad_v_strides[3];
  /* (since ABI 17) the second-order passes' operands, as above: backward_backward's cotangent
   * inputs (shaped as q, k, v) and its outputs (as q, k, v, dout); jvp's tangents (as q, k, v) and
   * the output tangent (as out) */
  int64_t cot_grad_q_strides[3];
  int64_t cot_grad_k_strides[3];
  int64_t cot_grad_v_strides[3];
  int64_t cot_q_strides[3];
  int64_t cot_k_strides[3];
  int64_t cot_v_strides[3];
  int64_t cot_dout_strides[3];
  int64_t tan_q_strides[3];
  int64_t tan_k_strides[3];
  int64_t tan_v_strides[3];
  int64_t tan_out_strides[3];
} mk_attention_params;

/* Bytes of workspace every pass of this call needs (sizes and dtype from p; O((Nq + Nk) D),
 * never Nq x Nk); -1 with mk_last_error() set when the device is unusable. */
int64_t mk_attention_softmax_workspace(int device, int dtype, const mk_attention_params* p);
int mk_attention_softmax_forward(int device, int dtype, const mk_attention_params* p, void* workspace,
                                 int64_t workspace_bytes, void* stream);
int mk_attention_softmax_backward(int device, int dtype, const mk_attention_params* p, void* workspace,
                                  int64_t workspace_bytes, void* stream);
int mk_attention_softmax_backward_backward(int device, int dtype, const mk_attention_params* p, void* workspace,
                                           int64_t workspace_bytes, void* stream);
int mk_attention_softmax_jvp(int device, int dtype, const mk_attention_params* p, void* workspace,
                             int64_t workspace_bytes, void* stream);

/* ---- meta: fused differentiable optimizer steps ---------------------------------------------
 * One kernel per parameter tensor for the update of torch.optim (torch 2.x definitions), and one
 * for its vector-Jacobian product with respect to every input, hyperparameters included (the
 * meta-gradient of a learned learning rate). Every tensor holds n contiguous elements of dtype
 * (F32 or F64); per element (wd, lr, mu: scalar or per element; beta1, beta2, eps: scalar):
 *
 *   SGD   d = g + wd p;  b' = mu b + d  (momentum: b given; b = 0 is torch's first step);
 *         u = b', or d + mu b' (MK_META_NESTEROV), or d (no buffer: plain SGD);  p' = p - lr u
 *   Adam  d = g + wd p (or d = g and p0 = p (1 - lr wd) with MK_META_DECOUPLED_WEIGHT_DECAY, AdamW);
 *         m' = beta1 m + (1 - beta1) d;  v' = beta2 v + (1 - beta2) d^2;
 *         c1 = 1 - beta1^t, c2 = 1 - beta2^t (t = step >= 1);
 *         p' = p0 - (lr / c1) m' / (sqrt(v') / sqrt(c2) + eps)
 *
 * A hyperparameter i (mk_meta_hyper) is a tensor, hyper[i] != NULL: one value (hyper_stride[i] = 0)
 * or n values (hyper_stride[i] = 1), on the tensors' device; or the constant hyper_value[i]
 * (hyper[i] = NULL; it must be finite, beta1 and beta2 in [0, 1), eps >= 0; lr, wd and mu may be
 * negative). Tensor values are not checked (that would cost a device sync). Forward outputs may
 * be their own inputs (param_out = param, ...: in place); no other overlap is allowed. */
typedef struct mk_meta_step_params {
  int64_t n;     /* elements of the parameter tensor */
  int flags;     /* mk_meta_flags */
  int64_t step;  /* Adam: t >= 1, the number of this step (torch's state["step"] after the increment) */
  /* inputs of both passes */
  const void* param;
  const void* grad;
  const void* buf; /* SGD: the momentum buffer; NULL for plain SGD (then mu must be the constant 0) */
  const void* m;   /* Adam: first moment */
  const void* v;   /* Adam: second moment */
  const void* hyper[MK_META_HYPER_COUNT];
  int64_t hyper_stride[MK_META_HYPER_COUNT];
  double hyper_value[MK_META_HYPER_COUNT];
  /* forward: writes p' and the new state (buf_out with a buffer; m_out and v_out for Adam) */
  void* param_out;
  void* buf_out;
  void* m_out;
  void* v_out;
  /* backward: reads the cotangents of the forward's outputs (NULL = zero) and writes the
   * gradients of the inputs (NULL = not wanted): cot_hyper[i] needs hyper[i] != NULL and has its
   * stride (one value: a sum over the elements in a fixed order, deterministic). The forward's
   * outputs are recomputed, not read. */
  const void* cot_param_out;
  const void* cot_buf_out;
  const void* cot_m_out;
  const void* cot_v_out;
  void* cot_param;
  void* cot_grad;
  void* cot_buf;
  void* cot_m;
  void* cot_v;
  void* cot_hyper[MK_META_HYPER_COUNT];
} mk_meta_step_params;

/* Bytes of workspace of the backward passes (the per-block partial sums of the scalar
 * hyperparameter gradients; 0 for the forward passes); -1 with mk_last_error() set when the
 * device is unusable. */
int64_t mk_meta_sgd_step_workspace(int device, int dtype, const mk_meta_step_params* p);
int64_t mk_meta_adam_step_workspace(int device, int dtype, const mk_meta_step_params* p);
int mk_meta_sgd_step_forward(int device, int dtype, const mk_meta_step_params* p, void* stream);
int mk_meta_sgd_step_backward(int device, int dtype, const mk_meta_step_params* p, void* workspace,
                              int64_t workspace_bytes, void* stream);
int mk_meta_adam_step_forward(int device, int dtype, const mk_meta_step_params* p, void* stream);
int mk_meta_adam_step_backward(int device, int dtype, const mk_meta_step_params* p, void* workspace,
                               int64_t workspace_bytes, void* stream);
/* ---- graph message passing ----------------------------------------------------------------
 * A graph is a sparse [rows, cols] matrix in CSR form: row r (a node that receives) holds the
 * non-zeros k in [row_ptr[r], row_ptr[r + 1]), col[k] is the node that sends along edge k.
 * row_ptr: I64 [rows + 1], col: I64 [nnz], on the device of the call. The transpose (CSC) is the
 * same form with the roles swapped, so both directions use these entry points. Every call first
 * checks the structure (row_ptr[0] = 0, non-decreasing, row_ptr[rows] = nnz; col in [0, cols)),
 * one pass over row_ptr and col, so a bad index never reaches a kernel.
 *
 * Features: x: [cols, heads, width] contiguous (heads = 1 for plain [cols, F]); weight: [nnz, heads]
 * or NULL (all ones). Every reduction runs in a fixed order (a row's non-zeros in CSR order, each
 * output element written by one thread or one group of lanes): no floating-point atomics, results
 * bitwise equal run to run and for every CPU thread count. */

/* out[r, h, :] = ⊕_{k in row r} weight[k', h] · x[col[k], h, :]   (out: [rows, heads, width])
 * with k' = weight_index[k] when weight_index (I64 [nnz], values in [0, nnz)) is given, else k:
 * the pass over the transpose reads the weights in the order of the forward's non-zeros through
 * the permutation between the two. reduce (mk_graph_reduce): SUM; MEAN (SUM / row length); MAX,
 * MIN elementwise, writing the CSR position k of the chosen non-zero of each output element into
 * arg (I64 [rows, heads, width], required for MAX/MIN and ignored otherwise; ties and NaN go to
 * the first in row order). Rows without non-zeros give 0 (and arg = nnz). F32 or F64. */
int mk_graph_spmm_forward(int device, int dtype, int reduce, int64_t rows, int64_t cols, int64_t nnz,
                          int64_t heads, int64_t width, const int64_t* row_ptr, const int64_t* col,
                          const void* weight, const int64_t* weight_index, const void* x, void* out,
                          int64_t* arg, void* stream);
/* out[k, h] = <a[r, h, :], b[col[k], h, :]> for every non-zero k (row r): the sampled dense-dense
 * product, e.g. the gradient of spmm's weights. a: [rows, heads, width], b: [cols, heads, width],
 * out: [nnz, heads] in CSR order. F32 or F64. */
int mk_graph_sddmm_forward(int device, int dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t heads,
                           int64_t width, const int64_t* row_ptr, const int64_t* col, const void* a,
                           const void* b, void* out, void* stream);

/* ---- memory high-water marks ---------------------------------------------------------------
 * The largest mk_host_live_bytes / mk_device_live_bytes seen since the last reset (process-wide,
 * all threads): what an unrolled loop's memory policy is measured by. A reset sets the mark to the
 * bytes live now and returns them. */
int64_t mk_host_peak_bytes(void);
int64_t mk_host_reset_peak_bytes(void);
int64_t mk_device_peak_bytes(void);
int64_t mk_device_reset_peak_bytes(void);

/* ---- CUDA streams and events, the stream-aware device cache ---------------------------------- */
/* A stream is a void* (NULL = the legacy default stream). Kernels of a call run on the call's
 * stream; the device cache (native/src/memory.cpp) keeps, per block, the stream it was allocated
 * for (its owner) and the other streams recorded as using it:
 *   - a freed block is handed out again at once to its owner stream (stream order protects it),
 *     provided every other stream that used it has passed the event recorded on it at free time;
 *   - another stream gets it only once the owner's event recorded at free time has completed too
 *     (cudaEventQuery, never a wait); blocks still waiting are "pending";
 *   - mk_device_synchronize / mk_device_empty_cache wait for every stream, so nothing stays pending.
 * While no stream other than the default one was ever used, frees record no event (one stream
 * cannot race itself); the first other stream synchronises the device once.
 * Every entry below needs the CUDA library (MK_ERR_NO_DEVICE otherwise) and refuses a stream or
 * event it did not create, or one already destroyed (MK_ERR_INVALID_ARGUMENT, nothing changed). */
/* A block of at least nbytes for `stream`. */
void* mk_device_alloc_on(int64_t nbytes, void* stream);
/* Marks a live block (its base address) as used by `stream` too, so its free waits for that
 * stream's work before another stream gets it (PyTorch's record_stream). A no-op for its owner. */
int mk_device_record_stream(void* ptr, void* stream);
/* The stream a live block was allocated for (*stream), MK_ERR_INVALID_ARGUMENT for another pointer. */
int mk_device_block_stream(void* ptr, void** stream);
/* Bytes of cached blocks still waiting for an event recorded at their free. */
int64_t mk_device_pending_bytes(void);
/* Waits for every stream of the device, then marks every cached block free for all streams. */
int mk_device_synchronize(void);
/* A new non-blocking stream (no implicit order with the legacy default stream). */
int mk_cuda_stream_create(void** stream);
/* Waits for the stream's work, hands its blocks (live and cached) to the default stream, then
 * destroys it. A second destroy is refused. */
int mk_cuda_stream_destroy(void* stream);
/* Waits for the stream's work (NULL: the default stream). */
int mk_cuda_stream_synchronize(void* stream);
/* *done = 1 when all the stream's work has finished, 0 while some is pending. */
int mk_cuda_stream_query(void* stream, int* done);
/* Work launched on `waiter` from now on starts after all the work launched on `waited` so far
 * (an event recorded on `waited`, waited for on the device: the host does not block). */
int mk_cuda_stream_wait_stream(void* waiter, void* waited);
/* Events: created, recorded on a stream, queried, waited for by the host or by another stream. */
int mk_cuda_event_create(void** event);
int mk_cuda_event_destroy(void* event);
int mk_cuda_event_record(void* event, void* stream);
int mk_cuda_event_query(void* event, int* done);
int mk_cuda_event_synchronize(void* event);
int mk_cuda_stream_wait_event(void* stream, void* event);
/* Streams and events created and not yet destroyed (a leak check for tests). */
int64_t mk_cuda_live_streams(void);
int64_t mk_cuda_live_events(void);

/* ---- meta, batched: per-example gradient norms and evolution strategies ----------------------
 * (kernels: mk/meta_batched.h.) All arrays contiguous, F32 or F64, on the device given.
 *
 * norm2[b] = ||g_b^T x_b||_F^2 = sum_{t,s} (x_bt . x_bs)(g_bt . g_bs): the squared norm of example
 * b's gradient of the weight of y = x W^T, without forming it. x: [batch, steps, in_features],
 * grad_out: [batch, steps, out_features], norm2: [batch] (not overlapping the inputs). Each
 * example is reduced in a fixed order: deterministic. */
int mk_meta_per_example_linear_norm(int device, int dtype, int64_t batch, int64_t steps, int64_t in_features,
                                    int64_t out_features, const void* x, const void* grad_out, void* norm2,
                                    void* stream);
/* Antithetic ES (Salimans et al. 2017) over n parameters and `pairs` pairs of members; the noise
 * eps[k, j] ~ N(0, 1) is a function of (seed, generation, k, j) (Philox-4x32-10 and Box-Muller in
 * float: kernels/include/mk/meta_batched.h), regenerated by every call and the same bits on the CPU
 * (every ISA level) and on CUDA. generation >= 0, pairs >= 1, n >= 0.
 * perturb: out [2 pairs, n], out[2k] = theta + sigma eps[k], out[2k + 1] = theta - sigma eps[k];
 * theta [n] or NULL (0); sigma > 0 and finite; out overlaps nothing. */
int mk_meta_es_perturb(int device, int dtype, int64_t seed, int64_t generation, int64_t pairs, int64_t n,
                       const void* theta, double sigma, void* out, void* stream);
/* combine: out[j] = theta[j] + scale sum_k (weights[2k] - weights[2k + 1]) eps[k, j], the sum over
 * k in order, in double; weights [2 pairs] (each member's shaped fitness), theta [n] or NULL (0),
 * out [n] (may be theta exactly: the update in place; overlaps nothing else); scale finite. With
 * scale = lr / (2 pairs sigma) it is the ES update; with theta NULL, the gradient estimate. */
int mk_meta_es_combine(int device, int dtype, int64_t seed, int64_t generation, int64_t pairs, int64_t n,
                       const void* weights, double scale, const void* theta, void* out, void* stream);

/* Edge softmax over each row's non-zeros (a node's in-edges), per head: scores, out: [nnz, heads]
 * in CSR order, out[k, h] = exp(s[k, h] - m) / sum_{k' in row r} exp(s[k', h] - m), m the row max
 * (numerically stable). lse_out (optional, [rows, heads]) receives m + log(sum), -inf for rows
 * without non-zeros; lse_in (optional, instead of lse_out) is such an lse of the same scores, and
 * the call then writes exp(s - lse) in one pass. Each (row, head) reduced by one thread in CSR
 * order: deterministic. A row of -inf scores gives 0. F32 or F64. */
int mk_graph_edge_softmax_forward(int device, int dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t heads,
                                  const int64_t* row_ptr, const int64_t* col, const void* scores,
                                  const void* lse_in, void* out, void* lse_out, void* stream);
/* Fused GAT aggregation (Velickovic et al.): for every non-zero k of row r (edge col[k] -> r)
 * e[k, h] = leaky_relu(s_src[col[k], h] + s_dst[r, h], negative_slope), alpha = edge softmax of e
 * over the row, out[r, h, :] = sum_k alpha[k, h] x[col[k], h, :]. x: [cols, heads, width]
 * (width >= 1), s_src: [cols, heads], s_dst: [rows, heads], out: [rows, heads, width], lse
 * (optional): [rows, heads], the row log-sum-exp of e. One pass over x per row, alpha never
 * stored; rows without non-zeros: out 0, lse -inf. Deterministic. F32 or F64. */
int mk_graph_gat_forward(int device, int dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t heads,
                         int64_t width, double negative_slope, const int64_t* row_ptr, const int64_t* col,
                         const void* x, const void* s_src, const void* s_dst, void* out, void* lse,
                         void* stream);
/* Fused GAT backward (issue 15): the gradients of mk_graph_gat_forward for grad_out [rows, heads,
 * width], from the forward's lse (alpha = exp(e - lse), recomputed). With ga[k, h] = <grad_out[r,
 * h, :], x[col[k], h, :]> and w = leaky'(z) (ga - row_dot[r, h]): row_dot[r, h] = sum_k alpha ga,
 * grad_s_dst[r, h] = sum over row r of alpha w, grad_s_src[j, h] = sum over the edges out of j of
 * alpha w, grad_x[j, h, :] = sum over the edges j -> i of alpha grad_out[i, h, :]. grad_x,
 * grad_s_src and grad_s_dst are optional (NULL: not computed); row_dot ([rows, heads], written) is
 * required with either score gradient. col_ptr [cols + 1] and csc_row [nnz] are the CSC of the same
 * graph (the transpose of row_ptr/col; rows == cols). One pass over the CSR, one over the CSC;
 * nothing of size nnz x heads is stored; every sum in a fixed order (deterministic, no atomics).
 * F32 or F64. */
int mk_graph_gat_backward(int device, int dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t heads,
                          int64_t width, double negative_slope, const int64_t* row_ptr, const int64_t* col,
                          const int64_t* col_ptr, const int64_t* csc_row, const void* x, const void* s_src,
                          const void* s_dst, const void* lse, const void* grad_out, void* grad_x,
                          void* grad_s_src, void* grad_s_dst, void* row_dot, void* stream);

/* ---- dense: fused linear layer + activation --------------------------------------------------- */
/* y = act(x W^T + b): x [rows, in] contiguous, weight [out, in] with strides (w_rs, w_cs) (any layout
 * the matmul takes), bias [out] or NULL, y [rows, out] contiguous; act an mk_linear_act. One GEMM
 * (the path of mk_dense_matmul_forward: BLAS / cuBLAS) and one epilogue kernel (bias and
 * activation in place). F32 or F64. */
int mk_dense_linear_forward(int device, int dtype, int act, int64_t rows, int64_t in, int64_t out, const void* x,
                            const void* weight, int64_t w_rs, int64_t w_cs, const void* bias, void* y, void* stream);
/* The backward of mk_dense_linear_forward in one call: gz = grad_y * act'(z) with act' read from
 * the forward's output y (NULL allowed for MK_LINEAR_ACT_IDENTITY), then grad_x = gz W [rows, in],
 * grad_weight = gz^T x [out, in], grad_bias = sum over rows of gz [out] (in row order:
 * deterministic). Each output may be NULL (not wanted); all contiguous, grad_y [rows, out]. gz is
 * kernel scratch from the caching allocator, freed before return (none for the identity). */
int mk_dense_linear_backward(int device, int dtype, int act, int64_t rows, int64_t in, int64_t out,
                             const void* grad_y, const void* y, const void* x, const void* weight, int64_t w_rs,
                             int64_t w_cs, void* grad_x, void* grad_weight, void* grad_bias, void* stream);

/* ---- dense: fused mean squared error ------------------------------------------------------------ */
/* out (one element) = mean((p - t)^2) over n > 0 elements: p, t [n] contiguous. Summed in double in
 * a fixed order that depends on n alone (deterministic for any thread count). F32 or F64. */
int mk_dense_mse_forward(int device, int dtype, int64_t n, const void* p, const void* t, void* out, void* stream);
/* grad_p = 2 / n * g * (p - t), grad_t = -grad_p (each may be NULL): the gradient of
 * mk_dense_mse_forward times g (one element of the device's memory). */
int mk_dense_mse_backward(int device, int dtype, int64_t n, const void* p, const void* t, const void* g,
                          void* grad_p, void* grad_t, void* stream);

/* ---- dense: fused InfoNCE rows --------------------------------------------------------------------- */
/* Per row r of the logits s [rows, cols] (contiguous, rows, cols > 0): loss[r] = log sum_j e^{u[r,j]} -
 * log sum_{j positive} e^{s[r,j]}, u = s on the positives and s + logw elsewhere (logw NULL: no
 * weights; -inf drops a negative). Positives: pos[r, j] != 0 (pos [rows, cols] of the dtype), or with
 * pos NULL the diagonal j == r (rows <= cols). stats [rows, 2]: the two log-sums, for the backward.
 * Deterministic (each row's sums in a fixed order); a row without a positive gets +inf. F32 or F64. */
int mk_dense_infonce_forward(int device, int dtype, int64_t rows, int64_t cols, const void* s, const void* pos,
                             const void* logw, void* loss, void* stats, void* stream);
/* The gradient of mk_dense_infonce_forward for the upstream g [rows]: grad_s = g (a - p) and grad_logw
 * = g a off the positives, 0 on them (a = e^{u - lse_all}, p = e^{s - lse_pos} on positives), each
 * [rows, cols] or NULL; grad_logw needs logw. stats: the forward's. */
int mk_dense_infonce_backward(int device, int dtype, int64_t rows, int64_t cols, const void* s, const void* pos,
                              const void* logw, const void* stats, const void* g, void* grad_s, void* grad_logw,
                              void* stream);

/* ---- softmax attention: which tensor-core kernel runs ------------------------------------------- */
/* The choice of 16-bit tensor-core attention kernel per (dtype, padded head dim, architecture,
 * causal) as lines of text, with the MK_ATTN_TC (forward: v1, v2, v2k32, sm90) and MK_ATTN_TC_BWD
 * (backward: v1, v2, sm90) environment variables applied; see kernels/include/mk/attention_tc_choice.h.
 * Static storage; available in every build. */
const char* mk_attention_tc_kernels(void);

/* ---- softmax attention: choosing the tensor-core kernel from code (issue 10) --------------------- */
/* Codes of mk_attention_tc_select: 0 (MK_ATTN_TC_SELECT_DEFAULT) keeps the environment variable's
 * choice (or the default) for that pass. */
enum mk_attention_tc_select {
  MK_ATTN_TC_SELECT_DEFAULT = 0,
  MK_ATTN_TC_SELECT_FORWARD_V1 = 1,
  MK_ATTN_TC_SELECT_FORWARD_V2 = 2,
  MK_ATTN_TC_SELECT_FORWARD_V2K32 = 3,
  MK_ATTN_TC_SELECT_BACKWARD_V1 = 1,
  MK_ATTN_TC_SELECT_BACKWARD_V2 = 2,
  MK_ATTN_TC_SELECT_SECOND_TC = 1,
  MK_ATTN_TC_SELECT_SECOND_F32 = 2,
  /* the Hopper forward (wgmma + TMA, sm_90a): BF16/F16, D = Dv in {64, 128}, on a 9.0 device;
   * elsewhere v2 (v1 where v2 does not apply). MK_ATTN_TC=sm90 (or wgmma) in the environment. */
  MK_ATTN_TC_SELECT_FORWARD_SM90 = 4,
  /* the Hopper backward (wgmma + TMA, sm_90a; dQ pass and dK/dV pass, deterministic) where the Hopper
   * forward applies; elsewhere the v2 backward (v1 where v2 does not apply). MK_ATTN_TC_BWD=sm90 (or
   * wgmma) in the environment. (3 is no backward code.) */
  MK_ATTN_TC_SELECT_BACKWARD_SM90 = 4,
  /* the 16-bit double backward and JVP on tensor cores with their Hopper kernels (wgmma + TMA,
   * sm_90a: the stats, q', dO', k', v' passes; the JVP pass) where they apply: BF16/F16, D = Dv in
   * {64, 128} (a bias too), on a 9.0 device; elsewhere the m16n8k16 kernels (MK_ATTN_TC_SELECT_SECOND_TC,
   * which leaves the Hopper ones out). MK_ATTN_TC_DD=sm90 (or wgmma) in the environment. */
  MK_ATTN_TC_SELECT_SECOND_SM90 = 3
};
/* A process-wide choice of the 16-bit tensor-core attention kernels, consulted before the
 * environment variables from the next call on (a program cannot portably change its own
 * environment): forward (MK_ATTN_TC) v1, v2, v2k32 or sm90, backward (MK_ATTN_TC_BWD) v1, v2 or sm90, second
 * (MK_ATTN_TC_DD: the 16-bit double backward and JVP) tensor cores, tensor cores with the Hopper
 * double-backward passes, or F32 copies; 0 for a pass leaves
 * it to its variable. A forced v2 or tensor-core second order still runs only where it applies
 * (BF16/F16, max(D, Dv) <= 128, sm_80+; else v1 or F32 copies). A code out of range:
 * MK_ERR_INVALID_ARGUMENT naming it, nothing changed. mk_attention_tc_kernels prints the choice. */
int mk_attention_tc_select(int forward, int backward, int second);
/* The current choice: forward, backward and second as set by mk_attention_tc_select (0: none); each
 * pointer may be NULL. */
int mk_attention_tc_selected(int* forward, int* backward, int* second);

/* ---- softmax attention: choosing the SIMT (F32 / F64) kernel ---------------------------------------- */
/* Codes of mk_attention_simt_select: 0 (MK_ATTN_SIMT_SELECT_DEFAULT) keeps the environment
 * variable's choice (or the default, v1) for that pass. */
enum mk_attention_simt_select {
  MK_ATTN_SIMT_SELECT_DEFAULT = 0,
  MK_ATTN_SIMT_SELECT_V1 = 1,
  MK_ATTN_SIMT_SELECT_V2 = 2,
  MK_ATTN_SIMT_SELECT_X3 = 3 /* forward only: F32 on Hopper tensor cores, 3xTF32 (tensor_core_sm90_f32.cu) */
};
/* A process-wide choice of the CUDA SIMT attention kernels (F32 without TF32, F64; see
 * kernels/include/mk/attention_simt_choice.h), consulted before the environment variables from the
 * next call on: forward (MK_ATTN_SIMT) and backward (MK_ATTN_SIMT_BWD) v1 or v2, the forward also x3;
 * 0 for a pass leaves it to its variable. A forced v2 still runs only where it applies (D, Dv
 * multiples of 4, at most 256 (F32) or 128 (F64), 16-byte aligned tensors, sm_80+, tiles that fit;
 * else v1); a forced x3 (F32 on Hopper tensor cores, every product as three TF32 MMAs) only for F32
 * with D = Dv in {64, 128} on a 9.0 device with the sm_90a build (else v2, else v1). A code out of
 * range: MK_ERR_INVALID_ARGUMENT naming it, nothing changed. mk_attention_simt_kernels prints the choice. */
int mk_attention_simt_select(int forward, int backward);
/* The current choice: forward and backward as set by mk_attention_simt_select (0: none); each
 * pointer may be NULL. */
int mk_attention_simt_selected(int* forward, int* backward);
/* The SIMT attention kernel choice as a line of text: the variables, the override, and the version
 * per dtype and head dim. Static storage; available in every build. */
const char* mk_attention_simt_kernels(void);

/* ---- linear attention: choosing the CUDA form ---------------------------------------------------- */
/* Codes of mk_linear_attention_select: 0 (MK_LINEAR_SELECT_DEFAULT) keeps the environment variable's
 * choice (or the default) for that argument. */
enum mk_linear_attention_select {
  MK_LINEAR_SELECT_DEFAULT = 0,
  MK_LINEAR_SELECT_CHUNKED = 1,   /* tensor_core: the chunk-parallel form (the default) */
  MK_LINEAR_SELECT_RECURRENT = 2, /* tensor_core: the recurrent form (dk <= 128; unmasked: its state form) */
  MK_LINEAR_SELECT_SIMT = 1,      /* f32: the exact SIMT forms (the default) */
  MK_LINEAR_SELECT_X3 = 3         /* f32: the recurrent form on 3xTF32 tensor cores (F32-class accuracy) */
};
/* A process-wide choice of the CUDA linear-attention form (kernels/include/mk/linear_attention_choice.h),
 * consulted before the environment variables from the next call on: tensor_core (MK_LINEAR_TC) for
 * BF16/F16 data and F32 with TF32 allowed, chunked or recurrent; f32 (MK_LINEAR_F32) for F32 without
 * TF32, simt or x3; 0 leaves it to its variable. The recurrent and x3 forms run products with dk <= 128
 * whose tiles fit the device: masked ones with nq == nk (the walk), unmasked ones given a scratch (the
 * state form); elsewhere the chunked / SIMT forms. A code out
 * of range: MK_ERR_INVALID_ARGUMENT naming it, nothing changed. mk_linear_attention_forms prints the
 * choice. */
int mk_linear_attention_select(int tensor_core, int f32);
/* The current choice as set by mk_linear_attention_select (0: none); each pointer may be NULL. */
int mk_linear_attention_selected(int* tensor_core, int* f32);
/* The linear-attention form choice as a line of text: the variables, the override, the forms in use.
 * Static storage; available in every build. */
const char* mk_linear_attention_forms(void);

#ifdef __cplusplus
}
#endif

#endif /* METAKERNELS_H */
