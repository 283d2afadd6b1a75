// Rotary position embedding on the GPU: one thread per (position, frequency) pair computes the
// angle's sine and cosine once and rotates that pair of every head of q (and k).
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

// out_i = x_i cos - x_{i+half} sin, out_{i+half} = x_{i+half} cos + x_i sin, for every head of
// position n.
template <class T>
__device__ __forceinline__ void rotate_pair(T* out, const T* x, int64_t heads, int64_t n, int64_t i, int64_t half,
                                            float c, float s) {
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t base = (n * heads + h) * 2 * half;
    const float lo = float(x[base + i]), hi = float(x[base + half + i]);
    out[base + i] = T(lo * c - hi * s);
    out[base + half + i] = T(hi * c + lo * s);
  }
}

template <class T>
__global__ void rope_kernel(RopeArgs<T> a, InverseFrequencies table) {
  __shared__ float inv_freq[kMaxHalf];
  for (int64_t i = threadIdx.x; i < a.half; i += blockDim.x) inv_freq[i] = table.v[i];
  __syncthreads();
  const int64_t total = a.count * a.half;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = t / a.half, i = t % a.half;
    const float angle = float(a.positions[n]) * inv_freq[i];
    float s, c;
    sincosf(angle, &s, &c);
    s *= a.sin_sign;
    rotate_pair(a.out_q, a.q, a.heads_q, n, i, a.half, c, s);
    if (a.k) rotate_pair(a.out_k, a.k, a.heads_k, n, i, a.half, c, s);
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
    rope_kernel<T><<<grid_for(count * half), kThreads, 0, stream_of(q)>>>(args, table);
  });
  check_launch(op);
}

}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, bool inverse) {
  kernels::rotate_qk("rope", out, x, Tensor(), Tensor(), positions, theta, inverse);
}

}  // namespace ponder::backend::cuda
