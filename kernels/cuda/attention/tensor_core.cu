// Softmax attention on tensor cores (sm_80+): forward and backward in BF16 / F16 (m16n8k16 MMAs)
// and, opt-in, in F32 through TF32 (m16n8k8 MMAs; AttentionParams::allow_tf32). The F32/F64 SIMT
// kernels and the double backward / JVP live beside it (forward.cu ... jvp.cu); the 16-bit double backward and JVP
// are in tensor_core_dd.cu (F32 copies through the SIMT kernels where those do not apply). The CPU twin (kernels/cpu/attention/) computes the
// same function in F32 from the same inputs and is the oracle. The kernels are templates over the
// operand type E (Bf16, Fp16, Tf32; see Operand<E> in mma.cuh).
//
//   S = scale q kᵀ + bias (masked)   P = softmax(S)   O = P v   lse = logsumexp(S)  (F32)
//   q: [B, H, Nq, D]   k: [B, Hkv, Nk, D]   v: [B, Hkv, Nk, Dv]   16-bit, contiguous
//   masks, bias and GQA as in mk/attention.h
//
// Precision (as FlashAttention 2): every product runs on m16n8k16 MMAs with 16-bit inputs and F32
// accumulation; the softmax runs in F32 (exp2 of log2-scaled scores); P and dS are rounded to 16
// bit as the A operand of the next product; l, m, lse and D = rowsum(dO ∘ O) stay F32.
//
// Work decomposition (no atomics: every output element has one owner block, deterministic):
//   forward   blocks of 64 query rows (4 warps x 16 rows), key tiles of 64; online softmax in
//             registers; O accumulates in registers (16 x DP per warp).
//   backward  preprocess: D into the workspace (F32), a warp per row.
//             dQ pass: blocks of 64 query rows; per key tile recompute S, P from lse, dP = dO Vᵀ,
//             dS = P ∘ (dP − D); dQ += dS K; the full dS (bias gradient) is written here.
//             dK/dV pass: blocks of 64 keys (4 warps x 16 keys) over the query heads of their KV
//             head and query tiles of 32; Sᵀ = K Qᵀ, dPᵀ = V dOᵀ; dV += Pᵀ dO, dK += dSᵀ Q.
//   Output columns of a backward block are capped at kMaxCols (register budget): head dims above
//   128 split the dQ and dK/dV passes into column halves (S, dP recomputed per half).
// Head dims: D, Dv ≤ 256, any value; the tiles are padded to DP ∈ {64, 128, 256} with zeros
// (k-steps and n-blocks past D, Dv are skipped).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "tensor_core.cuh"
#include "../common.cuh"
#include "../mma.cuh"
#include "../copy_async.cuh"
#include "mk/attention_tc_choice.h"
#include "tensor_core_parts.cuh"

namespace mk {
namespace cuda {
namespace {


// Shared layouts in elements of E's raw type (16-bit or F32). LD = DP + pad for row-major tiles of
// head-dim width; LT = rows + pad for the transposed copies the 16-bit types need (TF32 reads B
// from the row-major tiles: those copies are absent, size 0).
template <class E, int DP>
struct FwdLayout {
  using O = Operand<E>;
  static constexpr size_t kElem = sizeof(typename O::Raw);
  // Vᵀ (or V) takes K's place once S is computed when the tiles would not fit ~99 KB (sm_86-class
  // devices): 16-bit above 128, TF32 above 64; two more barriers per tile then.
  static constexpr bool kShareKV = DP * kElem > 256;
  static constexpr int LD = DP + TT::kPad, LT = O::kTransposed ? TT::kBlockK + TT::kPad : 0;
  static constexpr int vsize = O::kTransposed ? DP * LT : TT::kBlockK * LD;
  static constexpr int q = 0;                                       // Q          [64][LD]
  static constexpr int k = q + TT::kBlockQ * LD;                    // K          [64][LD]
  static constexpr int v = kShareKV ? k : k + TT::kBlockK * LD;     // Vᵀ [DP][LT] or V [64][LD]
  static constexpr int total = std::max(k + TT::kBlockK * LD, v + vsize);
  static constexpr size_t bytes = size_t(total) * kElem;
};

template <class E, int DP>
struct BwdQLayout {
  using O = Operand<E>;
  static constexpr size_t kElem = sizeof(typename O::Raw);
  static constexpr int CW = DP < TT::kMaxCols ? DP : TT::kMaxCols;
  static constexpr int LD = DP + TT::kPad, LT = O::kTransposed ? TT::kBlockK + TT::kPad : 0;
  static constexpr int q = 0;                          // Q           [64][LD]
  static constexpr int dout = q + TT::kBlockQ * LD;    // dO          [64][LD]
  static constexpr int k = dout + TT::kBlockQ * LD;    // K           [64][LD]
  static constexpr int v = k + TT::kBlockK * LD;       // V           [64][LD]
  static constexpr int kt = v + TT::kBlockK * LD;      // K[:, cols]ᵀ [CW][LT] (16-bit)
  static constexpr int total = kt + CW * LT;
  static constexpr size_t bytes = size_t(total) * kElem;
};

template <class E, int DP>
struct BwdKvLayout {
  using O = Operand<E>;
  static constexpr size_t kElem = sizeof(typename O::Raw);
  static constexpr int CW = DP < TT::kMaxCols ? DP : TT::kMaxCols;
  static constexpr int LD = DP + TT::kPad, LT = O::kTransposed ? TT::kTileQ + TT::kPad : 0;
  static constexpr int k = 0;                          // K            [64][LD]
  static constexpr int v = k + TT::kBlockK * LD;       // V            [64][LD]
  static constexpr int q = v + TT::kBlockK * LD;       // Q            [32][LD]
  static constexpr int dout = q + TT::kTileQ * LD;     // dO           [32][LD]
  static constexpr int qt = dout + TT::kTileQ * LD;    // Q[:, cols]ᵀ  [CW][LT] (16-bit)
  static constexpr int dot = qt + CW * LT;             // dO[:, cols]ᵀ [CW][LT] (16-bit)
  static constexpr int stats = dot + CW * LT;          // lse·log2e, D  2 x [32] F32
  static constexpr int total = stats + int(2 * TT::kTileQ * 4 / kElem);
  static constexpr size_t bytes = size_t(total) * kElem;
};
static_assert(BwdKvLayout<Bf16, 64>::stats % 2 == 0, "F32 statistics 4-byte aligned");


// The online-softmax step of a tile for a thread's two rows (log2 domain): the running max m
// becomes max(m, the quad's tile max mx), base = that max (0 for a row without keys so far: P = 0,
// no NaN), corr = exp2(m_old - base) rescales the running sum l (and, by the caller, the output).
__device__ __forceinline__ void online_rescale(float (&m)[2], float (&l)[2], const float (&mx)[2], float (&corr)[2],
                                               float (&base)[2]) {
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float mn = fmaxf(m[hr], quad_max(mx[hr]));
    base[hr] = mn == -INFINITY ? 0.f : mn;
    corr[hr] = exp2f(m[hr] - base[hr]);
    m[hr] = mn;
    l[hr] *= corr[hr];
  }
}


// ---- forward ------------------------------------------------------------------------------------
// Block: (b, h, 64 query rows); warp w owns rows [16w, 16w + 16); lane (g, t) holds rows g and g + 8
// of its warp: scores of keys 8nb + 2t + {0, 1} and output columns 8nb + 2t + {0, 1}.
template <class E, int DP>
__global__ void __launch_bounds__(TT::kThreads) tc_forward_kernel(const AttentionParams p, const int vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  using L = FwdLayout<E, DP>;
  constexpr int KS = O::kK;
  Raw* const sm = reinterpret_cast<Raw*>(mk_attention_smem);
  Raw *qs = sm + L::q, *ks = sm + L::k, *vs = sm + L::v;  // vs: Vᵀ (16-bit) or V (TF32)
  const int ldv = O::kTransposed ? L::LT : L::LD;
  const int64_t tiles = (p.nq + TT::kBlockQ - 1) / TT::kBlockQ;
  const int64_t bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * TT::kBlockQ;
  const TcHead<Raw> x = tc_head<Raw>(p, bh / p.heads, bh % p.heads);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int R = int(std::min<int64_t>(TT::kBlockQ, p.nq - q0));
  const int d = int(p.d), dv = int(p.dv);
  const int ksteps = (d + KS - 1) / KS, nblocks = (dv + 7) / 8;
  const float sl2 = float(p.scale) * kLog2e;
  auto load_v = [&](int64_t j0, int C) {
    if (O::kTransposed) load_tile_t<E, TT::kBlockK, DP>(vs, ldv, x.v + j0 * dv, dv, C, 0, vec != 0);
    else load_tile<E, TT::kBlockK, DP>(vs, ldv, x.v + j0 * dv, dv, C, 0, vec != 0);
  };

  load_tile<E, TT::kBlockQ, DP>(qs, L::LD, x.q + q0 * d, d, R, 0, vec != 0);
  const int64_t row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  int64_t kend[2];
  for (int h = 0; h < 2; ++h) kend[h] = row[h] < p.nq ? x.key_end(row[h]) : 0;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float o[DP / 8][4];
#pragma unroll
  for (int nb = 0; nb < DP / 8; ++nb)
#pragma unroll
    for (int r = 0; r < 4; ++r) o[nb][r] = 0.f;

  const int64_t end = x.key_end(q0 + R - 1);  // the block's last row sees the most keys
  const Raw* qw = qs + warp * 16 * L::LD;
  for (int64_t j0 = 0; j0 < end; j0 += TT::kBlockK) {
    const int C = int(std::min<int64_t>(TT::kBlockK, end - j0));
    __syncthreads();  // the previous tile is consumed
    load_tile<E, TT::kBlockK, DP>(ks, L::LD, x.k + j0 * d, d, C, 0, vec != 0);
    if (!L::kShareKV) load_v(j0, C);
    __syncthreads();
    // S = Q Kᵀ
    float s[TT::kBlockK / 8][4];
#pragma unroll
    for (int nb = 0; nb < TT::kBlockK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) s[nb][r] = 0.f;
    product_abt<E, DP>(s, qw, L::LD, ks, L::LD, ksteps, g, t);
    if (L::kShareKV) {  // K is consumed: V takes its place
      __syncthreads();
      load_v(j0, C);
      __syncthreads();
    }
    // scores in log2 units, masked; online softmax per row
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nb = 0; nb < TT::kBlockK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int hr = r >> 1;
        const int64_t j = j0 + nb * 8 + 2 * t + (r & 1);
        float v = -INFINITY;
        if (j < kend[hr]) {
          v = s[nb][r] * sl2;
          if (x.bias) v += kLog2e * O::to_float(x.bias[row[hr] * x.nk + j]);
        }
        s[nb][r] = v;
        mx[hr] = fmaxf(mx[hr], v);
      }
    float corr[2], base[2];
    online_rescale(m, l, mx, corr, base);
#pragma unroll
    for (int nb = 0; nb < TT::kBlockK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float pv = exp2f(s[nb][r] - base[r >> 1]);
        s[nb][r] = pv;
        l[r >> 1] += pv;
      }
#pragma unroll
    for (int nb = 0; nb < DP / 8; ++nb) {
      o[nb][0] *= corr[0];
      o[nb][1] *= corr[0];
      o[nb][2] *= corr[1];
      o[nb][3] *= corr[1];
    }
    // O += P V: P from the score registers
    product_pb<E>(o, s, vs, ldv, nblocks, g, t);
  }
  // reduce: out = O / l, lse = m + log l (F32, natural log)
  Raw* out = static_cast<Raw*>(p.out);
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float lr = quad_sum(l[hr]);
    const float inv = lr > 0.f ? 1.f / lr : 0.f;
    const int64_t i = row[hr];
    if (i < p.nq) {
      if (out) {
#pragma unroll
        for (int nb = 0; nb < DP / 8; ++nb)
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const int col = nb * 8 + 2 * t + c;
            if (col < dv) out[(x.base + i) * dv + col] = O::from_float(o[nb][2 * hr + c] * inv);
          }
      }
      if (p.lse && t == 0)
        static_cast<float*>(p.lse)[x.base + i] = lr > 0.f ? (m[hr] + log2f(lr)) * kLn2 : -INFINITY;
    }
  }
}

