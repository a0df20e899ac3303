// The tools' R-MAT graph (Graph500 probabilities a = 0.57, b = c = 0.19, d = 0.05; node labels
// shuffled; duplicate edges and self-loops kept), shared by tools/*_ab.cpp, sddmm_passes_prof.cpp and
// sddmm_tiling_probe.cpp. rmat_edges draws from rng exactly as each tool did inline before (the label
// shuffle, then per edge one uniform per level, edges outside [0, N) redrawn), so their graphs and
// every later draw from rng are unchanged.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

inline void rmat_edges(int64_t N, int64_t E, std::mt19937_64& rng, std::vector<int64_t>& src,
                       std::vector<int64_t>& dst) {
  std::uniform_real_distribution<double> U(0, 1);
  int scale = 0;
  while ((int64_t(1) << scale) < N) scale++;
  std::vector<int64_t> perm(static_cast<size_t>(N));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  src.assign(size_t(E), 0);
  dst.assign(size_t(E), 0);
  for (int64_t i = 0; i < E; ++i)
    for (;;) {
      int64_t s = 0, d = 0;
      for (int l = 0; l < scale; ++l) {
        const double u = U(rng);
        s = 2 * s + (u >= 0.76);
        d = 2 * d + ((u >= 0.57 && u < 0.76) || u >= 0.95);
      }
      if (s < N && d < N) {
        src[size_t(i)] = perm[size_t(s)];
        dst[size_t(i)] = perm[size_t(d)];
        break;
      }
    }
}

// The CSR by destination (row r: the sources of r's in-edges, sorted)
inline void csr_by_destination(int64_t N, const std::vector<int64_t>& src, const std::vector<int64_t>& dst,
                               std::vector<int64_t>& ptr, std::vector<int64_t>& col) {
  const int64_t E = int64_t(src.size());
  ptr.assign(size_t(N + 1), 0);
  col.assign(size_t(E), 0);
  for (int64_t i = 0; i < E; ++i) ptr[size_t(dst[size_t(i)] + 1)]++;
  for (int64_t r = 0; r < N; ++r) ptr[size_t(r + 1)] += ptr[size_t(r)];
  std::vector<int64_t> pos(ptr.begin(), ptr.end() - 1);
  for (int64_t i = 0; i < E; ++i) col[size_t(pos[size_t(dst[size_t(i)])]++)] = src[size_t(i)];
  for (int64_t r = 0; r < N; ++r) std::sort(col.begin() + ptr[size_t(r)], col.begin() + ptr[size_t(r + 1)]);
}
