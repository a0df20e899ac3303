// The recurrent tensor-core form of the masked linear-attention product (causal or anti-causal,
// nq == nk), and its state form for unmasked products (any nq, nk; "the state form" section below):
// included by linear_attention.cu inside its anonymous namespace (it uses mk_linear_smem, ceil_div,
// tc_launch, optin_smem and aligned16 from there).
//
// One block per (group, ET = 64 value columns) walks the sequence in chunks of 64 keys, in order
// (descending for anti-causal), keeping the state S = Σ k_i v_iᵀ of the chunks already passed in
// registers (F32, [dk, ET]; warp w holds the key features [w·DKP/4, (w + 1)·DKP/4)). Per chunk c:
//   O_c = Q_c Ŝ + mask(Q_c K_cᵀ) V_c        (Ŝ: S as it stood before chunk c, staged in shared memory)
//   S  += K_cᵀ V_c
// so nothing goes through global memory but q, k, v (read once per value tile) and the output: no
// chunk states, no scan pass (the chunked form's states were 1.07 GB of its 1.34 GB per causal BF16
// forward at [4,16,4096,128], R = 64 on the H100, 2026-12-05). Q, K and V tiles come by cp.async
// into a 2-stage ring (chunk c + 1 in flight while c is multiplied); two barriers per chunk. The
// parallelism is groups x value tiles blocks (128 at [4,16,4096,128]); with few groups each walk is
// cut into segments (run_tc_recurrent below: the segments' states by a state pass and the scan,
// then block (g, seg, et) walks only its segment from the state of the keys before it). The choice
// of form is linear_attention_choice.h's.
//
// Operands (RecOps below): BF16 / F16 on m16n8k16 MMAs with ldmatrix fragments (.trans for the
// row-major V as B and for Kᵀ as A: no transposed copies), or F32 on m16n8k8 TF32 MMAs with one term
// (TF32: q, k, v, Ŝ and P rounded to nearest as they enter an MMA) or three (x3: every operand split
// into hi = tf32(x) and lo = tf32(x − hi), each product lo·hi + hi·lo + hi·hi, small terms first:
// F32-class accuracy, the scheme of CUTLASS's OpMultiplyAddFastF32). F32 accumulation everywhere,
// the state included; 16-bit output rounded once. Fixed orders (chunks in walk order, k-steps
// ascending, the three terms as above): bitwise repeatable, no atomics.
#pragma once

struct RecTraits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kChunk = 64;  // keys (and query rows) per chunk
  static constexpr int kET = 64;     // value columns per block
  static constexpr int kMaxDk = 128;
};
static_assert(RecTraits::kThreads == TcTraits::kThreads, "tc_launch launches TC::kThreads threads");

// ---- fragment readers ----------------------------------------------------------------------------
// a_rm: A of rows [m0, m0 + 16) x k [k0, k0 + kK) of a row-major tile X[m][k];
// a_tr: the same of A = Xᵀ, X[k][m] row-major (Kᵀ from the K tile);
// b2_nk: B of the two n-blocks n0, n0 + 8 at k0 from an n-major tile Y[n][k];
// b2_kn: the same from a row-major [k][n] tile;
// a_acc: A of k-step kk of a product whose A is an F32 accumulator tile [8 n-blocks][4];
// mma: c += A B (all terms).
template <class E>
struct RecOps {  // BF16 / F16
  using Raw = uint16_t;
  static constexpr int kK = 16;
  static constexpr int kPadQK = 8;  // 16 bytes: ldmatrix rows of a tile in distinct bank groups
  static constexpr int kPadV = 8;
  struct A {
    uint32_t r[4];
  };
  struct B {
    uint32_t r[2];
  };
  static __device__ __forceinline__ void a_rm(A& a, const Raw* x, int ld, int m0, int k0, int lane) {
    const LdmatrixLanes l = ldmatrix_lanes(lane);
    ldmatrix_x4(a.r, x + (m0 + l.a_row) * ld + k0 + l.a_col);
  }
  // .trans matrix i (lane 8i + r): stored rows k0 + 8 (i >> 1) + r, columns m0 + 8 (i & 1): registers
  // (m = g, k = 2t, 2t + 1) of the four 8 x 8 quarters in A's order
  static __device__ __forceinline__ void a_tr(A& a, const Raw* x, int ld, int m0, int k0, int lane) {
    const LdmatrixLanes l = ldmatrix_lanes(lane);
    ldmatrix_x4_trans(a.r, x + (k0 + l.b_row) * ld + m0 + l.b_col);
  }
  static __device__ __forceinline__ void b2_nk(B& b0, B& b1, const Raw* y, int ld, int n0, int k0, int lane) {
    const LdmatrixLanes l = ldmatrix_lanes(lane);
    uint32_t r[4];
    ldmatrix_x4(r, y + (n0 + l.b_row) * ld + k0 + l.b_col);
    b0.r[0] = r[0];
    b0.r[1] = r[1];
    b1.r[0] = r[2];
    b1.r[1] = r[3];
  }
  static __device__ __forceinline__ void b2_kn(B& b0, B& b1, const Raw* x, int ld, int k0, int n0, int lane) {
    const LdmatrixLanes l = ldmatrix_lanes(lane);
    uint32_t r[4];
    ldmatrix_x4_trans(r, x + (k0 + l.a_row) * ld + n0 + l.a_col);
    b0.r[0] = r[0];
    b0.r[1] = r[1];
    b1.r[0] = r[2];
    b1.r[1] = r[3];
  }
  static __device__ __forceinline__ void a_acc(A& a, const float (&p)[8][4], int kk) {
    acc_to_a<E>(a.r, p[2 * kk], p[2 * kk + 1]);
  }
  static __device__ __forceinline__ void mma(float (&c)[4], const A& a, const B& b) {
    mma16816<E>(c, a.r, b.r[0], b.r[1]);
  }
  // the state as staged for Q Ŝ (rounded to nearest even: a composition of 16-bit matmuls rounds it)
  static __device__ __forceinline__ Raw state(float f) { return float_to_half<E>(f); }
  static __device__ __forceinline__ void store2(Raw* p, float a, float b, bool pair) {
    if (pair) {
      *reinterpret_cast<uint32_t*>(p) = pack_half2<E>(a, b);
    } else {
      p[0] = float_to_half<E>(a);
    }
  }
  static __device__ __forceinline__ void store1(Raw* p, float a) { p[0] = float_to_half<E>(a); }
};