// ---- forward, v2: the FlashAttention-2 structure (16-bit, DP 64 or 128) -------------------------
// Block: (b, h, 128 query rows), 8 warps x 16 rows (lanes as in v1). K and V tiles of 64 keys come
// by cp.async into a 2-stage shared ring: tile j + 1 is in flight while tile j is multiplied, one
// barrier per tile. Fragments are read with ldmatrix: Q as A (x4), K as B of Q Kᵀ (x4: two
// n-blocks), V as B of P V with .trans (no transposed copy). Shared rows hold DP 16-bit values
// without padding; their 16-byte chunks are XOR-swizzled by the row (chunk c of row r sits at
// c ^ (r mod 8)), so the 8 rows of every ldmatrix matrix and every 16-byte store of a warp fall in
// distinct bank groups. Scores are masked only on the tiles where some row of the warp stops
// seeing keys (the causal diagonal, the padding edge) or when there is a bias; a warp skips the
// tiles none of its rows sees (causal). Same arithmetic as v1 per element (F32 accumulation, P
// rounded to 16 bit); the emulator test holds it to the same criterion (error ≤ 2x the naive
// 16-bit composition's).
struct Tc2Traits {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockQ = 16 * kWarps;  // query rows per block
  static constexpr int kBlockK = 64;           // keys per tile
  static constexpr int kStages = 2;            // K/V ring depth
};
using T2 = Tc2Traits;

// BK: keys per tile (T2::kBlockK, or 32 where the register budget asks for it: fwd2_block_k)
template <int DP, int BK = Tc2Traits::kBlockK>
struct Fwd2Layout {
  static_assert(DP == 64 || DP == 128, "v2: rows of 8 or 16 chunks, swizzled over 8");
  static constexpr int kStage = BK * DP;                      // one K or V tile
  static constexpr int q = 0;                                 // Q    [128][DP]
  static constexpr int k = q + T2::kBlockQ * DP;              // K    [2][BK][DP]
  static constexpr int v = k + T2::kStages * kStage;          // V    [2][BK][DP]
  static constexpr int total = v + T2::kStages * kStage;
  static constexpr size_t bytes = size_t(total) * 2;
};

// element offset of (row, col) in a swizzled tile of DP-wide 16-bit rows
template <int DP>
__device__ __forceinline__ int swz(int row, int col) {
  return row * DP + (((col >> 3) ^ (row & 7)) << 3) + (col & 7);
}

// Rows [0, ROWS) x cols [0, DP) of a row-major [rows, width] 16-bit matrix into a swizzled tile,
// zero past `rows` or `width`: cp.async for the whole in-range 16-byte chunks when `vec`, plain
// loads and stores for the rest. The caller commits the group.
template <int ROWS, int DP>
__device__ __forceinline__ void load_tile_async(uint16_t* dst, const uint16_t* src, int64_t width, int rows, bool vec) {
  constexpr int chunks = DP / 8;
  for (int idx = threadIdx.x; idx < ROWS * chunks; idx += T2::kThreads) {
    const int r = idx / chunks, c = (idx % chunks) * 8;
    uint16_t* const at = dst + swz<DP>(r, c);
    if (vec && r < rows && c + 8 <= width) {
      cp_async16(at, src + int64_t(r) * width + c, 16);
    } else {
      const Chunk<uint16_t> x = load_chunk(src, width, r, rows, c, false);
      uint4 w;
      memcpy(&w, x.e, 16);
      *reinterpret_cast<uint4*>(at) = w;
    }
  }
}

