// The Hopper instructions of kernels/cuda/sm90.cuh on the host emulator (included by it under
// MK_CUDA_EMU, after cuda_runtime.h): warpgroup MMA with shared-memory descriptors (128-byte
// swizzle) and register A, wgmma fence / commit / wait, mbarriers with transaction counts, TMA
// tile loads through an emulated CUtensorMap (cuTensorMapEncodeTiled reached through
// cudaGetDriverEntryPointByVersion, as on a device), named barriers. setmaxnreg and the proxy
// fences are no-ops here (they order nothing a one-fiber-at-a-time model can get wrong).
//
// The model is built to expose misuse, not to be fast:
//  - a wgmma is computed at the wgmma.wait_group that covers it, not when issued: accumulators
//    read before that wait hold their old values, and an accumulator written between the issue and
//    the wait, or a wgmma issued with no wgmma.fence since the last wait, stops the run;
//  - shared operands are read through the descriptor (start, LBO, SBO, 128-byte swizzle of the
//    address bits) at that wait, so a stage overwritten too early gives wrong results;
//  - a TMA copy lands only when some thread waits on its mbarrier's unfinished phase, so a read of a
//    tile without the wait sees the NaN poison; transaction bytes must match the expect_tx exactly;
//  - a wait that can never complete (every other thread blocked or spinning) stops the run.
// Layout facts modelled, and where they come from: see kernels/cuda/sm90.cuh and
// tests/cuda-emu/wgmma_emu_test.cpp.
#pragma once
#include <deque>

typedef uint32_t cuuint32_t;
typedef uint64_t cuuint64_t;
typedef int CUresult;
#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
typedef struct CUtensorMap_st {
  alignas(64) cuuint64_t opaque[16];
} CUtensorMap;
enum CUtensorMapDataType {
  CU_TENSOR_MAP_DATA_TYPE_UINT16 = 1,
  CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6,
  CU_TENSOR_MAP_DATA_TYPE_FLOAT32 = 7,
  CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9
};
enum CUtensorMapInterleave { CU_TENSOR_MAP_INTERLEAVE_NONE = 0 };
enum CUtensorMapSwizzle { CU_TENSOR_MAP_SWIZZLE_NONE = 0, CU_TENSOR_MAP_SWIZZLE_128B = 3 };
enum CUtensorMapL2promotion {
  CU_TENSOR_MAP_L2_PROMOTION_NONE = 0,
  CU_TENSOR_MAP_L2_PROMOTION_L2_128B = 2,
  CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3
};
enum CUtensorMapFloatOOBfill { CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0 };
typedef CUresult (*PFN_cuTensorMapEncodeTiled_v12000)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                                                      const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                                      const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                                      CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
enum cudaDriverEntryPointQueryResult { cudaDriverEntryPointSuccess = 0, cudaDriverEntryPointSymbolNotFound = 1 };
#define cudaEnableDefault 0ULL
#define __grid_constant__