// F32 data; TERMS 1 (TF32) or 3 (x3). The k index is permuted within a k-step as in mma.cuh's TF32
// operand (hardware column t is k0 + 2t, t + 4 is k0 + 2t + 1), so that A and B pairs are one 8-byte
// read and P's accumulators are A registers as they stand.
struct RecPair {
  float x, y;
};
// two adjacent floats as one 8-byte shared load (p 8-byte aligned)
__device__ __forceinline__ RecPair rec_pair(const float* p) {
  const uint64_t w = *reinterpret_cast<const uint64_t*>(p);
  RecPair r;
  memcpy(&r, &w, 8);
  return r;
}

template <int TERMS>
struct RecOpsF32 {
  static_assert(TERMS == 1 || TERMS == 3, "one TF32 term or the three of x3");
  using Raw = float;
  static constexpr int kK = 8;
  static constexpr int kPadQK = 8;  // row stride = 8 mod 32 words: the 8-byte reads of a warp in 2 wavefronts
  static constexpr int kPadV = 4;   // row stride = 4 mod 32 words: b2_kn's reads hit 32 banks
  static constexpr int kL = TERMS == 3 ? 1 : 0;
  struct A {
    uint32_t h[4], l[kL ? 4 : 1];
  };
  struct B {
    uint32_t h[2], l[kL ? 2 : 1];
  };
  static __device__ __forceinline__ void split(float x, uint32_t& h, uint32_t& l) {
    h = to_tf32(x);
    if constexpr (TERMS == 3) {
      float hf;
      memcpy(&hf, &h, 4);
      l = to_tf32(x - hf);
    } else {
      (void)l;
    }
  }
  static __device__ __forceinline__ void a_rm(A& a, const Raw* x, int ld, int m0, int k0, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const RecPair u = rec_pair(x + (m0 + g) * ld + k0 + 2 * t);
    const RecPair w = rec_pair(x + (m0 + g + 8) * ld + k0 + 2 * t);
    split(u.x, a.h[0], a.l[kL * 0]);
    split(w.x, a.h[1], a.l[kL * 1]);
    split(u.y, a.h[2], a.l[kL * 2]);
    split(w.y, a.h[3], a.l[kL * 3]);
  }
  static __device__ __forceinline__ void a_tr(A& a, const Raw* x, int ld, int m0, int k0, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const Raw* r0 = x + (k0 + 2 * t) * ld + m0 + g;
    split(r0[0], a.h[0], a.l[kL * 0]);
    split(r0[8], a.h[1], a.l[kL * 1]);
    split(r0[ld], a.h[2], a.l[kL * 2]);
    split(r0[ld + 8], a.h[3], a.l[kL * 3]);
  }
  static __device__ __forceinline__ void b2_nk(B& b0, B& b1, const Raw* y, int ld, int n0, int k0, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const RecPair u = rec_pair(y + (n0 + g) * ld + k0 + 2 * t);
    const RecPair w = rec_pair(y + (n0 + 8 + g) * ld + k0 + 2 * t);
    split(u.x, b0.h[0], b0.l[kL * 0]);
    split(u.y, b0.h[1], b0.l[kL * 1]);
    split(w.x, b1.h[0], b1.l[kL * 0]);
    split(w.y, b1.h[1], b1.l[kL * 1]);
  }
  static __device__ __forceinline__ void b2_kn(B& b0, B& b1, const Raw* x, int ld, int k0, int n0, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const Raw* r0 = x + (k0 + 2 * t) * ld + n0 + g;
    split(r0[0], b0.h[0], b0.l[kL * 0]);
    split(r0[ld], b0.h[1], b0.l[kL * 1]);
    split(r0[8], b1.h[0], b1.l[kL * 0]);
    split(r0[ld + 8], b1.h[1], b1.l[kL * 1]);
  }
  static __device__ __forceinline__ void a_acc(A& a, const float (&p)[8][4], int kk) {
    split(p[kk][0], a.h[0], a.l[kL * 0]);  // (g, 2t)
    split(p[kk][2], a.h[1], a.l[kL * 1]);  // (g + 8, 2t)
    split(p[kk][1], a.h[2], a.l[kL * 2]);  // (g, 2t + 1)
    split(p[kk][3], a.h[3], a.l[kL * 3]);  // (g + 8, 2t + 1)
  }
  static __device__ __forceinline__ void mma(float (&c)[4], const A& a, const B& b) {
    if constexpr (TERMS == 3) {
      mma1688_tf32(c, a.l, b.h[0], b.h[1]);
      mma1688_tf32(c, a.h, b.l[0], b.l[1]);
    }
    mma1688_tf32(c, a.h, b.h[0], b.h[1]);
  }
  static __device__ __forceinline__ Raw state(float f) { return f; }  // (rounded or split as it is read)
  static __device__ __forceinline__ void store2(Raw* p, float a, float b, bool pair) {
    if (pair) {
      const float f[2] = {a, b};
      uint64_t w;
      memcpy(&w, f, 8);
      *reinterpret_cast<uint64_t*>(p) = w;
    } else {
      p[0] = a;
    }
  }
  static __device__ __forceinline__ void store1(Raw* p, float a) { p[0] = a; }
};

