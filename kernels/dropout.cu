// Inverted dropout on the GPU. Each thread draws one Philox block, whose four words decide the
// four elements that block covers (element i uses word i % 4 of block offset + i / 4), so the
// mask is the CPU's bit for bit.
#include "backend/cuda/dropout.h"
#include "backend/random_math.h"
#include "kernels/map.cuh"

namespace ponder::kernels {
namespace {

template <class T>
struct DropoutArgs {
  int64_t n;
  const T* in;
  T* out;
  uint64_t seed, offset;
  uint32_t threshold;
  compute_t<T> scale;
  bool packed;  // whole quads may move as one Pack<T, 4>
};

template <class T>
__device__ __forceinline__ T dropped(const DropoutArgs<T>& a, T x, uint32_t word) {
  using C = compute_t<T>;
  return backend::dropout_keep_word(word, a.threshold) ? T(static_cast<C>(C(x) * a.scale)) : T(C(0));
}

template <class T>
__global__ void dropout_kernel(DropoutArgs<T> a) {
  const int64_t quads = (a.n + 3) / 4;
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < quads; q += int64_t(gridDim.x) * blockDim.x) {
    const philox::Words w = philox::block_words(a.seed, a.offset + q);
    if (a.packed && 4 * q + 4 <= a.n) {
      Pack<T, 4> x = reinterpret_cast<const Pack<T, 4>*>(a.in)[q], y;
#pragma unroll
      for (int j = 0; j < 4; ++j) y.v[j] = dropped(a, x.v[j], w.w[j]);
      reinterpret_cast<Pack<T, 4>*>(a.out)[q] = y;
    } else {
      for (int64_t i = 4 * q; i < a.n && i < 4 * q + 4; ++i) a.out[i] = dropped(a, a.in[i], w.w[i % 4]);
    }
  }
}

bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace
}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void dropout(const Tensor& out, const Tensor& in, double p, uint64_t seed, uint64_t offset) {
  const int64_t n = in.numel();
  if (n == 0) return;
  visit_floating(in.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const bool packed =
        kernels::aligned_to(in.data_ptr(), 4 * sizeof(T)) && kernels::aligned_to(out.data_ptr(), 4 * sizeof(T));
    kernels::DropoutArgs<T> args{
        n, in.data<T>(), out.data<T>(), seed, offset, dropout_threshold(p), static_cast<C>(1.0 / (1.0 - p)), packed};
    kernels::dropout_kernel<T><<<kernels::grid_for((n + 3) / 4), kernels::kThreads, 0, kernels::stream_of(in)>>>(args);
  });
  kernels::check_launch("dropout");
}

}  // namespace ponder::backend::cuda
