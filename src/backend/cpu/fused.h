// CPU kernels of the fused ops (ops/fused.h). Operands are contiguous and share a shape unless
// said otherwise; outputs that are undefined are not computed.
#pragma once

#include "backend/math.h"
#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// out = act(gate) * value with act silu or sigmoid, in the compute type (no intermediate rounding).
void gated_product(UnaryOp act, const Tensor& out, const Tensor& gate, const Tensor& value);
// grad_gate = grad * value * act'(gate), grad_value = grad * act(gate).
void gated_product_backward(UnaryOp act, const Tensor& grad_gate, const Tensor& grad_value, const Tensor& grad,
                            const Tensor& gate, const Tensor& value);

// sum = x + residual (rounded to the dtype), then y and rstd as rms_norm_forward(y, rstd, sum, ...).
void add_rms_norm_forward(const Tensor& sum, const Tensor& y, const Tensor& rstd, const Tensor& x,
                          const Tensor& residual, const Tensor& weight, double eps);
// grad_input = grad_sum + the RMSNorm input gradient of grad_y (the gradient of both x and
// residual); grad_weight as rms_norm_backward. Both gradients of the outputs are defined. `kept` is
// the sum, or with kept_is_output the output y of an unweighted norm (see rms_norm_backward).
void add_rms_norm_backward(const Tensor& grad_input, const Tensor& grad_weight, const Tensor& grad_sum,
                           const Tensor& grad_y, const Tensor& kept, const Tensor& weight, const Tensor& rstd,
                           bool kept_is_output);

// rope (backend/cpu/rope.h) of q into out_q and of k into out_k: q [N, Hq, D], k [N, Hk, D].
void rope_qk(const Tensor& out_q, const Tensor& out_k, const Tensor& q, const Tensor& k, const Tensor& positions,
             double theta, bool inverse);

}  // namespace ponder::backend::cpu