template <class E, int DP, int BK, int MINB>
__global__ void __launch_bounds__(T2::kThreads, MINB) tc2_forward_kernel(const AttentionParams p, const int vec) {
  using O = Operand<E>;
  using L = Fwd2Layout<DP, BK>;
  uint16_t* const sm = reinterpret_cast<uint16_t*>(mk_attention_smem);
  uint16_t *const qs = sm + L::q, *const ks = sm + L::k, *const vs = sm + L::v;
  const int64_t tiles = (p.nq + T2::kBlockQ - 1) / T2::kBlockQ;
  const int64_t bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * T2::kBlockQ;
  const TcHead<uint16_t> x = tc_head<uint16_t>(p, bh / p.heads, bh % p.heads);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int R = int(std::min<int64_t>(T2::kBlockQ, p.nq - q0));
  const int d = int(p.d), dv = int(p.dv);
  const int ksteps = (d + 15) / 16, nblocks = (dv + 7) / 8;
  const float sl2 = float(p.scale) * kLog2e;
  const int64_t end = x.key_end(q0 + R - 1);  // the block's last row sees the most keys
  const int ntiles = int((end + BK - 1) / BK);
  // the warp's rows: every one sees the keys below wfull (no mask there), none those from wend
  // (key indices in int: the dispatch keeps Nq, Nk < 2^31 for v2)
  const int64_t w0 = q0 + warp * 16;
  const int wfull = w0 < p.nq ? int(x.key_end(w0)) : 0;
  const int wend = w0 < p.nq ? int(x.key_end(std::min<int64_t>(w0 + 15, p.nq - 1))) : 0;
  int kend[2];  // (the lane's rows: w0 + g + 8 hr, recomputed where needed)
  for (int h = 0; h < 2; ++h) kend[h] = w0 + g + 8 * h < p.nq ? int(x.key_end(w0 + g + 8 * h)) : 0;

  // prologue: Q and the first K/V tile in one group
  load_tile_async<T2::kBlockQ, DP>(qs, x.q + q0 * d, d, R, vec != 0);
  if (ntiles > 0) {
    const int C = int(std::min<int64_t>(BK, end));
    load_tile_async<BK, DP>(ks, x.k, d, C, vec != 0);
    load_tile_async<BK, DP>(vs, x.v, dv, C, vec != 0);
  }
  cp_async_commit();

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float o[DP / 8][4];
  zero_acc(o);
  // this lane's ldmatrix rows: A (Q) and .trans B (V): row + 8 (lane / 8 odd), col + 8 (lane >= 16);
  // B (K): row + 8 (lane >= 16), col + 8 (lane / 8 odd)
  const auto [la_r, la_c, lb_r, lb_c] = ldmatrix_lanes(lane);

  for (int it = 0; it < ntiles; ++it) {
    const int stage = it & 1;
    const int j0 = it * BK;
    cp_async_wait<0>();  // this thread's copies of tile `it` have landed ...
    __syncthreads();     // ... everyone's; and every warp is done with tile it - 1 (the other stage)
    if (it + 1 < ntiles) {
      const int64_t j1 = j0 + BK;
      const int C = int(std::min<int64_t>(BK, end - j1));
      load_tile_async<BK, DP>(ks + (stage ^ 1) * L::kStage, x.k + j1 * d, d, C, vec != 0);
      load_tile_async<BK, DP>(vs + (stage ^ 1) * L::kStage, x.v + j1 * dv, dv, C, vec != 0);
      cp_async_commit();
    }
    if (j0 >= wend) continue;  // (warp-uniform) no row of this warp sees a key of the tile
    const uint16_t* const kst = ks + stage * L::kStage;
    const uint16_t* const vst = vs + stage * L::kStage;
    // S = Q Kᵀ
    float s[BK / 8][4];
    zero_acc(s);
#pragma unroll 1
    for (int kk = 0; kk < ksteps; ++kk) {  // (a loop: the swizzled addresses are not all kept live)
      {
        uint32_t a[4];
        ldmatrix_x4(a, qs + swz<DP>(warp * 16 + la_r, kk * 16 + la_c));
#pragma unroll
        for (int nb = 0; nb < BK / 8; nb += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, kst + swz<DP>(nb * 8 + lb_r, kk * 16 + lb_c));
          O::mma(s[nb], a, b[0], b[1]);
          O::mma(s[nb + 1], a, b[2], b[3]);
        }
      }
    }
    // scores in log2 units; masked only where needed
    float mx[2] = {-INFINITY, -INFINITY};
    if (!x.bias && j0 + BK <= wfull) {
#pragma unroll
      for (int nb = 0; nb < BK / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          s[nb][r] *= sl2;
          mx[r >> 1] = fmaxf(mx[r >> 1], s[nb][r]);
        }
    } else {
#pragma unroll
      for (int nb = 0; nb < BK / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int hr = r >> 1;
          const int j = j0 + nb * 8 + 2 * t + (r & 1);
          float v = -INFINITY;
          if (j < kend[hr]) {
            v = s[nb][r] * sl2;
            if (x.bias) v += kLog2e * O::to_float(x.bias[(w0 + g + 8 * hr) * x.nk + j]);
          }
          s[nb][r] = v;
          mx[hr] = fmaxf(mx[hr], v);
        }
    }
    float corr[2], base[2];
    online_rescale(m, l, mx, corr, base);
#pragma unroll
    for (int nb = 0; nb < BK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float pv = exp2f(s[nb][r] - base[r >> 1]);
        s[nb][r] = pv;
        l[r >> 1] += pv;
      }
#pragma unroll
    for (int nb = 0; nb < DP / 8; ++nb) {
      o[nb][0] *= corr[0];
      o[nb][1] *= corr[0];
      o[nb][2] *= corr[1];
      o[nb][3] *= corr[1];
    }
    // O += P V: P from the score registers, V's fragments by ldmatrix.trans
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t a[4];
      acc_to_a<E>(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int nb = 0; nb < DP / 8; nb += 2) {
        if (nb < nblocks) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, vst + swz<DP>(kk * 16 + la_r, nb * 8 + la_c));
          O::mma(o[nb], a, b[0], b[1]);
          if (nb + 1 < nblocks) O::mma(o[nb + 1], a, b[2], b[3]);
        }
      }
    }
  }
  cp_async_wait<0>();  // (no tile: the prologue's group)
  // reduce: out = O / l, lse = m + log l (F32, natural log)
  uint16_t* out = static_cast<uint16_t*>(p.out);
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float lr = quad_sum(l[hr]);
    const float inv = lr > 0.f ? 1.f / lr : 0.f;
    const int64_t i = w0 + g + 8 * hr;
    if (i < p.nq) {
      if (out) {
#pragma unroll
        for (int nb = 0; nb < DP / 8; ++nb) {
          const int col = nb * 8 + 2 * t;
          const int64_t at = (x.base + i) * dv + col;
          if (col + 1 < dv && vec) {
            *reinterpret_cast<uint32_t*>(out + at) = pack_half2<E>(o[nb][2 * hr] * inv, o[nb][2 * hr + 1] * inv);
          } else {
            if (col < dv) out[at] = O::from_float(o[nb][2 * hr] * inv);
            if (col + 1 < dv) out[at + 1] = O::from_float(o[nb][2 * hr + 1] * inv);
          }
        }
      }
      if (p.lse && t == 0)
        static_cast<float*>(p.lse)[x.base + i] = lr > 0.f ? (m[hr] + log2f(lr)) * kLn2 : -INFINITY;
    }
  }
}

// ---- backward -----------------------------------------------------------------------------------
// The column part 0 also writes the full dS (bias gradient) when asked.
template <class E, int DP>
__global__ void __launch_bounds__(TT::kThreads) tc_backward_query_kernel(const AttentionParams p, const int vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  using L = BwdQLayout<E, DP>;
  constexpr int CW = L::CW, PARTS = DP / CW, KS = O::kK;
  Raw* const sm = reinterpret_cast<Raw*>(mk_attention_smem);
  Raw *qs = sm + L::q, *dos = sm + L::dout, *ks = sm + L::k, *vs = sm + L::v, *kt = sm + L::kt;
  const int64_t tiles = (p.nq + TT::kBlockQ - 1) / TT::kBlockQ;
  const int part = int(blockIdx.x % PARTS);
  const int64_t tile = blockIdx.x / PARTS;
  const int64_t bh = tile / tiles, q0 = (tile % tiles) * TT::kBlockQ;
  const TcHead<Raw> x = tc_head<Raw>(p, bh / p.heads, bh % p.heads);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int d = int(p.d), dv = int(p.dv), c0 = part * CW;
  const int ksteps = (d + KS - 1) / KS, vsteps = (dv + KS - 1) / KS;
  const int qblocks = p.grad_q ? (std::min(CW, d - c0) + 7) / 8 : 0;  // dQ n-blocks of this part
  Raw* dsfull = part == 0 ? static_cast<Raw*>(p.grad_bias_full) : nullptr;
  if (qblocks <= 0 && !dsfull) return;  // nothing to do for this part (uniform over the block)
  const int R = int(std::min<int64_t>(TT::kBlockQ, p.nq - q0));
  const float sl2 = float(p.scale) * kLog2e;
  // B of dS K[:, part]: the transposed copy (16-bit) or K's own columns (TF32)
  const Raw* kb = O::kTransposed ? kt : ks + c0;
  const int ldkb = O::kTransposed ? L::LT : L::LD;

  load_tile<E, TT::kBlockQ, DP>(qs, L::LD, x.q + q0 * d, d, R, 0, vec != 0);
  load_tile<E, TT::kBlockQ, DP>(dos, L::LD, x.dout + q0 * dv, dv, R, 0, vec != 0);
  const int64_t row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  int64_t kend[2];
  float lse2[2], drow[2];
  for (int h = 0; h < 2; ++h) {
    const bool in = row[h] < p.nq;
    lse2[h] = in ? x.lse[row[h]] * kLog2e : 0.f;
    // a row whose lse is -inf (every key masked, also by -inf bias entries) has P = 0: no key,
    // rather than exp2(-inf − (-inf)) = NaN
    kend[h] = in && lse2[h] != -INFINITY ? x.key_end(row[h]) : 0;
    drow[h] = in ? x.drow[row[h]] : 0.f;
  }
  float dq[CW / 8][4];
  zero_acc(dq);

  const int64_t end = x.key_end(q0 + R - 1);
  const Raw* qw = qs + warp * 16 * L::LD;
  const Raw* dow = dos + warp * 16 * L::LD;
  for (int64_t j0 = 0; j0 < end; j0 += TT::kBlockK) {
    const int C = int(std::min<int64_t>(TT::kBlockK, end - j0));
    __syncthreads();
    load_tile<E, TT::kBlockK, DP>(ks, L::LD, x.k + j0 * d, d, C, 0, vec != 0);
    load_tile<E, TT::kBlockK, DP>(vs, L::LD, x.v + j0 * dv, dv, C, 0, vec != 0);
    if (O::kTransposed && qblocks > 0) load_tile_t<E, TT::kBlockK, CW>(kt, L::LT, x.k + j0 * d, d, C, c0, vec != 0);
    __syncthreads();
    float s[TT::kBlockK / 8][4], dp[TT::kBlockK / 8][4];
#pragma unroll
    for (int nb = 0; nb < TT::kBlockK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) s[nb][r] = dp[nb][r] = 0.f;
    product_abt<E, DP>(s, qw, L::LD, ks, L::LD, ksteps, g, t);     // S = Q Kᵀ
    product_abt<E, DP>(dp, dow, L::LD, vs, L::LD, vsteps, g, t);  // dP = dO Vᵀ
    // dS = P ∘ (dP − D), P = exp(S − lse); masked entries are 0
#pragma unroll
    for (int nb = 0; nb < TT::kBlockK / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int hr = r >> 1;
        const int64_t j = j0 + nb * 8 + 2 * t + (r & 1);
        float ds = 0.f;
        if (j < kend[hr]) {
          float v = s[nb][r] * sl2;
          if (x.bias) v += kLog2e * O::to_float(x.bias[row[hr] * x.nk + j]);
          ds = exp2f(v - lse2[hr]) * (dp[nb][r] - drow[hr]);
        }
        s[nb][r] = ds;
        if (dsfull && row[hr] < p.nq && j < p.nk) dsfull[(x.base + row[hr]) * p.nk + j] = O::from_float(ds);
      }
    // dQ[:, part] += dS K[:, part]
    product_pb<E>(dq, s, kb, ldkb, qblocks, g, t);
  }
  // reduce: dQ = scale · acc
  Raw* dqo = static_cast<Raw*>(p.grad_q);
  if (!dqo) return;
  const float scale = float(p.scale);
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    if (row[hr] >= p.nq) continue;
#pragma unroll
    for (int nb = 0; nb < CW / 8; ++nb)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = c0 + nb * 8 + 2 * t + c;
        if (col < d && col < c0 + CW) dqo[(x.base + row[hr]) * d + col] = O::from_float(dq[nb][2 * hr + c] * scale);
      }
  }
}

