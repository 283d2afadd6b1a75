#include "backend/cpu/fused.h"

#include "backend/cpu/elementwise.h"
#include "backend/cpu/norm.h"
#include "backend/cpu/rope.h"
#include "backend/cpu/strided_loop.h"

namespace ponder::backend::cpu {

void gated_product(UnaryOp act, const Tensor& out, const Tensor& gate, const Tensor& value) {
  visit_floating(gate.dtype(), "gated_product", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* g = gate.data<T>();
    const T* v = value.data<T>();
    T* o = out.data<T>();
    const int64_t n = gate.numel();
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) o[i] = T(unary_forward<C>(act, C(g[i]), C(0)) * C(v[i]));
  });
}

void gated_product_backward(UnaryOp act, const Tensor& grad_gate, const Tensor& grad_value, const Tensor& grad,
                            const Tensor& gate, const Tensor& value) {
  visit_floating(gate.dtype(), "gated_product", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* g = gate.data<T>();
    const T* v = value.data<T>();
    const T* dy = grad.data<T>();
    T* dg = grad_gate.defined() ? grad_gate.data<T>() : nullptr;
    T* dv = grad_value.defined() ? grad_value.data<T>() : nullptr;
    const int64_t n = gate.numel();
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      if (dg) dg[i] = T(unary_backward<C>(act, C(g[i]), C(dy[i]) * C(v[i]), C(0)));
      if (dv) dv[i] = T(C(dy[i]) * unary_forward<C>(act, C(g[i]), C(0)));
    }
  });
}

// The CPU composes the unfused kernels: it is the reference the fused CUDA kernels are checked against.
void add_rms_norm_forward(const Tensor& sum, const Tensor& y, const Tensor& rstd, const Tensor& x,
                          const Tensor& residual, const Tensor& weight, double eps) {
  binary(BinaryOp::add, sum, x, residual);
  rms_norm_forward(y, rstd, sum, weight, eps);
}

void add_rms_norm_backward(const Tensor& grad_input, const Tensor& grad_weight, const Tensor& grad_sum,
                           const Tensor& grad_y, const Tensor& kept, const Tensor& weight, const Tensor& rstd,
                           bool kept_is_output) {
  rms_norm_backward(grad_input, grad_weight, grad_y, kept, weight, rstd, kept_is_output);
  if (grad_input.defined()) add_into(grad_input, grad_sum);
}

void rope_qk(const Tensor& out_q, const Tensor& out_k, const Tensor& q, const Tensor& k, const Tensor& positions,
             double theta, bool inverse) {
  rope(out_q, q, positions, theta, inverse);
  rope(out_k, k, positions, theta, inverse);
}

}  // namespace ponder::backend::cpu
