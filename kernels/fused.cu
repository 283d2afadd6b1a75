// Fused kernels on the GPU: gated products (SwiGLU, gated attention output) forward through the
// vectorised elementwise map and backward in one kernel with two outputs; add_rms_norm and
// rope_qk through the norm and rotary launchers with their fused operands.
#include "backend/cuda/fused.h"
#include "kernels/norm.cuh"
#include "kernels/rope.cuh"
#include "kernels/row_groups.cuh"

namespace ponder::kernels {
namespace {
using backend::UnaryOp;

void check_activation(UnaryOp act) {
  PONDER_CHECK(act == UnaryOp::silu || act == UnaryOp::sigmoid, ValueError,
               "gated_product: the activation must be silu or sigmoid, got ", unary_name(act));
}

// The gate's activation f (silu or sigmoid) as a template argument, so the kernels carry no
// per-element switch; both come from one exponential and one reciprocal, the backward's
// f(g) and f'(g) together (a general unary op would compute the sigmoid twice).
template <UnaryOp ACT>
struct Gate {
  __device__ __forceinline__ static float value(float g) {
    const float s = __frcp_rn(1.f + expf(-g));
    return ACT == UnaryOp::silu ? g * s : s;
  }
  __device__ __forceinline__ static void value_and_slope(float g, float& f, float& slope) {
    const float s = __frcp_rn(1.f + expf(-g));
    f = ACT == UnaryOp::silu ? g * s : s;
    slope = ACT == UnaryOp::silu ? s * (1.f + g * (1.f - s)) : s * (1.f - s);
  }
};

// Calls fn(Gate<ACT>{}) for the activation act names.
template <class Fn>
void with_gate(UnaryOp act, Fn&& fn) {
  check_activation(act);
  if (act == UnaryOp::silu) fn(Gate<UnaryOp::silu>{});
  else fn(Gate<UnaryOp::sigmoid>{});
}

template <class T, class F>
struct GatedForward {
  __device__ float operator()(T gate, T value) const { return F::value(float(gate)) * float(value); }
};

template <class T>
struct GatedBackwardArgs {
  const T* grad;
  const T* gate;
  const T* value;
  T* grad_gate;   // or null
  T* grad_value;  // or null

  // The same operands from element k on.
  GatedBackwardArgs from(int64_t k) const {
    return {grad + k, gate + k, value + k, grad_gate ? grad_gate + k : nullptr, grad_value ? grad_value + k : nullptr};
  }
};

template <class T, int V, class F>
__global__ void gated_backward_kernel(int64_t packs, GatedBackwardArgs<T> a) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
    Pack<T, V> dy = load_pack<V>(a.grad, p), g = load_pack<V>(a.gate, p), v = load_pack<V>(a.value, p), dg, dv;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float f, slope;
      F::value_and_slope(float(g.v[j]), f, slope);
      dg.v[j] = T(float(dy.v[j]) * float(v.v[j]) * slope);
      dv.v[j] = T(float(dy.v[j]) * f);
    }
    if (a.grad_gate) store_pack<V>(a.grad_gate, p, dg);
    if (a.grad_value) store_pack<V>(a.grad_value, p, dv);
  }
}

}  // namespace
}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void gated_product(UnaryOp act, const Tensor& out, const Tensor& gate, const Tensor& value) {
  kernels::with_gate(act, [&](auto gate_fn) {
    kernels::visit_f32_bf16(gate.dtype(), "gated_product", [&](auto tag) {
      using T = decltype(tag);
      kernels::map<T, T, T>("gated_product", out, kernels::GatedForward<T, decltype(gate_fn)>{}, gate, value);
    });
  });
}

// Whole packs first, then the elements past the last whole pack (or all of them when misaligned).
void gated_product_backward(UnaryOp act, const Tensor& grad_gate, const Tensor& grad_value, const Tensor& grad,
                            const Tensor& gate, const Tensor& value) {
  const int64_t n = gate.numel();
  if (n == 0) return;
  kernels::with_gate(act, [&](auto gate_fn) {
    using F = decltype(gate_fn);
    kernels::visit_f32_bf16(gate.dtype(), "gated_product", [&](auto tag) {
      using T = decltype(tag);
      constexpr int V = kernels::kPack<T>;
      const kernels::GatedBackwardArgs<T> args{grad.data<T>(), gate.data<T>(), value.data<T>(),
                                               kernels::data_or_null<T>(grad_gate),
                                               kernels::data_or_null<T>(grad_value)};
      const bool aligned = kernels::aligned16(grad) && kernels::aligned16(gate) && kernels::aligned16(value) &&
                           kernels::aligned16(grad_gate) && kernels::aligned16(grad_value);
      const int64_t packs = aligned ? n / V : 0, rest = n - packs * V;
      cudaStream_t stream = kernels::stream_of(gate);
      if (packs > 0) {
        kernels::gated_backward_kernel<T, V, F>
            <<<kernels::grid_for(packs), kernels::kThreads, 0, stream>>>(packs, args);
      }
      if (rest > 0) {
        kernels::gated_backward_kernel<T, 1, F>
            <<<kernels::grid_for(rest), kernels::kThreads, 0, stream>>>(rest, args.from(packs * V));
      }
    });
  });
  kernels::check_launch("gated_product");
}

void add_rms_norm_forward(const Tensor& sum, const Tensor& y, const Tensor& rstd, const Tensor& x,
                          const Tensor& residual, const Tensor& weight, double eps) {
  kernels::norm_forward({"add_rms_norm", y, Tensor(), rstd, x, residual, sum, weight, Tensor(), eps});
}

void add_rms_norm_backward(const Tensor& grad_input, const Tensor& grad_weight, const Tensor& grad_sum,
                           const Tensor& grad_y, const Tensor& kept, const Tensor& weight, const Tensor& rstd,
                           bool kept_is_output) {
  kernels::norm_backward({"add_rms_norm", grad_input, grad_weight, Tensor(), grad_y, grad_sum, kept, weight, Tensor(),
                          rstd, kept_is_output});
}

void rope_qk(const Tensor& out_q, const Tensor& out_k, const Tensor& q, const Tensor& k, const Tensor& positions,
             double theta, bool inverse) {
  kernels::rotate_qk("rope_qk", out_q, q, out_k, k, positions, theta, inverse);
}

}  // namespace ponder::backend::cuda