// dK/dV pass. Block: (b, KV head, 64 keys, column part); warp w owns keys [16w, 16w + 16), lane
// (g, t) keys g and g + 8 of them. Loops over the query heads of the KV head and over query tiles
// of 32 rows (from the first row that sees the block's first key): Sᵀ = K Qᵀ, Pᵀ = exp(Sᵀ − lse),
// dPᵀ = V dOᵀ, dSᵀ = Pᵀ ∘ (dPᵀ − D); dV[:, part] += Pᵀ dO[:, part], dK[:, part] += dSᵀ Q[:, part].
template <class E, int DP>
__global__ void __launch_bounds__(TT::kThreads) tc_backward_key_kernel(const AttentionParams p, const int vec) {
  using O = Operand<E>;
  using Raw = typename O::Raw;
  using L = BwdKvLayout<E, DP>;
  constexpr int CW = L::CW, PARTS = DP / CW, TQ = TT::kTileQ, KS = O::kK;
  Raw* const sm = reinterpret_cast<Raw*>(mk_attention_smem);
  Raw *ks = sm + L::k, *vs = sm + L::v, *qs = sm + L::q, *dos = sm + L::dout, *qt = sm + L::qt, *dot = sm + L::dot;
  float* const lse_s = reinterpret_cast<float*>(sm + L::stats);
  float* const d_s = lse_s + TQ;
  const int64_t tiles = (p.nk + TT::kBlockK - 1) / TT::kBlockK;
  const int part = int(blockIdx.x % PARTS);
  const int64_t tile = blockIdx.x / PARTS;
  const int64_t bk = tile / tiles, k0 = (tile % tiles) * TT::kBlockK;
  const int64_t b = bk / p.kv_heads, hk = bk % p.kv_heads, group = p.heads / p.kv_heads;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int d = int(p.d), dv = int(p.dv), c0 = part * CW;
  const int ksteps = (d + KS - 1) / KS, vsteps = (dv + KS - 1) / KS;
  const int kblocks = p.grad_k ? (std::min(CW, d - c0) + 7) / 8 : 0;   // dK n-blocks of this part
  const int vblocks = p.grad_v ? (std::min(CW, dv - c0) + 7) / 8 : 0;  // dV n-blocks of this part
  const int64_t len = p.key_lengths ? p.key_lengths[b] : p.nk;
  if (k0 >= len || (kblocks <= 0 && vblocks <= 0)) return;  // padding keys: gradients stay 0
  const int C = int(std::min<int64_t>(TT::kBlockK, p.nk - k0));
  const float sl2 = float(p.scale) * kLog2e;
  // B of dSᵀ Q[:, part] and Pᵀ dO[:, part]: transposed copies (16-bit) or the tiles' own columns (TF32)
  const Raw* qb = O::kTransposed ? qt : qs + c0;
  const Raw* dob = O::kTransposed ? dot : dos + c0;
  const int ldb = O::kTransposed ? L::LT : L::LD;

  const Raw* kg = attention_at<Raw>(p.k, bk * p.nk * d) + k0 * d;
  const Raw* vg = attention_at<Raw>(p.v, bk * p.nk * dv) + k0 * dv;
  load_tile<E, TT::kBlockK, DP>(ks, L::LD, kg, d, C, 0, vec != 0);
  load_tile<E, TT::kBlockK, DP>(vs, L::LD, vg, dv, C, 0, vec != 0);
  const int64_t key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};
  float dk[CW / 8][4], dvv[CW / 8][4];
#pragma unroll
  for (int nb = 0; nb < CW / 8; ++nb)
#pragma unroll
    for (int r = 0; r < 4; ++r) dk[nb][r] = dvv[nb][r] = 0.f;
  const Raw* kw = ks + warp * 16 * L::LD;
  const Raw* vw = vs + warp * 16 * L::LD;

  for (int64_t hq = 0; hq < group; ++hq) {
    const TcHead<Raw> x = tc_head<Raw>(p, b, hk * group + hq);
    for (int64_t i0 = (x.first_row(k0) / TQ) * TQ; i0 < p.nq; i0 += TQ) {
      const int R = int(std::min<int64_t>(TQ, p.nq - i0));
      __syncthreads();  // the previous query tile is consumed (and K, V are loaded on the first)
      load_tile<E, TQ, DP>(qs, L::LD, x.q + i0 * d, d, R, 0, vec != 0);
      load_tile<E, TQ, DP>(dos, L::LD, x.dout + i0 * dv, dv, R, 0, vec != 0);
      if (O::kTransposed && kblocks > 0) load_tile_t<E, TQ, CW>(qt, L::LT, x.q + i0 * d, d, R, c0, vec != 0);
      if (O::kTransposed && vblocks > 0) load_tile_t<E, TQ, CW>(dot, L::LT, x.dout + i0 * dv, dv, R, c0, vec != 0);
      for (int r = threadIdx.x; r < TQ; r += TT::kThreads) {
        lse_s[r] = r < R ? x.lse[i0 + r] * kLog2e : 0.f;
        d_s[r] = r < R ? x.drow[i0 + r] : 0.f;
      }
      __syncthreads();
      float st[TQ / 8][4], dpt[TQ / 8][4];
#pragma unroll
      for (int nb = 0; nb < TQ / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) st[nb][r] = dpt[nb][r] = 0.f;
      product_abt<E, DP>(st, kw, L::LD, qs, L::LD, ksteps, g, t);    // Sᵀ = K Qᵀ
      product_abt<E, DP>(dpt, vw, L::LD, dos, L::LD, vsteps, g, t);  // dPᵀ = V dOᵀ
      // Pᵀ and dSᵀ (element (key, query)); masked entries are 0
#pragma unroll
      for (int nb = 0; nb < TQ / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int qc = nb * 8 + 2 * t + (r & 1);
          const int64_t i = i0 + qc, j = key[r >> 1];
          // masked entries set, not multiplied: padding keys may hold anything, NaN included (0 · NaN)
          float pv = 0.f, ds = 0.f;
          if (i < p.nq && j < x.key_end(i) && lse_s[qc] != -INFINITY) {  // (lse -inf: no key, P = 0)
            float v = st[nb][r] * sl2;
            if (x.bias) v += kLog2e * O::to_float(x.bias[i * x.nk + j]);
            pv = exp2f(v - lse_s[qc]);
            ds = pv * (dpt[nb][r] - d_s[qc]);
          }
          st[nb][r] = pv;
          dpt[nb][r] = ds;
        }
      if (vblocks > 0) product_pb<E>(dvv, st, dob, ldb, vblocks, g, t);  // dV += Pᵀ dO[:, part]
      if (kblocks > 0) product_pb<E>(dk, dpt, qb, ldb, kblocks, g, t);   // dK += dSᵀ Q[:, part]
    }
  }
  // reduce: dK = scale · acc, dV = acc
  const float scale = float(p.scale);
  Raw* dko = p.grad_k ? static_cast<Raw*>(p.grad_k) + bk * p.nk * d : nullptr;
  Raw* dvo = p.grad_v ? static_cast<Raw*>(p.grad_v) + bk * p.nk * dv : nullptr;
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t j = key[hr];
    if (j >= p.nk) continue;
#pragma unroll
    for (int nb = 0; nb < CW / 8; ++nb)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = c0 + nb * 8 + 2 * t + c;
        if (dko && col < d && col < c0 + CW) dko[j * d + col] = O::from_float(dk[nb][2 * hr + c] * scale);
        if (dvo && col < dv && col < c0 + CW) dvo[j * dv + col] = O::from_float(dvv[nb][2 * hr + c]);
      }
  }
}

