#include "backend/cpu/scan.h"

#include "backend/cpu/strided_loop.h"

namespace ponder::backend::cpu {
namespace {

// Channels are independent recurrences, so threads split the D columns.
template <class T>
void scan_columns(T* out, const T* x, const T* alpha, const uint8_t* starts, int64_t n, int64_t d) {
  using R = compute_t<T>;
#pragma omp parallel for schedule(static) if (n * d > kParallelGrain && d > 1)
  for (int64_t c = 0; c < d; ++c) {
    const R a = R(alpha[c]);
    R carry = 0;
    for (int64_t t = 0; t < n; ++t) {
      if (starts[t]) carry = 0;
      carry = (R(1) - a) * R(x[t * d + c]) + a * carry;
      out[t * d + c] = T(carry);
    }
  }
}

template <class T>
void scan_columns_backward(T* grad_x, T* grad_alpha, const T* grad, const T* out, const T* x, const T* alpha,
                           const uint8_t* starts, int64_t n, int64_t d) {
  using R = compute_t<T>;
#pragma omp parallel for schedule(static) if (n * d > kParallelGrain && d > 1)
  for (int64_t c = 0; c < d; ++c) {
    const R a = R(alpha[c]);
    R carry = 0, ga = 0;
    for (int64_t t = n - 1; t >= 0; --t) {
      if (t + 1 < n && starts[t + 1]) carry = 0;
      carry = R(grad[t * d + c]) + a * carry;
      grad_x[t * d + c] = T((R(1) - a) * carry);
      const R previous = starts[t] || t == 0 ? R(0) : R(out[(t - 1) * d + c]);
      ga += carry * (previous - R(x[t * d + c]));
    }
    grad_alpha[c] = T(ga);
  }
}

}  // namespace

void linear_scan(const Tensor& out, const Tensor& x, const Tensor& alpha, const Tensor& starts) {
  visit_floating(x.dtype(), "linear_scan", [&](auto tag) {
    using T = decltype(tag);
    scan_columns<T>(out.data<T>(), x.data<T>(), alpha.data<T>(), starts.data<uint8_t>(), x.size(0), x.size(1));
  });
}

void linear_scan_backward(const Tensor& grad_x, const Tensor& grad_alpha, const Tensor& grad, const Tensor& out,
                          const Tensor& x, const Tensor& alpha, const Tensor& starts) {
  visit_floating(x.dtype(), "linear_scan", [&](auto tag) {
    using T = decltype(tag);
    scan_columns_backward<T>(grad_x.data<T>(), grad_alpha.data<T>(), grad.data<T>(), out.data<T>(), x.data<T>(),
                             alpha.data<T>(), starts.data<uint8_t>(), x.size(0), x.size(1));
  });
}

}  // namespace ponder::backend::cpu
