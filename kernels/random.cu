// Random fills on the GPU: element i takes the CPU's value. The per-element math is shared
// (backend/random_math.h, in double); the final affine step uses explicitly rounded double
// operations, so the device compiler cannot fuse it into an fma the CPU does not do.
#include "backend/cuda/random.h"
#include "backend/random_math.h"
#include "kernels/common.cuh"

namespace ponder::kernels {
namespace {

// low + span * u, rounded like the CPU's two double operations.
__device__ __forceinline__ double affine(double low, double span, double u) {
  return __dadd_rn(low, __dmul_rn(span, u));
}

template <class T>
__global__ void uniform_kernel(T* p, int64_t n, double low, double span, uint64_t seed, uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double u = backend::uniform_at(seed, offset, static_cast<uint64_t>(i));
    p[i] = T(static_cast<compute_t<T>>(affine(low, span, u)));
  }
}

template <class T>
__global__ void normal_kernel(T* p, int64_t n, double mean, double std, double wrap, uint64_t seed, uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double z = backend::normal_at(seed, offset, static_cast<uint64_t>(i));
    if (wrap > 0) z = fmod(z, wrap);
    p[i] = T(static_cast<compute_t<T>>(affine(mean, std, z)));
  }
}

}  // namespace
}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void fill_uniform(const Tensor& t, double low, double high, uint64_t seed, uint64_t offset) {
  const int64_t n = t.numel();
  if (n == 0) return;
  visit_floating(t.dtype(), "uniform_", [&](auto tag) {
    using T = decltype(tag);
    kernels::uniform_kernel<T><<<kernels::grid_for(n), kernels::kThreads, 0, kernels::stream_of(t)>>>(
        t.data<T>(), n, low, high - low, seed, offset);
  });
  kernels::check_launch("uniform_");
}

void fill_normal(const Tensor& t, double mean, double std, double wrap, uint64_t seed, uint64_t offset) {
  const int64_t n = t.numel();
  if (n == 0) return;
  visit_floating(t.dtype(), "normal_", [&](auto tag) {
    using T = decltype(tag);
    kernels::normal_kernel<T><<<kernels::grid_for(n), kernels::kThreads, 0, kernels::stream_of(t)>>>(
        t.data<T>(), n, mean, std, wrap, seed, offset);
  });
  kernels::check_launch("normal_");
}

}  // namespace ponder::backend::cuda