// The walk's shared memory (STATES: the state pass's, without Q and Ŝᵀ); ET value columns a block
template <class Ops, int DKP, int ET = RecTraits::kET, bool STATES = false>
struct RecLayout {
  using Raw = typename Ops::Raw;
  static constexpr int LQ = DKP + Ops::kPadQK;                     // Q, K, Ŝᵀ rows
  static constexpr int LV = ET + Ops::kPadV;                       // V rows
  static constexpr int q = 0;                                      // Q  [64][LQ] (the walk)
  static constexpr int k = q + (STATES ? 0 : RecTraits::kChunk * LQ);  // K  [64][LQ]
  static constexpr int v = k + RecTraits::kChunk * LQ;             // V  [64][LV]
  static constexpr int stage = v + RecTraits::kChunk * LV;
  static constexpr int st = 2 * stage;                             // Ŝᵀ [ET][LQ] (the walk)
  static constexpr int total = st + (STATES ? 0 : ET * LQ);
  static constexpr size_t bytes = size_t(total) * sizeof(Raw);
  static_assert((LQ * sizeof(Raw)) % 16 == 0 && (LV * sizeof(Raw)) % 16 == 0, "16-byte rows (cp.async, ldmatrix)");
  static_assert((stage * sizeof(Raw)) % 16 == 0, "16-byte aligned stages");
};

// Rows [row0, row0 + 64) x cols [col0, col0 + COLS) of a row-major [rows][ld] matrix into a padded
// shared tile (leading dim ldd), zero outside rows x cols: cp.async for whole in-range 16-byte
// chunks when `vec` (16-byte aligned rows), plain loads and stores for the rest. The caller commits.
template <class Raw, int COLS>
__device__ __forceinline__ void rec_tile_async(Raw* dst, int ldd, const Raw* src, int ld, int row0, int rows,
                                               int col0, int cols, bool vec) {
  constexpr int N = 16 / int(sizeof(Raw)), chunks = COLS / N;
  for (int idx = threadIdx.x; idx < RecTraits::kChunk * chunks; idx += RecTraits::kThreads) {
    const int r = idx / chunks, c = (idx % chunks) * N;
    Raw* const at = dst + r * ldd + c;
    const int row = row0 + r, col = col0 + c;
    const Raw* const from = src + int64_t(row) * ld + col;
    if (vec && row < rows && col + N <= cols) {
      cp_async16(at, from, 16);
    } else {
      Raw x[N];
#pragma unroll
      for (int i = 0; i < N; ++i) x[i] = row < rows && col + i < cols ? from[i] : Raw(0);
      uint4 w;
      memcpy(&w, x, 16);
      *reinterpret_cast<uint4*>(at) = w;
    }
  }
}

// The state a segment starts from (segmented walks): F32, element (d, e) of segment `seg` of group g
// at S0[(g·segments + seg)·dk·dv + d·dv + e] (the scan's exclusive prefix or suffix of the states
// the state pass wrote); null: zero.
struct RecInit {
  const float* S0 = nullptr;
};

// f(x, d, e) for each element x of the state slice this thread holds in s[MT][ET / 8][4]: key feature
// d, value column e of the tile (the m16n8 accumulator layout, warp rows from d0)
template <int MT, int NB, class F>
__device__ __forceinline__ void rec_each_state(float (&s)[MT][NB][4], int d0, int gq, int tq, F f) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int r = 0; r < 4; ++r) f(s[mt][nb][r], d0 + mt * 16 + gq + 8 * (r >> 1), nb * 8 + 2 * tq + (r & 1));
}

// c[nb] += a B_nb over the NB n-blocks of an n-major shared tile y (row n holds the k values) at
// k-step k0: one ldmatrix-pair of B fragments per two n-blocks
template <class Ops, int NB>
__device__ __forceinline__ void rec_mma_rows(float (&c)[NB][4], const typename Ops::A& a, const typename Ops::Raw* y,
                                             int ld, int k0, int lane) {
#pragma unroll
  for (int nb = 0; nb < NB; nb += 2) {
    typename Ops::B b0, b1;
    Ops::b2_nk(b0, b1, y, ld, nb * 8, k0, lane);
    Ops::mma(c[nb], a, b0);
    Ops::mma(c[nb + 1], a, b1);
  }
}

// A warp's 16 output rows [j0, j0 + 16) x the tile's NB n-blocks from column e0, stored once (16-bit:
// rounded; rows past n and columns past dv not stored); column pairs as one store when `pairs` (the
// rows aligned and dv even).
template <class Ops, int NB>
__device__ __forceinline__ void rec_store_out(const float (&o)[NB][4], typename Ops::Raw* out, int j0, int N, int e0,
                                              int DV, int gq, int tq, bool pairs) {
#pragma unroll
  for (int nb = 0; nb < NB; ++nb)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int j = j0 + gq + 8 * h, e = e0 + nb * 8 + 2 * tq;
      if (j >= N || e >= DV) continue;
      typename Ops::Raw* const at = out + int64_t(j) * DV + e;
      if (e + 1 < DV) {
        Ops::store2(at, o[nb][2 * h], o[nb][2 * h + 1], pairs);
        if (!pairs) Ops::store1(at + 1, o[nb][2 * h + 1]);
      } else {
        Ops::store1(at, o[nb][2 * h]);
      }
    }
}

