// The gated linear scan on the GPU (ops/scan.h): channels are independent recurrences, so each
// thread owns one channel and walks the positions in order, exactly as the CPU kernel does.
#include "backend/cuda/scan.h"
#include "kernels/common.cuh"
#include "kernels/row_groups.cuh"

namespace ponder::kernels {
namespace {

template <class T>
__global__ void scan_kernel(T* out, const T* x, const T* alpha, const uint8_t* starts, int64_t n, int64_t d) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= d) return;
  const float a = float(alpha[c]);
  float carry = 0.f;
  for (int64_t t = 0; t < n; ++t) {
    if (starts[t]) carry = 0.f;
    carry = (1.f - a) * float(x[t * d + c]) + a * carry;
    out[t * d + c] = T(carry);
  }
}

template <class T>
__global__ void scan_backward_kernel(T* grad_x, T* grad_alpha, const T* grad, const T* out, const T* x,
                                     const T* alpha, const uint8_t* starts, int64_t n, int64_t d) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= d) return;
  const float a = float(alpha[c]);
  float carry = 0.f, ga = 0.f;
  for (int64_t t = n - 1; t >= 0; --t) {
    if (t + 1 < n && starts[t + 1]) carry = 0.f;
    carry = float(grad[t * d + c]) + a * carry;
    grad_x[t * d + c] = T((1.f - a) * carry);
    const float previous = starts[t] || t == 0 ? 0.f : float(out[(t - 1) * d + c]);
    ga += carry * (previous - float(x[t * d + c]));
  }
  grad_alpha[c] = T(ga);
}

unsigned channel_blocks(int64_t d) { return static_cast<unsigned>((d + kThreads - 1) / kThreads); }

}  // namespace
}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void linear_scan(const Tensor& out, const Tensor& x, const Tensor& alpha, const Tensor& starts) {
  const int64_t n = x.size(0), d = x.size(1);
  if (n * d == 0) return;
  kernels::visit_f32_bf16(x.dtype(), "linear_scan", [&](auto tag) {
    using T = decltype(tag);
    kernels::scan_kernel<T><<<kernels::channel_blocks(d), kernels::kThreads, 0, kernels::stream_of(x)>>>(
        out.data<T>(), x.data<T>(), alpha.data<T>(), starts.data<uint8_t>(), n, d);
  });
  kernels::check_launch("linear_scan");
}

void linear_scan_backward(const Tensor& grad_x, const Tensor& grad_alpha, const Tensor& grad, const Tensor& out,
                          const Tensor& x, const Tensor& alpha, const Tensor& starts) {
  const int64_t n = x.size(0), d = x.size(1);
  if (n * d == 0) return;
  kernels::visit_f32_bf16(x.dtype(), "linear_scan", [&](auto tag) {
    using T = decltype(tag);
    kernels::scan_backward_kernel<T><<<kernels::channel_blocks(d), kernels::kThreads, 0, kernels::stream_of(x)>>>(
        grad_x.data<T>(), grad_alpha.data<T>(), grad.data<T>(), out.data<T>(), x.data<T>(), alpha.data<T>(),
        starts.data<uint8_t>(), n, d);
  });
  kernels::check_launch("linear_scan");
}

}  // namespace ponder::backend::cuda