namespace emu {
// ---- the emulated tensor map (rank <= 3, 16- or 32-bit elements), kept in CUtensorMap's opaque bytes ----
struct TensorMap {
  uint32_t magic;
  int rank, esize, swizzle;
  const unsigned char* base;
  uint64_t dim[3];
  uint64_t stride[2];  // bytes, of dims 1 and 2
  uint32_t box[3];
};
static_assert(sizeof(TensorMap) <= sizeof(CUtensorMap), "fits the opaque bytes");
constexpr uint32_t kTensorMapMagic = 0x7e115a9u;

// cuTensorMapEncodeTiled with the driver's documented checks that apply to what is modelled.
inline CUresult encode_tiled(CUtensorMap* out, CUtensorMapDataType dt, cuuint32_t rank, void* addr,
                             const cuuint64_t* dim, const cuuint64_t* strides, const cuuint32_t* box,
                             const cuuint32_t* estr, CUtensorMapInterleave il, CUtensorMapSwizzle sw,
                             CUtensorMapL2promotion, CUtensorMapFloatOOBfill oob) {
  if (reinterpret_cast<uintptr_t>(out) % 64 != 0) return CUDA_ERROR_INVALID_VALUE;
  if (dt != CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 && dt != CU_TENSOR_MAP_DATA_TYPE_FLOAT16 &&
      dt != CU_TENSOR_MAP_DATA_TYPE_UINT16 && dt != CU_TENSOR_MAP_DATA_TYPE_FLOAT32)
    return CUDA_ERROR_INVALID_VALUE;  // (only these types modelled)
  const uint64_t es = dt == CU_TENSOR_MAP_DATA_TYPE_FLOAT32 ? 4 : 2;
  if (rank < 1 || rank > 3 || il != CU_TENSOR_MAP_INTERLEAVE_NONE || oob != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
    return CUDA_ERROR_INVALID_VALUE;
  if (reinterpret_cast<uintptr_t>(addr) % 16 != 0) return CUDA_ERROR_INVALID_VALUE;
  TensorMap m{};
  m.magic = kTensorMapMagic;
  m.rank = int(rank);
  m.esize = int(es);
  m.swizzle = int(sw);
  m.base = static_cast<const unsigned char*>(addr);
  uint64_t prev = 0;
  for (unsigned i = 0; i < rank; ++i) {
    if (dim[i] == 0 || dim[i] > (uint64_t(1) << 32)) return CUDA_ERROR_INVALID_VALUE;
    if (box[i] == 0 || box[i] > 256 || estr[i] != 1) return CUDA_ERROR_INVALID_VALUE;
    m.dim[i] = dim[i];
    m.box[i] = box[i];
    if (i > 0) {
      const uint64_t s = strides[i - 1];
      if (s % 16 != 0 || s >= (uint64_t(1) << 40)) return CUDA_ERROR_INVALID_VALUE;
      // each stride includes the previous dimension's extent (the driver's documented rule)
      if (s < (i == 1 ? dim[0] * es : prev * dim[i - 1])) return CUDA_ERROR_INVALID_VALUE;
      m.stride[i - 1] = s;
      prev = s;
    }
  }
  if ((box[0] * es) % 16 != 0) return CUDA_ERROR_INVALID_VALUE;
  if (sw == CU_TENSOR_MAP_SWIZZLE_128B && box[0] * es > 128) return CUDA_ERROR_INVALID_VALUE;
  if (sw != CU_TENSOR_MAP_SWIZZLE_NONE && sw != CU_TENSOR_MAP_SWIZZLE_128B) return CUDA_ERROR_INVALID_VALUE;
  std::memset(out, 0, sizeof *out);
  std::memcpy(out, &m, sizeof m);
  return CUDA_SUCCESS;
}

inline uint32_t smem_address(const void* p) {
  const unsigned char* x = static_cast<const unsigned char*>(p);
  if (x < smem() || x >= smem() + config().smem_capacity) die("shared address of a pointer outside shared memory");
  return uint32_t(x - smem());
}

// ---- per-block state --------------------------------------------------------------------------------
enum WgKind { kWgF16 = 0, kWgBf16 = 1, kWgTf32 = 2 };
struct WgOp {
  int kind;  // WgKind
  bool a_regs, tnsp_b, acc, check;
  int n;
  float* d;
  uint32_t a[4];
  uint64_t adesc, bdesc;
  float d_issue[128];
};
struct WgFiber {
  std::vector<WgOp> open;
  std::deque<std::vector<WgOp>> groups;
  bool fenced = false;
};
struct Mbar {
  int count = 0, pending = 0;
  int64_t tx = 0;
  uint32_t phase = 0;
};
struct TmaCopy {
  uint32_t dst, bar;
  TensorMap map;
  int c[3];
};
struct Sm90Block {
  int64_t serial = -1;
  std::vector<WgFiber> wg;
  std::vector<int> wait_key;
  std::map<int, int> arrived;
  std::map<uint32_t, Mbar> bars;
  std::vector<TmaCopy> tma;
};
inline Sm90Block& sm90() {
  static Sm90Block b;
  const int64_t serial = config().launches * (int64_t(1) << 32) + sched().block_idx.x;
  if (b.serial != serial) {
    if (!b.tma.empty()) die("a TMA copy never waited for (its mbarrier never polled)");
    b = Sm90Block{};
    b.serial = serial;
    b.wg.resize(size_t(sched().nthreads));
    b.wait_key.assign(size_t(sched().nthreads), -1);
  }
  return b;
}

constexpr int kWaitGroup = 4;  // Fiber::state of a thread at a named or warpgroup barrier

// The first `count` arrivals at barrier `key` release each other (bar.sync key, count).
inline void group_barrier(int key, int count) {
  Sched& s = sched();
  Sm90Block& b = sm90();
  s.fibers[s.cur].state = kWaitGroup;
  b.wait_key[s.cur] = key;
  ++sched().events;
  if (++b.arrived[key] == count) {
    for (int i = 0; i < s.nthreads; ++i)
      if (s.fibers[i].state == kWaitGroup && b.wait_key[i] == key) {
        s.fibers[i].state = READY;
        b.wait_key[i] = -1;
      }
    b.arrived[key] = 0;
  }
  yield_to_main();
}
inline void named_barrier(int id, int threads) {
  if (id < 1 || id > 15 || threads % 32 != 0) die("bar.sync: id 1..15 and a multiple of 32 threads");
  group_barrier(id, threads);
}
inline void warpgroup_barrier() { group_barrier(1000 + sched().cur / 128, 128); }

// ---- wgmma --------------------------------------------------------------------------------------------
inline float half_value(bool bf16, uint16_t h) {
  if (!bf16) return _cvtsh_ss(h);
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Byte address in shared memory of element (mn, k) of a 128-byte-swizzled operand of `es`-byte
// elements: K-major (a row of 128 / es k per 128 bytes, 8-row groups SBO apart) or MN-major (16-bit
// only: 64 mn per 128-byte row, rows = k, 8-k groups SBO apart, 64-mn atoms LBO apart); the swizzle
// permutes 16-byte chunks by address bits 7-9.
inline uint32_t operand_address(uint64_t desc, int mn, int k, bool mn_major, int es = 2) {
  const uint32_t start = uint32_t(desc & 0x3fffu) << 4;
  const uint32_t lbo = uint32_t((desc >> 16) & 0x3fffu) << 4;
  const uint32_t sbo = uint32_t((desc >> 32) & 0x3fffu) << 4;
  const int base_offset = int((desc >> 49) & 7), swizzle = int(desc >> 62);
  if (swizzle != 1) die("wgmma: only the 128-byte swizzle is modelled");
  if (base_offset != 0) die("wgmma: a non-zero base offset is not modelled");
  if ((start >> 7) & 7) die("wgmma: descriptor start not on a swizzle row 0 (address bits 7-9 set)");
  uint32_t off;
  if (!mn_major)
    off = uint32_t(mn / 8) * sbo + uint32_t(mn % 8) * 128 + uint32_t(k) * uint32_t(es);
  else
    off = uint32_t(mn / 64) * lbo + uint32_t(mn % 64) * 2 + uint32_t(k % 8) * 128 + uint32_t(k / 8) * sbo;
  const uint32_t a = start + off;
  const uint32_t phys = a ^ (((a >> 7) & 7u) << 4);
  if (phys + uint32_t(es) > config().smem_capacity) die("wgmma: operand outside shared memory");
  return phys;
}

// A TF32 operand as the MMA takes it. The kernels give exact TF32 values (the low 13 bits of the
// F32 pattern zero, e.g. cvt.rna.tf32.f32); what the hardware does with other bits is not relied
// on, so the model refuses them.
inline float tf32_value(uint32_t bits) {
  if (bits & 0x1fffu) die("wgmma .tf32: an operand with non-zero low 13 bits (not rounded to TF32)");
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline void wgmma_fence() { sm90().wg[size_t(sched().cur)].fenced = true; }

// kind: WgKind (a bool of the 16-bit callers converts: true = BF16, false = F16)
inline void wgmma_issue(int kind, int n, float* d, const uint32_t* a, uint64_t adesc, uint64_t bdesc, bool tnsp_b,
                        bool acc) {
  Sm90Block& b = sm90();
  WgFiber& f = b.wg[size_t(sched().cur)];
  if (sched().nthreads % 128 != 0) die("wgmma: the block is not whole warpgroups");
  const bool idle = f.open.empty() && f.groups.empty();
  if (idle && !f.fenced) die("wgmma.mma_async without a wgmma.fence since the registers were last touched");
  WgOp op{};
  if (kind == kWgTf32 && tnsp_b) die("wgmma .tf32: a transposed (MN-major) B is not a TF32 form");
  op.kind = kind;
  op.n = n;
  op.d = d;
  op.a_regs = a != nullptr;
  if (a) std::memcpy(op.a, a, 16);
  op.adesc = adesc;
  op.bdesc = bdesc;
  op.tnsp_b = tnsp_b;
  op.acc = acc;
  // the first pending op on these registers: they must be unchanged until its wait
  bool seen = false;
  for (const WgOp& o : f.open) seen |= o.d == d;
  for (const auto& g : f.groups)
    for (const WgOp& o : g) seen |= o.d == d;
  op.check = !seen;
  std::memcpy(op.d_issue, d, sizeof(float) * size_t(n / 2));
  f.open.push_back(op);
}

inline void wgmma_commit() {
  WgFiber& f = sm90().wg[size_t(sched().cur)];
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}

inline void wgmma_wait(int newest_pending) {
  Sched& s = sched();
  const int me = s.cur, wg0 = (me / 128) * 128, tid = me % 128;
  const int w = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  while (int(sm90().wg[size_t(me)].groups.size()) > newest_pending) {
    warpgroup_barrier();  // every thread of the warpgroup has issued and committed the group
    Sm90Block& b = sm90();
    const std::vector<WgOp>& mine = b.wg[size_t(me)].groups.front();
    for (size_t k = 0; k < mine.size(); ++k) {
      const WgOp& op = mine[k];
      for (int o = 0; o < 128; ++o) {
        const WgFiber& other = b.wg[size_t(wg0 + o)];
        if (other.groups.empty() || other.groups.front().size() != mine.size())
          die("wgmma: the threads of a warpgroup committed different groups");
        const WgOp& x = other.groups.front()[k];
        if (x.n != op.n || x.kind != op.kind || x.a_regs != op.a_regs || x.tnsp_b != op.tnsp_b || x.bdesc != op.bdesc ||
            (!op.a_regs && x.adesc != op.adesc) || x.acc != op.acc)
          die("wgmma: the threads of a warpgroup issued different instructions");
      }
      if (op.check && std::memcmp(op.d, op.d_issue, sizeof(float) * size_t(op.n / 2)) != 0)
        die("wgmma: accumulator registers written while a wgmma on them was in flight");
      const bool tf32 = op.kind == kWgTf32, bf16 = op.kind == kWgBf16;
      const int kdepth = tf32 ? 8 : 16, es = tf32 ? 4 : 2;
      auto A = [&](int row, int kk) -> float {
        if (op.a_regs) {
          const int ow = row / 16, r = row % 16;
          if (tf32) {
            // the m16n8k8 TF32 A layout per warp: rows 16w + (g, g + 8), k (t, t + 4)
            const int olane = 4 * (r % 8) + kk % 4, reg = r / 8 + 2 * (kk / 4);
            return tf32_value(b.wg[size_t(wg0 + 32 * ow + olane)].groups.front()[k].a[reg]);
          }
          // the m16n8k16 A layout per warp: rows 16w + (g, g + 8), k (2t, 2t + 1, 2t + 8, 2t + 9)
          const int olane = 4 * (r % 8) + (kk % 8) / 2, reg = r / 8 + 2 * (kk / 8);
          const uint32_t word = b.wg[size_t(wg0 + 32 * ow + olane)].groups.front()[k].a[reg];
          return half_value(bf16, uint16_t((kk & 1) ? word >> 16 : word & 0xffffu));
        }
        if (tf32) {
          uint32_t u;
          std::memcpy(&u, smem() + operand_address(op.adesc, row, kk, false, 4), 4);
          return tf32_value(u);
        }
        uint16_t h;
        std::memcpy(&h, smem() + operand_address(op.adesc, row, kk, false, es), 2);
        return half_value(bf16, h);
      };
      auto B = [&](int kk, int col) -> float {
        if (tf32) {
          uint32_t u;
          std::memcpy(&u, smem() + operand_address(op.bdesc, col, kk, false, 4), 4);
          return tf32_value(u);
        }
        uint16_t h;
        std::memcpy(&h, smem() + operand_address(op.bdesc, col, kk, op.tnsp_b), 2);
        return half_value(bf16, h);
      };
      for (int i = 0; i < op.n / 8; ++i)
        for (int r = 0; r < 4; ++r) {
          const int row = 16 * w + g + 8 * (r >> 1), col = 8 * i + 2 * t + (r & 1);
          float acc = op.acc ? op.d[4 * i + r] : 0.f;
          for (int kk = 0; kk < kdepth; ++kk) acc = std::fma(A(row, kk), B(kk, col), acc);
          op.d[4 * i + r] = acc;
        }
    }
    warpgroup_barrier();  // every thread has read the others' records before they are dropped
    sm90().wg[size_t(me)].groups.pop_front();
  }
  sm90().wg[size_t(me)].fenced = false;
}

// ---- mbarrier and TMA ------------------------------------------------------------------------------
constexpr uint64_t kMbarMarker = 0x6d6261725f656d75ull;  // written over the barrier's 8 bytes at init
inline Mbar& mbar_at(uint32_t bar) {
  Sm90Block& b = sm90();
  auto it = b.bars.find(bar);
  if (it == b.bars.end()) die("mbarrier used before mbarrier.init (in this block)");
  uint64_t word;
  std::memcpy(&word, smem() + bar, 8);
  if (word != kMbarMarker) die("mbarrier: its 8 bytes of shared memory were overwritten");
  return it->second;
}
inline void mbar_init(uint32_t bar, int count) {
  if (bar % 8 != 0 || bar + 8 > config().smem_capacity) die("mbarrier.init: 8-byte aligned, in shared memory");
  if (count < 1) die("mbarrier.init: count >= 1");
  std::memcpy(smem() + bar, &kMbarMarker, 8);
  Mbar m;
  m.count = m.pending = count;
  sm90().bars[bar] = m;
  ++sched().events;
}
inline void mbar_try_complete(Mbar& m) {
  if (m.pending == 0 && m.tx == 0) {
    ++m.phase;
    m.pending = m.count;
  }
}
inline void mbar_arrive(uint32_t bar, uint32_t tx) {
  Mbar& m = mbar_at(bar);
  if (m.pending <= 0) die("mbarrier: more arrivals than its count in one phase");
  m.tx += tx;
  --m.pending;
  ++sched().events;
  mbar_try_complete(m);
}
inline void tma_perform(const TmaCopy& c) {
  const TensorMap& m = c.map;
  const uint32_t bytes = m.box[0] * m.box[1] * m.box[2] * uint32_t(m.esize);
  uint32_t off = 0;
  for (uint32_t i2 = 0; i2 < m.box[2]; ++i2)
    for (uint32_t i1 = 0; i1 < m.box[1]; ++i1)
      for (uint32_t i0 = 0; i0 < m.box[0]; ++i0, off += uint32_t(m.esize)) {
        const int64_t g0 = int64_t(c.c[0]) + i0, g1 = int64_t(c.c[1]) + i1, g2 = int64_t(c.c[2]) + i2;
        uint32_t v = 0;  // out of bounds: zero
        if (g0 >= 0 && g0 < int64_t(m.dim[0]) && g1 >= 0 && g1 < int64_t(m.dim[1]) && g2 >= 0 && g2 < int64_t(m.dim[2]))
          std::memcpy(&v, m.base + g0 * m.esize + g1 * int64_t(m.stride[0]) + g2 * int64_t(m.stride[1]), size_t(m.esize));
        uint32_t a = c.dst + off;
        if (m.swizzle == CU_TENSOR_MAP_SWIZZLE_128B) a ^= ((a >> 7) & 7u) << 4;
        if (a + uint32_t(m.esize) > config().smem_capacity) die("TMA: box past shared memory");
        std::memcpy(smem() + a, &v, size_t(m.esize));
      }
  Mbar& b = mbar_at(c.bar);
  b.tx -= bytes;
  if (b.tx < 0) die("TMA: more bytes completed on an mbarrier than its expect_tx announced");
  mbar_try_complete(b);
}
inline void tma_load(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint32_t bar) {
  TmaCopy c;
  std::memcpy(&c.map, map, sizeof c.map);
  if (c.map.magic != kTensorMapMagic) die("TMA: not an encoded tensor map");
  if (c.map.rank == 1) c.map.dim[1] = c.map.dim[2] = 1, c.map.box[1] = c.map.box[2] = 1;
  if (c.map.rank == 2) c.map.dim[2] = 1, c.map.box[2] = 1;
  if (c.map.swizzle == CU_TENSOR_MAP_SWIZZLE_128B) {
    if (dst % 1024 != 0) die("TMA: a 128-byte-swizzled box wants a 1024-byte aligned destination");
    if (c.map.box[0] * uint32_t(c.map.esize) != 128)
      die("TMA: only 128-byte inner boxes are modelled with the 128-byte swizzle");
  } else if (dst % 128 != 0) {
    die("TMA: destination not 128-byte aligned");
  }
  c.dst = dst;
  c.bar = bar;
  c.c[0] = c0;
  c.c[1] = c1;
  c.c[2] = c2;
  mbar_at(bar);
  sm90().tma.push_back(c);
  ++sched().events;
}
// try_wait.parity in a loop: true once the phase of parity `parity` has completed (phase counter's
// parity differs). Copies in flight on the barrier land when a wait finds its phase unfinished.
inline void mbar_wait(uint32_t bar, uint32_t parity) {
  int idle_polls = 0;
  int64_t seen = -1;
  for (;;) {
    Mbar& m = mbar_at(bar);
    if ((m.phase & 1u) != (parity & 1u)) return;
    Sm90Block& b = sm90();
    std::vector<TmaCopy> now, later;
    for (const TmaCopy& c : b.tma) (c.bar == bar ? now : later).push_back(c);
    if (!now.empty()) {
      b.tma = later;
      for (const TmaCopy& c : now) tma_perform(c);
      ++sched().events;
      continue;
    }
    if (sched().events == seen) {
      if (++idle_polls > 3) die("mbarrier wait that can never complete (no other thread makes progress)");
    } else {
      idle_polls = 0;
      seen = sched().events;
    }
    yield_to_main();  // (state READY: the others run, then this thread polls again)
  }
}
}  // namespace emu

inline cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** fn, unsigned, unsigned long long,
                                                    cudaDriverEntryPointQueryResult* q) {
  if (std::strcmp(symbol, "cuTensorMapEncodeTiled") == 0) {
    *fn = reinterpret_cast<void*>(&emu::encode_tiled);
    if (q) *q = cudaDriverEntryPointSuccess;
    return cudaSuccess;
  }
  *fn = nullptr;
  if (q) *q = cudaDriverEntryPointSymbolNotFound;
  return cudaSuccess;
}