// mask 1 (causal: chunks ascending, keys i <= j) or 2 (anti-causal: descending, i >= j); n = nq = nk.
// Block (g, seg, et) walks the chunks [seg·seg_chunks, (seg + 1)·seg_chunks) of its group from the
// state init gives (one segment: the whole sequence from zero).
// STATES: the segments' state pass of a segmented walk instead: the same walk (mask 1: chunks
// ascending) with only S += Kᵀ V, on the same MMAs (so 16-bit, TF32 and x3 states carry the walk's
// rounding), its [dk, 64] slice then stored to states[(g·segments + seg)·dk·dv + d·dv + e], F32; the
// scan (scan_kernel) turns them into each segment's starting state. q and out are not read. ETT:
// the value columns a block holds (the walk: 64; the state pass may take 128: half the k reads).
template <class Ops, int DKP, bool STATES = false, int ETT = RecTraits::kET>
__global__ void __launch_bounds__(RecTraits::kThreads, 1)
tc_recurrent_kernel(int mask, int64_t n, int64_t dk, int64_t dv, int64_t etiles, int64_t segments,
                    int64_t seg_chunks, RecInit init, const typename Ops::Raw* q, const typename Ops::Raw* k,
                    const typename Ops::Raw* v, typename Ops::Raw* out, float* states, int vec) {
  using Raw = typename Ops::Raw;
  using L = RecLayout<Ops, DKP, ETT, STATES>;
  using A = typename Ops::A;
  using B = typename Ops::B;
  constexpr int C = RecTraits::kChunk, ET = ETT, KK = Ops::kK;
  static_assert(ET == RecTraits::kET || (STATES && ET == 2 * RecTraits::kET), "the walk: 64 columns; states: 64, 128");
  constexpr int MT = DKP / 64;  // 16-row m-tiles of S per warp (a warp holds DKP / 4 key features)
  Raw* const sm = reinterpret_cast<Raw*>(mk_linear_smem);
  Raw* const st = sm + L::st;
  const int64_t et = blockIdx.x % etiles, seg = (blockIdx.x / etiles) % segments,
                g = blockIdx.x / (etiles * segments);
  q += g * n * dk;
  k += g * n * dk;
  v += g * n * dv;
  out += g * n * dv;
  // within a group: 32-bit indices (run_tc_recurrent keeps n·max(dk, dv) < 2^31)
  const int N = int(n), DK = int(dk), DV = int(dv), e0 = int(et) * ET;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, gq = lane >> 2, tq = lane & 3;
  const int m0 = warp * 16, d0 = warp * (DKP / 4);
  const int c_lo = int(seg * seg_chunks), c_hi = int(min64(ceil_div(n, C), c_lo + seg_chunks));
  const int chunks = c_hi - c_lo;  // (of this segment)
  const bool v16 = vec != 0;
  auto chunk_at = [&](int step) { return mask == 1 ? c_lo + step : c_hi - 1 - step; };
  auto load = [&](int c, int stage) {
    Raw* const base = sm + stage * L::stage;
    if constexpr (!STATES) rec_tile_async<Raw, DKP>(base + L::q, L::LQ, q, DK, c * C, N, 0, DK, v16);
    rec_tile_async<Raw, DKP>(base + L::k, L::LQ, k, DK, c * C, N, 0, DK, v16);
    rec_tile_async<Raw, ET>(base + L::v, L::LV, v, DV, c * C, N, e0, DV, v16);
    cp_async_commit();
  };

  float s[MT][ET / 8][4];
  rec_each_state(s, d0, gq, tq, [](float& x, int, int) { x = 0.f; });
  // a segment after the first in walk order starts from the state of the keys before it
  const bool has_init = init.S0 != nullptr && (mask == 1 ? seg > 0 : seg < segments - 1);
  if (has_init) {
    const float* S0 = init.S0 + (g * segments + seg) * dk * dv;
    rec_each_state(s, d0, gq, tq, [&](float& x, int d, int e) {
      if (d < DK && e0 + e < DV) x = S0[int64_t(d) * DV + e0 + e];
    });
  }

  if (chunks > 0) load(chunk_at(0), 0);
  for (int step = 0; step < chunks; ++step) {
    const int stage = step & 1;
    const int i0 = chunk_at(step) * C;
    cp_async_wait<0>();  // this thread's copies of the chunk have landed ...
    __syncthreads();     // ... everyone's; every warp is done with the other stage and with Ŝ
    if (step + 1 < chunks) load(chunk_at(step + 1), stage ^ 1);
    const Raw* const qs = sm + stage * L::stage + L::q;
    const Raw* const ks = sm + stage * L::stage + L::k;
    const Raw* const vs = sm + stage * L::stage + L::v;
    float o[ET / 8][4], p[C / 8][4];  // (the walk's: O and P = mask(Q Kᵀ) of the chunk)
    if constexpr (!STATES) {
      const bool with_state = step > 0 || has_init;  // (block-uniform) else the state is zero
      if (with_state) {
        // Ŝᵀ[e][d] = S[d][e] as the operand type stages it
        rec_each_state(s, d0, gq, tq, [&](float& x, int d, int e) { st[e * L::LQ + d] = Ops::state(x); });
        __syncthreads();
      }
      // O = Q Ŝ and P = Q Kᵀ, one A fragment of Q per k-step for both
      zero_acc(o);
      zero_acc(p);
#pragma unroll 2
      for (int kk = 0; kk < DKP / KK; ++kk) {
        A a;
        Ops::a_rm(a, qs, L::LQ, m0, kk * KK, lane);
        if (with_state) rec_mma_rows<Ops>(o, a, st, L::LQ, kk * KK, lane);
        rec_mma_rows<Ops>(p, a, ks, L::LQ, kk * KK, lane);
      }
      // the mask (rows past n are zero and not stored; keys past n are zero)
#pragma unroll
      for (int nb = 0; nb < C / 8; ++nb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int j = i0 + m0 + gq + 8 * (r >> 1), i = i0 + nb * 8 + 2 * tq + (r & 1);
          const bool seen = i < N && (mask == 1 ? i <= j : i >= j);
          if (!seen) p[nb][r] = 0.f;
        }
    }
    // O += P V and S += Kᵀ V: one B fragment of V per (k-step, n-block pair) for both
#pragma unroll  // (fully: p is indexed by kk)
    for (int kk = 0; kk < C / KK; ++kk) {
      A ap, ak[MT];
      if constexpr (!STATES) Ops::a_acc(ap, p, kk);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) Ops::a_tr(ak[mt], ks, L::LQ, d0 + mt * 16, kk * KK, lane);
#pragma unroll
      for (int nb = 0; nb < ET / 8; nb += 2) {
        B b0, b1;
        Ops::b2_kn(b0, b1, vs, L::LV, kk * KK, nb * 8, lane);
        if constexpr (!STATES) {
          Ops::mma(o[nb], ap, b0);
          Ops::mma(o[nb + 1], ap, b1);
        }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          Ops::mma(s[mt][nb], ak[mt], b0);
          Ops::mma(s[mt][nb + 1], ak[mt], b1);
        }
      }
    }
    if constexpr (!STATES) rec_store_out<Ops>(o, out, i0 + m0, N, e0, DV, gq, tq, v16 && DV % 2 == 0);
  }
  cp_async_wait<0>();
  if constexpr (STATES) {
    float* const to = states + (g * segments + seg) * dk * dv;
    rec_each_state(s, d0, gq, tq, [&](float& x, int d, int e) {
      if (d < DK && e0 + e < DV) to[int64_t(d) * DV + e0 + e] = x;
    });
  }
}

