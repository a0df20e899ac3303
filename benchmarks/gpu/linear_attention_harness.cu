// Standalone GPU harness for kernels/cuda/linear_attention.cu: the chunk-parallel form against the
// sequential one (agreement and time), no Java needed. On the GPU machine, from the project root:
//   nvcc -std=c++17 -O3 -arch=sm_90 -Ikernels/include -Inative/include -Ikernels/cuda \
//        benchmarks/gpu/linear_attention_harness.cu -o /tmp/la && /tmp/la
// (benchmarks/gpu/check.sh runs it). Prints one row per shape, mask and form: time per call
// (median of 10 after 2 warm-ups, CUDA events), GFLOP/s counted as the products the form does,
// and the largest difference from the sequential form relative to max|out|.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "linear_attention.cu"

#define CHECK(x)                                                                           \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

__global__ void fill_normalish(float* x, int64_t n, unsigned seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    unsigned h = unsigned(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    x[i] = (float(h & 0xffffff) / 16777216.0f - 0.5f) * 0.2f;
  }
}

static float time_call(int reps, const std::function<int()>& f) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 2; ++i)
    if (f() != 0) return -1;
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    CHECK(cudaEventRecord(a));
    if (f() != 0) return -1;
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int main() {
  struct Shape {
    int64_t b, h, n, d;
  };
  const Shape shapes[] = {{4, 16, 4096, 128}, {1, 16, 16384, 128}, {4, 16, 4096, 64}, {32, 8, 512, 64}};
  printf("| shape | mask | form | ms | GFLOP/s | max|diff| / max|out| vs sequential |\n|---|---|---|---|---|---|\n");
  for (const Shape& s : shapes) {
    const int64_t G = s.b * s.h, n = s.n, d = s.d;
    const int64_t elems = G * n * d;
    float *q, *k, *v, *o1, *o2;
    CHECK(cudaMalloc(&q, elems * 4));
    CHECK(cudaMalloc(&k, elems * 4));
    CHECK(cudaMalloc(&v, elems * 4));
    CHECK(cudaMalloc(&o1, elems * 4));
    CHECK(cudaMalloc(&o2, elems * 4));
    fill_normalish<<<1024, 256>>>(q, elems, 1u);
    fill_normalish<<<1024, 256>>>(k, elems, 2u);
    fill_normalish<<<1024, 256>>>(v, elems, 3u);
    const int64_t scratch = mk::cuda::linear_attention_scratch(MK_F32, G, n, n, d, d, 1);
    void* ws = nullptr;
    CHECK(cudaMalloc(&ws, std::max<int64_t>(scratch, 16)));
    for (int mask = 0; mask <= 1; ++mask) {
      float t_seq = time_call(10, [&] {
        return mk::cuda::linear_attention(MK_F32, G, n, n, d, d, q, k, v, o1, mask, nullptr, nullptr);
      });
      float t_chk = time_call(10, [&] {
        return mk::cuda::linear_attention(MK_F32, G, n, n, d, d, q, k, v, o2, mask, ws, nullptr);
      });
      std::vector<float> h1(elems), h2(elems);
      CHECK(cudaMemcpy(h1.data(), o1, elems * 4, cudaMemcpyDeviceToHost));
      CHECK(cudaMemcpy(h2.data(), o2, elems * 4, cudaMemcpyDeviceToHost));
      double mx = 0, diff = 0;
      for (int64_t i = 0; i < elems; ++i) {
        mx = std::max(mx, double(std::fabs(h1[i])));
        diff = std::max(diff, double(std::fabs(h1[i] - h2[i])));
      }
      // products: states 2 n d^2, q S 2 n d^2, masked blocks (causal) ~ 2 n 64 d (q k) + 2 n 64 d (a v) / 2 each
      const double flops_chunk = double(G) * (4.0 * n * d * d + (mask ? 2.0 * n * 64 * d * 2 : 0));
      const double flops_seq = double(G) * (4.0 * n * d * d + (mask ? 2.0 * n * 64 * d * 2 : 0));
      printf("| [%lld,%lld,%lld,%lld] | %s | sequential | %.3f | %.0f | |\n", (long long)s.b, (long long)s.h,
             (long long)n, (long long)d, mask ? "causal" : "none", t_seq, flops_seq / (t_seq * 1e6));
      printf("| [%lld,%lld,%lld,%lld] | %s | chunked (scratch %.0f MB) | %.3f | %.0f | %.2e |\n", (long long)s.b,
             (long long)s.h, (long long)n, (long long)d, mask ? "causal" : "none", scratch / 1e6, t_chk,
             flops_chunk / (t_chk * 1e6), diff / (mx > 0 ? mx : 1));
    }
    CHECK(cudaFree(ws));
    CHECK(cudaFree(q));
    CHECK(cudaFree(k));
    CHECK(cudaFree(v));
    CHECK(cudaFree(o1));
    CHECK(cudaFree(o2));
  }
  return 0;
}