// ---- backward, v2: the FlashAttention-2 structure (16-bit, DP 64 or 128) ------------------------
// Two passes as v1 (no atomics: every output element has one owner block; deterministic), after
// the same preprocess D = rowsum(dO ∘ O) (tc_rowdot_kernel), with the v2 forward's machinery:
// 8 warps x 16 rows, cp.async 2-stage rings, ldmatrix fragments (.trans for the row-major B
// operands: no transposed copies), XOR-swizzled shared rows (swz), masks only on the tiles that
// need them (causal diagonal, padding edge, bias), exp2 of log2e-scaled scores, and the P / dS of
// a tile kept in registers as the A operand of the next product (as P in the forward).
//   dQ pass   block: (b, h, 128 query rows); Q and dO stay in shared; K/V tiles of BK keys come
//             through the ring. Per tile: S = Q Kᵀ, dP = dO Vᵀ (ldmatrix x4 of K and V rows),
//             dS = P ∘ (dP − D) with P = exp2(S·scale·log2e − lse·log2e); dQ += dS K (K by
//             ldmatrix.trans). The full dS (bias gradient) is written here when asked.
//   dK/dV     block: (b, KV head, 128 keys), warp w keys [16w, 16w + 16); K and V stay in shared;
//             query tiles of TQ rows (Q, dO, lse·log2e, D) through the ring, over the query heads
//             of the KV head, from the first row that sees the block's first key. Per tile:
//             Sᵀ = K Qᵀ, dPᵀ = V dOᵀ (Q and dO rows by ldmatrix x4), Pᵀ, dSᵀ in registers;
//             dV += Pᵀ dO, dK += dSᵀ Q (dO and Q by ldmatrix.trans). A warp skips the tiles none
//             of whose rows sees one of its keys.
// Same arithmetic per element as v1 (F32 accumulation; P, dS rounded to 16 bit as A operands).
template <int DP, int BK>
struct Bwd2QLayout {
  static_assert(DP == 64 || DP == 128, "v2: rows of 8 or 16 chunks, swizzled over 8");
  static constexpr int kStage = BK * DP;              // one K or V tile
  static constexpr int q = 0;                         // Q   [128][DP]
  static constexpr int dout = q + T2::kBlockQ * DP;   // dO  [128][DP]
  static constexpr int k = dout + T2::kBlockQ * DP;   // K   [2][BK][DP]
  static constexpr int v = k + T2::kStages * kStage;  // V   [2][BK][DP]
  static constexpr int total = v + T2::kStages * kStage;
  static constexpr size_t bytes = size_t(total) * 2;
};

template <int DP, int TQ>
struct Bwd2KvLayout {
  static_assert(DP == 64 || DP == 128, "v2: rows of 8 or 16 chunks, swizzled over 8");
  static_assert(TQ % 16 == 0, "k-steps of Pᵀ dO are 16 queries");
  static constexpr int kBlockK = 16 * T2::kWarps;            // keys per block
  static constexpr int kStage = TQ * DP;                     // one Q or dO tile
  static constexpr int k = 0;                                // K   [128][DP]
  static constexpr int v = k + kBlockK * DP;                 // V   [128][DP]
  static constexpr int q = v + kBlockK * DP;                 // Q   [2][TQ][DP]
  static constexpr int dout = q + T2::kStages * kStage;      // dO  [2][TQ][DP]
  static constexpr int stats = dout + T2::kStages * kStage;  // F32 [2][lse·log2e, D][TQ]
  static constexpr int total = stats + T2::kStages * 2 * TQ * 2;
  static constexpr size_t bytes = size_t(total) * 2;
};

// flags of the v2 backward launches: 16-byte loads (vector_ok), paired 16-bit stores of dQ, dK,
// dV (head dims multiples of 8, 16-byte aligned gradients), paired stores of dS (Nk even)
enum : int { kBwd2VecLoad = 1, kBwd2VecStore = 2, kBwd2PairDs = 4 };

// NS: keys per sub-step of a tile (S, dP of NS keys live at once: the register budget)
template <class E, int DP, int BK, int NS, int MINB>
__global__ void __launch_bounds__(T2::kThreads, MINB)
    tc2_backward_query_kernel(const AttentionParams p, const int flags) {
  using O = Operand<E>;
  using L = Bwd2QLayout<DP, BK>;
  static_assert(NS % 16 == 0 && BK % NS == 0, "sub-steps of whole 16-key k-steps");
  const bool vec = (flags & kBwd2VecLoad) != 0;
  uint16_t* const sm = reinterpret_cast<uint16_t*>(mk_attention_smem);
  uint16_t *const qs = sm + L::q, *const dos = sm + L::dout, *const ks = sm + L::k, *const vs = sm + L::v;
  const int64_t tiles = (p.nq + T2::kBlockQ - 1) / T2::kBlockQ;
  const int64_t bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * T2::kBlockQ;
  const TcHead<uint16_t> x = tc_head<uint16_t>(p, bh / p.heads, bh % p.heads);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int R = int(std::min<int64_t>(T2::kBlockQ, p.nq - q0));
  const int d = int(p.d), dv = int(p.dv);
  const int ksteps = (d + 15) / 16, vsteps = (dv + 15) / 16;
  const int qblocks = p.grad_q ? (d + 7) / 8 : 0;  // dQ n-blocks
  uint16_t* const dsfull = static_cast<uint16_t*>(p.grad_bias_full);
  if (qblocks == 0 && !dsfull) return;  // (uniform over the grid)
  const float sl2 = float(p.scale) * kLog2e;
  const int64_t end = x.key_end(q0 + R - 1);  // the block's last row sees the most keys
  const int ntiles = int((end + BK - 1) / BK);
  // the warp's rows see every key below wfull, none from wend (key indices in int: Nq, Nk < 2^31)
  const int64_t w0 = q0 + warp * 16;
  const int wfull = w0 < p.nq ? int(x.key_end(w0)) : 0;
  const int wend = w0 < p.nq ? int(x.key_end(std::min<int64_t>(w0 + 15, p.nq - 1))) : 0;
  int kend[2];
  float lse2[2], drow[2];
  for (int h = 0; h < 2; ++h) {
    const int64_t i = w0 + g + 8 * h;
    const bool in = i < p.nq;
    lse2[h] = in ? x.lse[i] * kLog2e : 0.f;
    // a row whose lse is -inf (every key masked, also by -inf bias entries) has P = 0: no key
    kend[h] = in && lse2[h] != -INFINITY ? int(x.key_end(i)) : 0;
    drow[h] = in ? x.drow[i] : 0.f;
  }

  // prologue: Q, dO and the first K/V tile in one group
  load_tile_async<T2::kBlockQ, DP>(qs, x.q + q0 * d, d, R, vec);
  load_tile_async<T2::kBlockQ, DP>(dos, x.dout + q0 * dv, dv, R, vec);
  if (ntiles > 0) {
    const int C = int(std::min<int64_t>(BK, end));
    load_tile_async<BK, DP>(ks, x.k, d, C, vec);
    load_tile_async<BK, DP>(vs, x.v, dv, C, vec);
  }
  cp_async_commit();

  float dq[DP / 8][4];
  zero_acc(dq);
  // ldmatrix rows of this lane: A (Q, dO) and .trans B (K as [key][col]): row + 8 (lane / 8 odd),
  // col + 8 (lane >= 16); B (K, V as [key][col], n-major): row + 8 (lane >= 16), col + 8 (lane / 8 odd)
  const auto [la_r, la_c, lb_r, lb_c] = ldmatrix_lanes(lane);

  for (int it = 0; it < ntiles; ++it) {
    const int stage = it & 1;
    const int jt = it * BK;
    cp_async_wait<0>();  // this thread's copies of tile `it` have landed ...
    __syncthreads();     // ... everyone's; and every warp is done with tile it - 1 (the other stage)
    if (it + 1 < ntiles) {
      const int64_t j1 = jt + BK;
      const int C = int(std::min<int64_t>(BK, end - j1));
      load_tile_async<BK, DP>(ks + (stage ^ 1) * L::kStage, x.k + j1 * d, d, C, vec);
      load_tile_async<BK, DP>(vs + (stage ^ 1) * L::kStage, x.v + j1 * dv, dv, C, vec);
      cp_async_commit();
    }
    if (jt >= wend) continue;  // (warp-uniform) no row of this warp sees a key of the tile
    const uint16_t* const kst = ks + stage * L::kStage;
    const uint16_t* const vst = vs + stage * L::kStage;
#pragma unroll 1
    for (int j0 = jt; j0 < jt + BK; j0 += NS) {  // sub-steps of NS keys
      if (j0 >= wend) break;
      // S = Q Kᵀ, dP = dO Vᵀ (rows j0 - jt .. of the stage)
      const int jr = j0 - jt;
      float s[NS / 8][4], dp[NS / 8][4];
#pragma unroll
      for (int nb = 0; nb < NS / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) s[nb][r] = dp[nb][r] = 0.f;
#pragma unroll 1
      for (int kk = 0; kk < ksteps; ++kk) {
        uint32_t a[4];
        ldmatrix_x4(a, qs + swz<DP>(warp * 16 + la_r, kk * 16 + la_c));
#pragma unroll
        for (int nb = 0; nb < NS / 8; nb += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, kst + swz<DP>(jr + nb * 8 + lb_r, kk * 16 + lb_c));
          O::mma(s[nb], a, b[0], b[1]);
          O::mma(s[nb + 1], a, b[2], b[3]);
        }
      }
#pragma unroll 1
      for (int kk = 0; kk < vsteps; ++kk) {
        uint32_t a[4];
        ldmatrix_x4(a, dos + swz<DP>(warp * 16 + la_r, kk * 16 + la_c));
#pragma unroll
        for (int nb = 0; nb < NS / 8; nb += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, vst + swz<DP>(jr + nb * 8 + lb_r, kk * 16 + lb_c));
          O::mma(dp[nb], a, b[0], b[1]);
          O::mma(dp[nb + 1], a, b[2], b[3]);
        }
      }
      // dS = P ∘ (dP − D) into s; masked entries 0, masks only where some row stops seeing keys
      if (!x.bias && j0 + NS <= wfull) {
#pragma unroll
        for (int nb = 0; nb < NS / 8; ++nb)
#pragma unroll
          for (int r = 0; r < 4; ++r) {
            const int hr = r >> 1;
            s[nb][r] = exp2f(s[nb][r] * sl2 - lse2[hr]) * (dp[nb][r] - drow[hr]);
          }
      } else {
#pragma unroll
        for (int nb = 0; nb < NS / 8; ++nb)
#pragma unroll
          for (int r = 0; r < 4; ++r) {
            const int hr = r >> 1;
            const int j = j0 + nb * 8 + 2 * t + (r & 1);
            float ds = 0.f;
            if (j < kend[hr]) {
              float v = s[nb][r] * sl2;
              if (x.bias) v += kLog2e * O::to_float(x.bias[(w0 + g + 8 * hr) * x.nk + j]);
              ds = exp2f(v - lse2[hr]) * (dp[nb][r] - drow[hr]);
            }
            s[nb][r] = ds;
          }
      }
      if (dsfull) {  // the bias gradient: every entry of the tile's keys below Nk
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          const int64_t i = w0 + g + 8 * hr;
          if (i >= p.nq) continue;
          uint16_t* const drow_out = dsfull + (x.base + i) * p.nk;
#pragma unroll
          for (int nb = 0; nb < NS / 8; ++nb) {
            const int j = j0 + nb * 8 + 2 * t;
            if ((flags & kBwd2PairDs) && j + 1 < p.nk) {
              *reinterpret_cast<uint32_t*>(drow_out + j) = pack_half2<E>(s[nb][2 * hr], s[nb][2 * hr + 1]);
            } else {
              if (j < p.nk) drow_out[j] = O::from_float(s[nb][2 * hr]);
              if (j + 1 < p.nk) drow_out[j + 1] = O::from_float(s[nb][2 * hr + 1]);
            }
          }
        }
      }
      // dQ += dS K: dS from the registers, K's fragments by ldmatrix.trans
      if (qblocks > 0) {
#pragma unroll
        for (int kk = 0; kk < NS / 16; ++kk) {
          uint32_t a[4];
          acc_to_a<E>(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
          for (int nb = 0; nb < DP / 8; nb += 2) {
            if (nb < qblocks) {
              uint32_t b[4];
              ldmatrix_x4_trans(b, kst + swz<DP>(jr + kk * 16 + la_r, nb * 8 + la_c));
              O::mma(dq[nb], a, b[0], b[1]);
              if (nb + 1 < qblocks) O::mma(dq[nb + 1], a, b[2], b[3]);
            }
          }
        }
      }
    }
  }
  cp_async_wait<0>();  // (no tile: the prologue's group)
  // reduce: dQ = scale · acc
  uint16_t* const dqo = static_cast<uint16_t*>(p.grad_q);
  if (!dqo) return;
  const float scale = float(p.scale);
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t i = w0 + g + 8 * hr;
    if (i >= p.nq) continue;