// ---- the state form of the unmasked product (mask 0, any nq, nk) --------------------------------
// O = Q S with S = Σ_i k_i v_iᵀ over all keys: the state pass above (tc_recurrent_kernel<.., true>,
// the keys cut into `ksegs` segments per group for parallelism) writes each segment's [dk, dv] state
// to the scratch; with several, rec_total_kernel sums them in ascending order (fixed: bitwise
// repeatable) into the group's Ŝᵀ in the operand type; then a block per (group, 256 query rows, AET
// value columns) stages its Ŝᵀ rows once (16-bit rounded, F32 split as read) and streams its Q chunks
// through a 2-stage cp.async ring: O_c = Q_c Ŝ. The chunked form's 16 chunk states per group, its
// scan and its per-query-block state reads (143 of its 411 MB per BF16 forward at [4,16,4096,128])
// become ksegs states and one total; with AET = 128 (16-bit, dv > 64) Q is read once. The apply
// blocks hold no state in registers (o: 16 rows x AET columns a warp), so several fit an SM.
template <class Ops, int DKP, int AET>
struct RecApplyLayout {
  using Raw = typename Ops::Raw;
  static constexpr int LQ = DKP + Ops::kPadQK;                    // Q, Ŝᵀ rows
  static constexpr int stage = RecTraits::kChunk * LQ;            // Q [64][LQ]
  static constexpr int st = 2 * stage;                            // Ŝᵀ [AET][LQ]
  static constexpr int total = st + AET * LQ;
  static constexpr size_t bytes = size_t(total) * sizeof(Raw);
  static_assert((stage * sizeof(Raw)) % 16 == 0, "16-byte aligned stages");
};
// query chunks per apply block (a segment of the query rows)
constexpr int kApplyChunks = 4;

// The total of a group's segment states (ksegs > 1), once for all its apply blocks: Ŝᵀ[g][e][d] =
// Σ_s S_s[d][e] (segments ascending, from +0: the order an apply block sums a single state in, so
// the same bits) as the operand type stages it, transposed so that an apply block copies its rows.
// A block per (group, 32 x 32 tile of d x e); the transpose through shared memory keeps the reads
// (e contiguous) and the writes (d contiguous) coalesced. Without it each apply block would read all
// ksegs F32 states of its columns (at 8 segments, 512 KB a block against its 64 KB of q).
template <class Ops>
__global__ void __launch_bounds__(RecTraits::kThreads)
rec_total_kernel(int64_t dk, int64_t dv, int64_t segments, int64_t dtiles, int64_t etiles, const float* states,
                 typename Ops::Raw* total) {
  float* const tile = reinterpret_cast<float*>(mk_linear_smem);  // [32][33]
  const int64_t et = blockIdx.x % etiles, dt = (blockIdx.x / etiles) % dtiles, g = blockIdx.x / (etiles * dtiles);
  const int DK = int(dk), DV = int(dv), d0 = int(dt) * 32, e0 = int(et) * 32;
  const float* const S = states + g * segments * dk * dv;
  for (int idx = int(threadIdx.x); idx < 32 * 32; idx += RecTraits::kThreads) {
    const int i = idx / 32, j = idx % 32, d = d0 + i, e = e0 + j;
    float x = 0.f;
    if (d < DK && e < DV)
      for (int64_t s = 0; s < segments; ++s) x += S[s * dk * dv + int64_t(d) * DV + e];
    tile[i * 33 + j] = x;
  }
  __syncthreads();
  typename Ops::Raw* const T = total + g * dv * dk;
  for (int idx = int(threadIdx.x); idx < 32 * 32; idx += RecTraits::kThreads) {
    const int j = idx / 32, i = idx % 32, d = d0 + i, e = e0 + j;
    if (d < DK && e < DV) T[int64_t(e) * DK + d] = Ops::state(tile[i * 33 + j]);
  }
}

