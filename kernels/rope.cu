// Rotary position embedding on the GPU: one thread per position and 16 bytes' worth of frequencies
// computes those angles' sines and cosines once and rotates them in every head of q (and k).
#include "backend/cuda/rope.h"
#include "backend/rope_math.h"
#include "kernels/rope.cuh"
#include "kernels/row_groups.cuh"

namespace ponder::kernels {
namespace {

constexpr int64_t kMaxHalf = 512;  // head dims up to 1024: the table rides in the kernel parameters

// Computed on the host with the CPU kernel's float pow, so both devices use the same frequencies.
struct InverseFrequencies {
  float v[kMaxHalf];
};

template <class T>
struct RopeArgs {
  int64_t count, half, heads_q, heads_k;
  const T* q;
  T* out_q;
  const T* k;  // null: rotate q only
  T* out_k;
  const int64_t* positions;
  float sin_sign;  // -1 rotates backwards (the transpose, for the gradient)
};

// out_i = x_i cos - x_{i+half} sin, out_{i+half} = x_{i+half} cos + x_i sin, for frequencies
// i0..i0+V-1 of every head of position n. Heads go STEP at a time, their loads issued before any
// store (the compiler may not move a load past a store to `out`, which may be x itself).
template <int V, class T>
__device__ __forceinline__ void rotate_packs(T* out, const T* x, int64_t heads, int64_t n, int64_t i0, int64_t half,
                                             const float (&c)[V], const float (&s)[V]) {
  constexpr int STEP = 4;
  for (int64_t h0 = 0; h0 < heads; h0 += STEP) {
    Pack<T, V> lo[STEP], hi[STEP];
#pragma unroll
    for (int j = 0; j < STEP; ++j) {
      if (h0 + j >= heads) break;
      const int64_t base = ((n * heads + h0 + j) * 2 * half + i0) / V;
      lo[j] = load_pack<V>(x, base);
      hi[j] = load_pack<V>(x, base + half / V);
    }
#pragma unroll
    for (int j = 0; j < STEP; ++j) {
      if (h0 + j >= heads) break;
      Pack<T, V> out_lo, out_hi;
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float l = float(lo[j].v[e]), h = float(hi[j].v[e]);
        out_lo.v[e] = T(l * c[e] - h * s[e]);
        out_hi.v[e] = T(h * c[e] + l * s[e]);
      }
      const int64_t base = ((n * heads + h0 + j) * 2 * half + i0) / V;
      store_pack<V>(out, base, out_lo);
      store_pack<V>(out, base + half / V, out_hi);
    }
  }
}

// One thread per position and V consecutive frequencies: V sines and cosines, then 16-byte
// accesses (V = 16 / sizeof(T)) to that slice of every head of q and k.
template <int V, class T>
__global__ void rope_kernel(RopeArgs<T> a, InverseFrequencies table) {
  __shared__ float inv_freq[kMaxHalf];
  for (int64_t i = threadIdx.x; i < a.half; i += blockDim.x) inv_freq[i] = table.v[i];
  __syncthreads();
  const int64_t slices = a.half / V, total = a.count * slices;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = t / slices, i0 = t % slices * V;
    const float position = float(a.positions[n]);
    float c[V], s[V];
#pragma unroll
    for (int e = 0; e < V; ++e) {
      sincosf(position * inv_freq[i0 + e], &s[e], &c[e]);
      s[e] *= a.sin_sign;
    }
    rotate_packs<V>(a.out_q, a.q, a.heads_q, n, i0, a.half, c, s);
    if (a.k) rotate_packs<V>(a.out_k, a.k, a.heads_k, n, i0, a.half, c, s);
  }
}

int64_t heads_of(const Tensor& x) { return x.defined() ? x.size(x.dim() - 2) : 0; }

}  // namespace

void rotate_qk(const char* op, const Tensor& out_q, const Tensor& q, const Tensor& out_k, const Tensor& k,
               const Tensor& positions, double theta, bool inverse) {
  const int64_t count = positions.numel(), half = q.shape().back() / 2;
  PONDER_CHECK(half <= kMaxHalf, ShapeError, op, ": the CUDA kernel takes head dims up to ", 2 * kMaxHalf, ", got ",
               2 * half);
  if (count * half == 0) return;
  InverseFrequencies table{};
  for (int64_t i = 0; i < half; ++i) table.v[i] = backend::rope_inverse_frequency<float>(theta, i, half);
  visit_f32_bf16(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    RopeArgs<T> args{count,
                     half,
                     heads_of(q),
                     heads_of(k),
                     q.data<T>(),
                     out_q.data<T>(),
                     data_or_null<T>(k),
                     data_or_null<T>(out_k),
                     positions.data<int64_t>(),
                     inverse ? -1.0f : 1.0f};
    constexpr int V = kPack<T>;
    if (half % V == 0 && aligned16(q) && aligned16(out_q) && aligned16(k) && aligned16(out_k)) {
      rope_kernel<V, T><<<grid_for(count * half / V), kThreads, 0, stream_of(q)>>>(args, table);
    } else {
      rope_kernel<1, T><<<grid_for(count * half), kThreads, 0, stream_of(q)>>>(args, table);
    }
  });
  check_launch(op);
}

}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, bool inverse) {
  kernels::rotate_qk("rope", out, x, Tensor(), Tensor(), positions, theta, inverse);
}

}  // namespace ponder::backend::cuda