#pragma unroll
    for (int nb = 0; nb < DP / 8; ++nb) {
      const int col = nb * 8 + 2 * t;
      const int64_t at = (x.base + i) * d + col;
      if ((flags & kBwd2VecStore) && col + 1 < d) {
        *reinterpret_cast<uint32_t*>(dqo + at) = pack_half2<E>(dq[nb][2 * hr] * scale, dq[nb][2 * hr + 1] * scale);
      } else {
        if (col < d) dqo[at] = O::from_float(dq[nb][2 * hr] * scale);
        if (col + 1 < d) dqo[at + 1] = O::from_float(dq[nb][2 * hr + 1] * scale);
      }
    }
  }
}

template <class E, int DP, int TQ, int MINB>
__global__ void __launch_bounds__(T2::kThreads, MINB)
    tc2_backward_key_kernel(const AttentionParams p, const int flags) {
  using O = Operand<E>;
  using L = Bwd2KvLayout<DP, TQ>;
  constexpr int BKV = L::kBlockK;
  const bool vec = (flags & kBwd2VecLoad) != 0;
  uint16_t* const sm = reinterpret_cast<uint16_t*>(mk_attention_smem);
  uint16_t *const ks = sm + L::k, *const vs = sm + L::v, *const qs = sm + L::q, *const dos = sm + L::dout;
  float* const stats = reinterpret_cast<float*>(sm + L::stats);
  const int64_t tiles = (p.nk + BKV - 1) / BKV;
  const int64_t bk = blockIdx.x / tiles, k0 = (blockIdx.x % tiles) * BKV;
  const int64_t b = bk / p.kv_heads, hk = bk % p.kv_heads, group = p.heads / p.kv_heads;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, g = lane >> 2, t = lane & 3;
  const int d = int(p.d), dv = int(p.dv);
  const int ksteps = (d + 15) / 16, vsteps = (dv + 15) / 16;
  const int kblocks = p.grad_k ? (d + 7) / 8 : 0;   // dK n-blocks
  const int vblocks = p.grad_v ? (dv + 7) / 8 : 0;  // dV n-blocks
  const int64_t len = p.key_lengths ? p.key_lengths[b] : p.nk;
  if (k0 >= len || (kblocks == 0 && vblocks == 0)) return;  // padding keys: gradients stay 0 (as v1)
  const int C = int(std::min<int64_t>(BKV, p.nk - k0));
  const float sl2 = float(p.scale) * kLog2e;
  // the masks (len, offset, causal) are those of the batch entry: the same for every query head
  const TcHead<uint16_t> x0 = tc_head<uint16_t>(p, b, hk * group);
  const int kw0 = int(k0) + warp * 16;  // the warp's first key
  const int64_t istart = (x0.first_row(k0) / TQ) * TQ;
  const int64_t nt = istart < p.nq ? (p.nq - istart + TQ - 1) / TQ : 0;  // query tiles per head
  const int64_t total = group * nt;

  // the query tile (query head hk·group + hq, rows from istart + ti·TQ) into a stage
  auto issue = [&](int64_t hq, int64_t ti, int stage) {
    const TcHead<uint16_t> x = tc_head<uint16_t>(p, b, hk * group + hq);
    const int64_t i0 = istart + ti * TQ;
    const int R = int(std::min<int64_t>(TQ, p.nq - i0));
    load_tile_async<TQ, DP>(qs + stage * L::kStage, x.q + i0 * d, d, R, vec);
    load_tile_async<TQ, DP>(dos + stage * L::kStage, x.dout + i0 * dv, dv, R, vec);
    float* const st = stats + stage * 2 * TQ;
    for (int r = threadIdx.x; r < TQ; r += T2::kThreads) {
      st[r] = r < R ? x.lse[i0 + r] * kLog2e : 0.f;
      st[TQ + r] = r < R ? x.drow[i0 + r] : 0.f;
    }
  };
  // prologue: K, V of the block and the first query tile in one group
  load_tile_async<BKV, DP>(ks, attention_at<uint16_t>(p.k, bk * p.nk * d) + k0 * d, d, C, vec);
  load_tile_async<BKV, DP>(vs, attention_at<uint16_t>(p.v, bk * p.nk * dv) + k0 * dv, dv, C, vec);
  if (total > 0) issue(0, 0, 0);
  cp_async_commit();

  float dk[DP / 8][4], dvv[DP / 8][4];
#pragma unroll
  for (int nb = 0; nb < DP / 8; ++nb)
#pragma unroll
    for (int r = 0; r < 4; ++r) dk[nb][r] = dvv[nb][r] = 0.f;
  // ldmatrix rows of this lane: A (K, V) and .trans B (Q, dO as [query][col]); B (Q, dO, n-major)
  const auto [la_r, la_c, lb_r, lb_c] = ldmatrix_lanes(lane);

  // the lane's keys j: seen by the rows i >= jfirst (causal) when j < len
  int jfirst[2];
  bool jin[2];
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t j = kw0 + g + 8 * hr;
    jin[hr] = j < len;
    jfirst[hr] = x0.causal ? int(std::max<int64_t>(j - x0.off, 0)) : 0;
  }
  int64_t hq = 0, ti = 0;  // the next tile to compute
  for (int64_t it = 0; it < total; ++it) {
    const int stage = int(it & 1);
    const int64_t hcur = hq, i0 = istart + ti * TQ;
    if (++ti == nt) {
      ti = 0;
      ++hq;
    }
    cp_async_wait<0>();  // this thread's copies of tile `it` have landed ...
    __syncthreads();     // ... everyone's; and every warp is done with tile it - 1 (the other stage)
    if (it + 1 < total) {
      issue(hq, ti, stage ^ 1);
      cp_async_commit();
    }
    // (warp-uniform) no row of the tile sees a key of this warp (key_end grows with the row)
    if (kw0 >= x0.key_end(std::min<int64_t>(i0 + TQ, p.nq) - 1)) continue;
    const uint16_t* const qst = qs + stage * L::kStage;
    const uint16_t* const dost = dos + stage * L::kStage;
    const float* const lse_s = stats + stage * 2 * TQ;
    const float* const d_s = lse_s + TQ;
    // Sᵀ = K Qᵀ, dPᵀ = V dOᵀ (the warp's 16 keys x TQ queries)
    float st[TQ / 8][4], dpt[TQ / 8][4];
#pragma unroll
    for (int nb = 0; nb < TQ / 8; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) st[nb][r] = dpt[nb][r] = 0.f;
#pragma unroll 1
    for (int kk = 0; kk < ksteps; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, ks + swz<DP>(warp * 16 + la_r, kk * 16 + la_c));
#pragma unroll
      for (int nb = 0; nb < TQ / 8; nb += 2) {
        uint32_t bb[4];
        ldmatrix_x4(bb, qst + swz<DP>(nb * 8 + lb_r, kk * 16 + lb_c));
        O::mma(st[nb], a, bb[0], bb[1]);
        O::mma(st[nb + 1], a, bb[2], bb[3]);
      }
    }