// total: the groups' Ŝᵀ from rec_total_kernel (Raw [g][dv][dk]); null (one key segment): the one F32
// state per group of `states`, staged here
template <class Ops, int DKP, int AET>
__global__ void __launch_bounds__(RecTraits::kThreads)
tc_apply_kernel(int64_t nq, int64_t dk, int64_t dv, int64_t etiles, int64_t qsegs, const float* states,
                const typename Ops::Raw* total, const typename Ops::Raw* q, typename Ops::Raw* out, int vec) {
  using Raw = typename Ops::Raw;
  using L = RecApplyLayout<Ops, DKP, AET>;
  using A = typename Ops::A;
  constexpr int C = RecTraits::kChunk, KK = Ops::kK;
  Raw* const sm = reinterpret_cast<Raw*>(mk_linear_smem);
  Raw* const st = sm + L::st;
  const int64_t et = blockIdx.x % etiles, qs = (blockIdx.x / etiles) % qsegs, g = blockIdx.x / (etiles * qsegs);
  q += g * nq * dk;
  out += g * nq * dv;
  // within a group: 32-bit indices (run_tc_recurrent keeps nq·max(dk, dv) < 2^31)
  const int N = int(nq), DK = int(dk), DV = int(dv), e0 = int(et) * AET;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, gq = lane >> 2, tq = lane & 3;
  const int m0 = warp * 16;
  const int c_lo = int(qs) * kApplyChunks, c_hi = int(min64(ceil_div(nq, C), c_lo + kApplyChunks));
  const bool v16 = vec != 0;
  auto load = [&](int c, int stage) {
    rec_tile_async<Raw, DKP>(sm + stage * L::stage, L::LQ, q, DK, c * C, N, 0, DK, v16);
    cp_async_commit();
  };
  if (total) {  // Ŝᵀ rows [e0, e0 + AET) copied (zero past dk and dv), landing with the first chunk
#pragma unroll
    for (int h = 0; h < AET / C; ++h)
      rec_tile_async<Raw, DKP>(st + h * C * L::LQ, L::LQ, total + g * dv * dk, DK, e0 + h * C, DV, 0, DK, v16);
    cp_async_commit();
  }
  if (c_lo < c_hi) load(c_lo, 0);
  if (!total) {  // Ŝᵀ[e][d] = S[d][e0 + e] (the group's one state; in flight meanwhile: the first chunk)
    const float* const S = states + g * dk * dv;
    for (int idx = int(threadIdx.x); idx < DKP * AET; idx += RecTraits::kThreads) {
      const int d = idx / AET, e = idx % AET;
      // (from +0, as rec_total_kernel sums: a -0 state entry stages as +0 either way)
      const float x = d < DK && e0 + e < DV ? 0.f + S[int64_t(d) * DV + e0 + e] : 0.f;
      st[e * L::LQ + d] = Ops::state(x);
    }
  }
  for (int c = c_lo; c < c_hi; ++c) {
    const int stage = (c - c_lo) & 1;
    cp_async_wait<0>();  // this thread's copies of the chunk have landed ...
    __syncthreads();     // ... everyone's (and Ŝᵀ); every warp is done with the other stage
    if (c + 1 < c_hi) load(c + 1, stage ^ 1);
    const Raw* const qsm = sm + stage * L::stage;
    float o[AET / 8][4];
    zero_acc(o);
#pragma unroll 2
    for (int kk = 0; kk < DKP / KK; ++kk) {
      A a;
      Ops::a_rm(a, qsm, L::LQ, m0, kk * KK, lane);
      rec_mma_rows<Ops>(o, a, st, L::LQ, kk * KK, lane);
    }
    rec_store_out<Ops>(o, out, c * C + m0, N, e0, DV, gq, tq, v16 && DV % 2 == 0);
  }
  cp_async_wait<0>();
}

// Key segments of the state form's state pass: the smallest power of two with groups x etiles x
// segments blocks >= 2 per SM (the pass streams k and v and holds little: more blocks in flight hide
// the loads), keeping >= 4 chunks a segment. Untimed (2026-12-06): the harness times 1, 2, 4, 8.
inline int64_t rec_state_segments(int64_t groups, int64_t etiles, int64_t nk, int sms) {
  const int64_t chunks = ceil_div(nk, RecTraits::kChunk);
  int64_t segs = 1;
  while (groups * etiles * segs < 2 * int64_t(sms) && ceil_div(chunks, 2 * segs) >= 4) segs *= 2;
  return segs;
}

// Segments per group for a walk (the parallelism of one block per group and value tile is groups x
// etiles blocks, 128 at [4,16,4096,128], 32 at [1,16,16384,128]): 1 where the blocks already fill
// 7/8 of the device's SMs (128 of an H100's 132: one wave), else the smallest power of two that
// does, keeping >= 4 chunks (256 keys) a segment (a segment costs a state pass over its keys and a
// scan). Untimed (2026-12-06): benchmarks/gpu/linear_attention_harness.cu times 1, 2, 4, 8.
inline int64_t rec_segments(int64_t groups, int64_t etiles, int64_t n, int sms) {
  const int64_t chunks = ceil_div(n, RecTraits::kChunk);
  int64_t segs = 1;
  while (8 * groups * etiles * segs < 7 * int64_t(sms) && ceil_div(chunks, 2 * segs) >= 4) segs *= 2;
  return segs;
}

inline int device_sms() {
  int dev = 0, sms = 1;
  cudaGetDevice(&dev);
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 1;
  return sms;
}

// The recurrent form for one operand policy: KERNEL_UNSUPPORTED (before any launch) unless the
// product is masked and square, dk <= 128, and the device's shared memory holds the tiles.
// segments: 1 (one walk per group and value tile), more (needs `scratch_bytes` >= groups · segments ·
// dk · dv floats at S, else refused), or 0 (rec_segments' choice, halved until the scratch holds
// it; 1 without scratch). With several segments, first the segments' states K_segᵀ V_seg
// (tc_recurrent_kernel<.., true>, on the walk's MMAs), their exclusive prefix (causal) or suffix by
// scan_kernel, then a block per (group, segment, value tile) walks its segment from that state.
// f(integral_constant<int, 64 or 128> x2) for the two widths a, b (each 64 or 128)
template <class F>
auto rec_widths(int a, int b, F f) {
  using W64 = std::integral_constant<int, 64>;
  using W128 = std::integral_constant<int, 128>;
  if (a > 64) return b > 64 ? f(W128{}, W128{}) : f(W128{}, W64{});
  return b > 64 ? f(W64{}, W128{}) : f(W64{}, W64{});
}

// The scratch bytes of the state form at `segments` key segments: their F32 states, and with more
// than one the groups' total Ŝᵀ in the operand type (elem bytes), each part 16-byte aligned.
inline int64_t rec_state_form_scratch(int64_t groups, int64_t dk, int64_t dv, int64_t segments, int64_t elem) {
  auto up16 = [](int64_t b) { return (b + 15) / 16 * 16; };
  return up16(segments * groups * dk * dv * 4) + (segments > 1 ? up16(groups * dk * dv * elem) : 0);
}

// The key segments the state form runs at: `requested`, or for 0 rec_state_segments' choice (sms: the
// device's) halved until rec_state_form_scratch fits scratch_bytes; then at most one a chunk and
// none empty. (The harness and the emulator test ask it what the entry point runs.)
inline int64_t rec_state_form_segments(int64_t groups, int64_t nk, int64_t dk, int64_t dv, int64_t elem,
                                       int64_t scratch_bytes, int64_t requested, int sms) {
  const int64_t chunks = ceil_div(nk, RecTraits::kChunk);
  int64_t segs = requested;
  if (segs == 0) {
    segs = rec_state_segments(groups, dv > 64 ? ceil_div(dv, 128) : 1, nk, sms);
    while (segs > 1 && rec_state_form_scratch(groups, dk, dv, segs, elem) > scratch_bytes) segs /= 2;
  }
  segs = std::max<int64_t>(1, std::min(segs, chunks));
  return ceil_div(chunks, ceil_div(chunks, segs));
}

// The state form (mask 0, above): KERNEL_UNSUPPORTED (before any launch) unless dk <= 128, the
// tiles fit, and the scratch S holds rec_state_form_scratch bytes (F32 [dk, dv] states). segments:
// the key segments of the state pass (0: the automatic choice; rec_state_form_segments). The state
// pass holds 128 value columns a block where dv > 64 (k read once), else 64. apply_cols: the apply
// blocks' value columns, 64 or 128 (q read once where dv > 64), 0: 128 for 16-bit data with dv > 64,
// else 64 (the F32 tiles of 128 leave one block per SM: untimed).
template <class Ops>
int run_tc_state_form(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const typename Ops::Raw* q,
                      const typename Ops::Raw* k, const typename Ops::Raw* v, typename Ops::Raw* out,
                      cudaStream_t stream, float* S, int64_t scratch_bytes, int64_t segments, int apply_cols = 0) {
  using Raw = typename Ops::Raw;
  constexpr int N = 16 / int(sizeof(Raw));
  constexpr int64_t R = sizeof(Raw);
  if (!S || (apply_cols != 0 && apply_cols != 64 && apply_cols != 128)) return KERNEL_UNSUPPORTED;
  int vec = dk % N == 0 && dv % N == 0 && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
  const int dkp = dk > 64 ? 128 : 64, set = dv > 64 ? 128 : 64;
  const int aet = apply_cols ? apply_cols : sizeof(Raw) == 2 && dv > 64 ? 128 : 64;
  const int64_t stiles = ceil_div(dv, set), atiles = ceil_div(dv, aet), chunks = ceil_div(nk, RecTraits::kChunk);
  const size_t optin = optin_smem();
  const size_t state_smem = rec_widths(dkp, set, [](auto D, auto E) {
    return RecLayout<Ops, decltype(D)::value, decltype(E)::value, true>::bytes;
  });
  const size_t apply_smem = rec_widths(dkp, aet, [](auto D, auto E) {
    return RecApplyLayout<Ops, decltype(D)::value, decltype(E)::value>::bytes;
  });
  if (state_smem > optin || apply_smem > optin) return KERNEL_UNSUPPORTED;
  segments = rec_state_form_segments(groups, nk, dk, dv, R, scratch_bytes, segments, segments ? 0 : device_sms());
  const int64_t seg_chunks = ceil_div(chunks, segments);
  if (rec_state_form_scratch(groups, dk, dv, segments, R) > scratch_bytes) return KERNEL_UNSUPPORTED;
  // (the total after the states)
  Raw* const total = segments > 1 ? reinterpret_cast<Raw*>(reinterpret_cast<char*>(S) +
                                                           rec_state_form_scratch(groups, dk, dv, segments, 0))
                                  : nullptr;
  if (total) vec = vec && aligned16(total);
  // 1. the key segments' states (mask 1: chunks ascending; q and out not read)
  const int64_t sblocks = groups * segments * stiles;
  int st = rec_widths(dkp, set, [&](auto D, auto E) {
    return tc_launch(tc_recurrent_kernel<Ops, decltype(D)::value, true, decltype(E)::value>, sblocks, state_smem,
                     stream, 1, nk, dk, dv, stiles, segments, seg_chunks, RecInit{}, q, k, v, out, S, vec);
  });
  if (st != 0) return st;
  // 2. several segments: their total, once per group
  if (total) {
    const int64_t dt = ceil_div(dk, 32), et = ceil_div(dv, 32);
    st = tc_launch(rec_total_kernel<Ops>, groups * dt * et, 32 * 33 * sizeof(float), stream, dk, dv, segments, dt, et,
                   static_cast<const float*>(S), total);
    if (st != 0) return st;
  }
  // 3. O = Q Ŝ
  const int64_t qsegs = ceil_div(ceil_div(nq, RecTraits::kChunk), kApplyChunks);
  const int64_t ablocks = groups * qsegs * atiles;
  return rec_widths(dkp, aet, [&](auto D, auto E) {
    return tc_launch(tc_apply_kernel<Ops, decltype(D)::value, decltype(E)::value>, ablocks, apply_smem, stream, nq, dk,
                     dv, atiles, qsegs, static_cast<const float*>(S), static_cast<const Raw*>(total), q, out, vec);
  });
}