#pragma unroll 1
    for (int kk = 0; kk < vsteps; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, vs + swz<DP>(warp * 16 + la_r, kk * 16 + la_c));
#pragma unroll
      for (int nb = 0; nb < TQ / 8; nb += 2) {
        uint32_t bb[4];
        ldmatrix_x4(bb, dost + swz<DP>(nb * 8 + lb_r, kk * 16 + lb_c));
        O::mma(dpt[nb], a, bb[0], bb[1]);
        O::mma(dpt[nb + 1], a, bb[2], bb[3]);
      }
    }
    // Pᵀ into st, dSᵀ = Pᵀ ∘ (dPᵀ − D) into dpt (element (key, query)); masked entries 0
    const uint16_t* const bias = p.bias ? tc_head<uint16_t>(p, b, hk * group + hcur).bias : nullptr;
    if (!bias && i0 + TQ <= p.nq && x0.key_end(i0) >= kw0 + 16) {
#pragma unroll
      for (int nb = 0; nb < TQ / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int qc = nb * 8 + 2 * t + (r & 1);
          const float pv = exp2f(st[nb][r] * sl2 - lse_s[qc]);
          st[nb][r] = pv;
          dpt[nb][r] = pv * (dpt[nb][r] - d_s[qc]);
        }
    } else {
#pragma unroll
      for (int nb = 0; nb < TQ / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int qc = nb * 8 + 2 * t + (r & 1);
          const int i = int(i0) + qc, hr = r >> 1;
          // masked entries set, not multiplied: padding keys may hold anything, NaN included (0 · NaN)
          float pv = 0.f, ds = 0.f;
          if (i < p.nq && jin[hr] && i >= jfirst[hr] && lse_s[qc] != -INFINITY) {  // (lse -inf: no key, P = 0)
            float v = st[nb][r] * sl2;
            if (bias) v += kLog2e * O::to_float(bias[int64_t(i) * x0.nk + kw0 + g + 8 * hr]);
            pv = exp2f(v - lse_s[qc]);
            ds = pv * (dpt[nb][r] - d_s[qc]);
          }
          st[nb][r] = pv;
          dpt[nb][r] = ds;
        }
    }
    // dV += Pᵀ dO, dK += dSᵀ Q: A from the registers, B by ldmatrix.trans
#pragma unroll
    for (int kk = 0; kk < TQ / 16; ++kk) {
      if (vblocks > 0) {
        uint32_t a[4];
        acc_to_a<E>(a, st[2 * kk], st[2 * kk + 1]);
#pragma unroll
        for (int nb = 0; nb < DP / 8; nb += 2) {
          if (nb < vblocks) {
            uint32_t bb[4];
            ldmatrix_x4_trans(bb, dost + swz<DP>(kk * 16 + la_r, nb * 8 + la_c));
            O::mma(dvv[nb], a, bb[0], bb[1]);
            if (nb + 1 < vblocks) O::mma(dvv[nb + 1], a, bb[2], bb[3]);
          }
        }
      }
      if (kblocks > 0) {
        uint32_t a[4];
        acc_to_a<E>(a, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
        for (int nb = 0; nb < DP / 8; nb += 2) {
          if (nb < kblocks) {
            uint32_t bb[4];
            ldmatrix_x4_trans(bb, qst + swz<DP>(kk * 16 + la_r, nb * 8 + la_c));
            O::mma(dk[nb], a, bb[0], bb[1]);
            if (nb + 1 < kblocks) O::mma(dk[nb + 1], a, bb[2], bb[3]);
          }
        }
      }
    }
  }
  cp_async_wait<0>();  // (no tile: the prologue's group)
  // reduce: dK = scale · acc, dV = acc
  const float scale = float(p.scale);
  uint16_t* const dko = p.grad_k ? static_cast<uint16_t*>(p.grad_k) + bk * p.nk * d : nullptr;
  uint16_t* const dvo = p.grad_v ? static_cast<uint16_t*>(p.grad_v) + bk * p.nk * dv : nullptr;
  const bool pairs = (flags & kBwd2VecStore) != 0;
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t j = kw0 + g + 8 * hr;
    if (j >= p.nk) continue;
#pragma unroll
    for (int nb = 0; nb < DP / 8; ++nb) {
      const int col = nb * 8 + 2 * t;
      if (dko) {
        const float lo = dk[nb][2 * hr] * scale, hi = dk[nb][2 * hr + 1] * scale;
        if (pairs && col + 1 < d) {
          *reinterpret_cast<uint32_t*>(dko + j * d + col) = pack_half2<E>(lo, hi);
        } else {
          if (col < d) dko[j * d + col] = O::from_float(lo);
          if (col + 1 < d) dko[j * d + col + 1] = O::from_float(hi);
        }
      }
      if (dvo) {
        const float lo = dvv[nb][2 * hr], hi = dvv[nb][2 * hr + 1];
        if (pairs && col + 1 < dv) {
          *reinterpret_cast<uint32_t*>(dvo + j * dv + col) = pack_half2<E>(lo, hi);
        } else {
          if (col < dv) dvo[j * dv + col] = O::from_float(lo);
          if (col + 1 < dv) dvo[j * dv + col + 1] = O::from_float(hi);
        }
      }
    }
  }
}

// ---- launchers -------------------------------------------------------------------------------------
// the F32 dispatch answers with the SIMT kernels).
template <class E, int DP>
int fits(bool backward, bool query_pass, bool key_pass) {
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  const bool ok = backward ? (!query_pass || BwdQLayout<E, DP>::bytes <= optin) &&
                                 (!key_pass || BwdKvLayout<E, DP>::bytes <= optin)
                           : FwdLayout<E, DP>::bytes <= optin;
  return ok ? 0 : KERNEL_UNSUPPORTED;
}

template <class E, int DP>
int forward_dp(const AttentionParams& p, cudaStream_t stream) {
  if (int e = fits<E, DP>(false, false, false)) return e;
  const int64_t blocks = p.batch * p.heads * ((p.nq + TT::kBlockQ - 1) / TT::kBlockQ);
  return tc_launch(tc_forward_kernel<E, DP>, blocks, FwdLayout<E, DP>::bytes, stream, p, vector_ok<E>(p));
}

template <class E, int DP>
int backward_dp(const AttentionParams& p, cudaStream_t stream) {
  using Raw = typename Operand<E>::Raw;
  constexpr int parts = DP / BwdQLayout<E, DP>::CW;
  const bool query_pass = p.grad_q || p.grad_bias_full, key_pass = p.grad_k || p.grad_v;
  if (int e = fits<E, DP>(true, query_pass, key_pass)) return e;
  const int vec = vector_ok<E>(p);
  // preprocess: D = rowsum(dO ∘ O) (F32) into the workspace
  const int64_t rows = p.batch * p.heads * p.nq;
  const int64_t rblocks = std::min<int64_t>((rows + TT::kWarps - 1) / TT::kWarps, 65535LL * 32);
  if (int e = tc_launch(tc_rowdot_kernel<E>, rblocks, 0, stream, rows, int(p.dv), static_cast<const Raw*>(p.out),
                        static_cast<const Raw*>(p.dout), static_cast<float*>(p.workspace)))
    return e;
  if (query_pass) {
    const int64_t blocks = p.batch * p.heads * ((p.nq + TT::kBlockQ - 1) / TT::kBlockQ) * parts;
    if (int e = tc_launch(tc_backward_query_kernel<E, DP>, blocks, BwdQLayout<E, DP>::bytes, stream, p, vec)) return e;
  }
  if (key_pass) {
    const int64_t blocks = p.batch * p.kv_heads * ((p.nk + TT::kBlockK - 1) / TT::kBlockK) * parts;
    if (int e = tc_launch(tc_backward_key_kernel<E, DP>, blocks, BwdKvLayout<E, DP>::bytes, stream, p, vec)) return e;
  }
  return 0;
}

template <class E>
int forward_t(const AttentionParams& p, cudaStream_t stream) {
  switch (padded_dim(p)) {
    case 64: return forward_dp<E, 64>(p, stream);
    case 128: return forward_dp<E, 128>(p, stream);
    default: return forward_dp<E, 256>(p, stream);
  }
}

// v2's keys per tile BK and blocks per SM MINB (the register budget: 65536 / (256 x MINB)); ptxas
// for sm_80 / sm_90 (benchmarks/results/ptxas-attention-2026-12-05.txt):
//   MK_TC_V2      DP 64: BK 64, 2 blocks (128 registers); DP 128: BK 64, 1 block (no spills)
//   MK_TC_V2_K32  BK 32, 2 blocks per SM (DP 128: 128 registers, a 4-byte spill)
template <class E, int DP, int BK, int MINB>
int forward2_dp(const AttentionParams& p, cudaStream_t stream) {
  using L = Fwd2Layout<DP, BK>;
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if (L::bytes > optin) return KERNEL_UNSUPPORTED;
  const int64_t blocks = p.batch * p.heads * ((p.nq + T2::kBlockQ - 1) / T2::kBlockQ);
  return tc_launch_n(tc2_forward_kernel<E, DP, BK, MINB>, blocks, T2::kThreads, L::bytes, stream, p, vector_ok<E>(p));
}