template <class Ops>
int run_tc_recurrent(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const typename Ops::Raw* q,
                     const typename Ops::Raw* k, const typename Ops::Raw* v, typename Ops::Raw* out, int mask,
                     cudaStream_t stream, float* S = nullptr, int64_t scratch_bytes = 0, int64_t segments = 1) {
  if (mask < 0 || mask > 2 || (mask != 0 && nq != nk) || dk > RecTraits::kMaxDk || dk <= 0 || dv <= 0 ||
      nq <= 0 || nk <= 0 || groups <= 0 || segments < 0 ||
      std::max(nq, nk) * std::max(dk, dv) >= (int64_t(1) << 31))  // (32-bit indices within a group)
    return KERNEL_UNSUPPORTED;
  if (mask == 0)
    return run_tc_state_form<Ops>(groups, nq, nk, dk, dv, q, k, v, out, stream, S, scratch_bytes, segments);
  using Raw = typename Ops::Raw;
  constexpr int N = 16 / int(sizeof(Raw));
  const int vec = dk % N == 0 && dv % N == 0 && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
  const int64_t etiles = ceil_div(dv, RecTraits::kET), chunks = ceil_div(nk, RecTraits::kChunk);
  const size_t optin = optin_smem();
  const bool wide = dk > 64;
  const size_t bytes = wide ? RecLayout<Ops, 128>::bytes : RecLayout<Ops, 64>::bytes;
  if (bytes > optin) return KERNEL_UNSUPPORTED;
  const int64_t state_bytes = groups * dk * dv * int64_t(sizeof(float));  // one state per group
  if (segments == 0) {
    segments = S ? rec_segments(groups, etiles, nk, device_sms()) : 1;
    while (segments > 1 && segments * state_bytes > scratch_bytes) segments /= 2;
  }
  segments = std::max<int64_t>(1, std::min(segments, chunks));
  const int64_t seg_chunks = ceil_div(chunks, segments);
  segments = ceil_div(chunks, seg_chunks);  // (no empty segment)
  if (segments > 1 && (!S || segments * state_bytes > scratch_bytes)) return KERNEL_UNSUPPORTED;
  RecInit init;
  const int64_t blocks = groups * segments * etiles;
  if (segments > 1) {  // the segments' states on the walk's MMAs, then their exclusive prefix / suffix
    ChunkPlan p;
    p.rows = seg_chunks * RecTraits::kChunk;
    p.states = segments;
    p.bytes = segments * state_bytes;
    // (mask 1: the state pass walks its segments ascending whatever the product's mask)
    int st = wide ? tc_launch(tc_recurrent_kernel<Ops, 128, true>, blocks, RecLayout<Ops, 128, 64, true>::bytes,
                              stream, 1, nq, dk, dv, etiles, segments, seg_chunks, init, q, k, v, out, S, vec)
                  : tc_launch(tc_recurrent_kernel<Ops, 64, true>, blocks, RecLayout<Ops, 64, 64, true>::bytes, stream,
                              1, nq, dk, dv, etiles, segments, seg_chunks, init, q, k, v, out, S, vec);
    if (st != 0) return st;
    if ((st = scan_states(p, groups, dk, dv, mask, S, stream)) != 0) return st;
    init.S0 = S;
  }
  if (!wide)
    return tc_launch(tc_recurrent_kernel<Ops, 64>, blocks, bytes, stream, mask, nq, dk, dv, etiles, segments,
                     seg_chunks, init, q, k, v, out, static_cast<float*>(nullptr), vec);
  return tc_launch(tc_recurrent_kernel<Ops, 128>, blocks, bytes, stream, mask, nq, dk, dv, etiles, segments,
                   seg_chunks, init, q, k, v, out, static_cast<float*>(nullptr), vec);
}