// v2 where it applies (attention_tc_v2_applies) and its tiles fit; else KERNEL_UNSUPPORTED
template <class E>
int forward2_t(const AttentionParams& p, cudaStream_t stream, int version) {
  if (version == MK_TC_V2_K32)
    return padded_dim(p) == 64 ? forward2_dp<E, 64, 32, 2>(p, stream) : forward2_dp<E, 128, 32, 2>(p, stream);
  return padded_dim(p) == 64 ? forward2_dp<E, 64, 64, 2>(p, stream) : forward2_dp<E, 128, 64, 1>(p, stream);
}

template <class E>
int backward_t(const AttentionParams& p, cudaStream_t stream) {
  switch (padded_dim(p)) {
    case 64: return backward_dp<E, 64>(p, stream);
    case 128: return backward_dp<E, 128>(p, stream);
    default: return backward_dp<E, 256>(p, stream);
  }
}

// The v2 backward's tiles per head dim (registers and spills from ptxas for sm_80 / sm_90:
// benchmarks/results/ptxas-attention-bwd2-2026-12-05.txt): dQ pass BK keys per K/V tile and MQ
// blocks per SM, dK/dV pass TQ query rows per Q/dO tile and MK blocks per SM.
template <int DP>
struct Bwd2Config;
template <>
struct Bwd2Config<64> {
  static constexpr int BK = 64, NS = 32, MQ = 2, TQ = 16, MK = 2;
};
template <>
struct Bwd2Config<128> {
  static constexpr int BK = 32, NS = 16, MQ = 2, TQ = 32, MK = 1;
};

// the v2 backward where its tiles fit this device (else KERNEL_UNSUPPORTED before any launch);
// Cfg: Bwd2Config<DP> (benchmarks/gpu/attention_harness.cu times others beside it)
template <class E, int DP, class Cfg = Bwd2Config<DP>>
int backward2_dp(const AttentionParams& p, cudaStream_t stream) {
  using LQ = Bwd2QLayout<DP, Cfg::BK>;
  using LK = Bwd2KvLayout<DP, Cfg::TQ>;
  const bool query_pass = p.grad_q || p.grad_bias_full, key_pass = p.grad_k || p.grad_v;
  size_t optin = 0;
  if (int e = optin_smem(&optin)) return e;
  if ((query_pass && LQ::bytes > optin) || (key_pass && LK::bytes > optin)) return KERNEL_UNSUPPORTED;
  auto aligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  const bool vec = vector_ok<E>(p) != 0;
  const bool store = p.d % 8 == 0 && p.dv % 8 == 0 && aligned(p.grad_q) && aligned(p.grad_k) && aligned(p.grad_v);
  const bool pair_ds = p.nk % 2 == 0 && (reinterpret_cast<uintptr_t>(p.grad_bias_full) & 3) == 0;
  const int flags = (vec ? kBwd2VecLoad : 0) | (store ? kBwd2VecStore : 0) | (pair_ds ? kBwd2PairDs : 0);
  // preprocess: D = rowsum(dO ∘ O) (F32) into the workspace (v1's kernel)
  using Raw = typename Operand<E>::Raw;
  const int64_t rows = p.batch * p.heads * p.nq;
  const int64_t rblocks = std::min<int64_t>((rows + TT::kWarps - 1) / TT::kWarps, 65535LL * 32);
  if (int e = tc_launch(tc_rowdot_kernel<E>, rblocks, 0, stream, rows, int(p.dv), static_cast<const Raw*>(p.out),
                        static_cast<const Raw*>(p.dout), static_cast<float*>(p.workspace)))
    return e;
  if (query_pass) {
    const int64_t blocks = p.batch * p.heads * ((p.nq + T2::kBlockQ - 1) / T2::kBlockQ);
    if (int e = tc_launch_n(tc2_backward_query_kernel<E, DP, Cfg::BK, Cfg::NS, Cfg::MQ>, blocks, T2::kThreads,
                            LQ::bytes, stream, p, flags))
      return e;
  }
  if (key_pass) {
    const int64_t blocks = p.batch * p.kv_heads * ((p.nk + LK::kBlockK - 1) / LK::kBlockK);
    if (int e = tc_launch_n(tc2_backward_key_kernel<E, DP, Cfg::TQ, Cfg::MK>, blocks, T2::kThreads, LK::bytes, stream,
                            p, flags))
      return e;
  }
  return 0;
}

// v2 where it applies (attention_tc_v2_applies) and its tiles fit; else KERNEL_UNSUPPORTED
template <class E>
int backward2_t(const AttentionParams& p, cudaStream_t stream) {
  return padded_dim(p) == 64 ? backward2_dp<E, 64>(p, stream) : backward2_dp<E, 128>(p, stream);
}

bool tc_supported(const AttentionParams& p) {
  return (p.dtype == MK_BF16 || p.dtype == MK_F16 || (p.dtype == MK_F32 && p.allow_tf32)) && p.d >= 1 && p.d <= 256 &&
         p.dv >= 1 && p.dv <= 256 && p.heads >= 1 && p.kv_heads >= 1 && p.heads % p.kv_heads == 0;
}

}  // namespace

int tc_attention_forward(const AttentionParams& p, void* stream) {
  if (!tc_supported(p)) return int(cudaErrorInvalidValue);
  const AttentionTcChoice c =
      attention_tc_choose(p.dtype, p.d, p.dv, device_arch_major(), p.causal,
                          attention_tc_forward_code(attention_tc_selection().forward.load(std::memory_order_relaxed)));
  return tc_attention_forward_version(p, stream, c.forward);
}

int tc_attention_forward_version(const AttentionParams& p, void* stream, int version) {
  if (!tc_supported(p)) return int(cudaErrorInvalidValue);
  const cudaStream_t s = as_stream(stream);
  if (version == MK_TC_SM90) {
    // (F32 with TF32 allowed: the one-term TF32 Hopper forward of tensor_core_sm90_f32.cu)
    const int e = p.dtype == MK_F32 ? tc_sm90_tf32_forward(p, stream) : tc_sm90_forward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
    version = MK_TC_V2;  // (where the Hopper forward does not apply: v2, or v1 where v2 does not)
  }
  if ((version == MK_TC_V2 || version == MK_TC_V2_K32) && attention_tc_v2_applies(p.dtype, p.d, p.dv, 8) &&
      p.nq <= INT_MAX && p.nk <= INT_MAX) {
    const int e = p.dtype == MK_BF16 ? forward2_t<Bf16>(p, s, version) : forward2_t<Fp16>(p, s, version);
    if (e != KERNEL_UNSUPPORTED) return e;  // (tiles too large for this device: v1, which may fit)
  }
  return p.dtype == MK_BF16 ? forward_t<Bf16>(p, s) : p.dtype == MK_F16 ? forward_t<Fp16>(p, s) : forward_t<Tf32>(p, s);
}

int tc_attention_backward(const AttentionParams& p, void* stream) {
  if (!tc_supported(p)) return int(cudaErrorInvalidValue);
  const AttentionTcChoice c = attention_tc_choose(p.dtype, p.d, p.dv, device_arch_major(), p.causal,
                                                  attention_tc_forward_code(attention_tc_selection().forward.load(std::memory_order_relaxed)),
                                                  attention_tc_backward_code(attention_tc_selection().backward.load(std::memory_order_relaxed)));
  return tc_attention_backward_version(p, stream, c.backward);
}

int tc_attention_backward_version(const AttentionParams& p, void* stream, int version) {
  if (!tc_supported(p) || !p.workspace || !p.out || !p.dout || !p.lse) return int(cudaErrorInvalidValue);
  const cudaStream_t s = as_stream(stream);
  if (version == MK_TC_SM90) {
    // (F32 with TF32 allowed: the one-term TF32 Hopper backward of tensor_core_sm90_f32_backward.cu)
    const int e = p.dtype == MK_F32 ? tc_sm90_tf32_backward(p, stream) : tc_sm90_backward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
    version = MK_TC_V2;  // (where the Hopper backward does not apply: v2, or v1 where v2 does not)
  }
  if (version == MK_TC_V2 && attention_tc_v2_applies(p.dtype, p.d, p.dv, 8) && p.nq <= INT_MAX && p.nk <= INT_MAX) {
    const int e = p.dtype == MK_BF16 ? backward2_t<Bf16>(p, s) : backward2_t<Fp16>(p, s);
    if (e != KERNEL_UNSUPPORTED) return e;  // (tiles too large for this device: v1, which may fit)
  }
  return p.dtype == MK_BF16 ? backward_t<Bf16>(p, s) : p.dtype == MK_F16 ? backward_t<Fp16>(p, s) : backward_t<Tf32>(p, s);
}

int64_t tc_attention_workspace(const AttentionParams& p) { return 4 * p.batch * p.heads * p.nq; }

// The process-wide choice (mk/kernels.inc attention_tc_select; mk/attention_tc_choice.h): read by
// tc_attention_forward/backward above and tensor_core_dd.cu from the next call on.
int attention_tc_select(int forward, int backward, int second) {
  if (!attention_tc_select_valid(forward, backward, second)) return KERNEL_UNSUPPORTED;
  AttentionTcSelection& sel = attention_tc_selection();
  sel.forward.store(forward, std::memory_order_relaxed);
  sel.backward.store(backward, std::memory_order_relaxed);
  sel.second.store(second, std::memory_order_relaxed);
  return 0;
}

}  // namespace cuda
}  // namespace mk
