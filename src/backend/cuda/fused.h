// CUDA twins of backend/cpu/fused.h (f32 and bf16), each a single pass over its operands per
// direction. add_rms_norm keeps rstd in f32 as backend/cuda/norm.h; rope_qk computes one sine and
// cosine per (position, frequency) for q and k and does not check positions (as backend/cuda/rope.h).
#pragma once

#include "backend/math.h"
#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void gated_product(UnaryOp act, const Tensor& out, const Tensor& gate, const Tensor& value);
void gated_product_backward(UnaryOp act, const Tensor& grad_gate, const Tensor& grad_value, const Tensor& grad,
                            const Tensor& gate, const Tensor& value);

void add_rms_norm_forward(const Tensor& sum, const Tensor& y, const Tensor& rstd, const Tensor& x,
                          const Tensor& residual, const Tensor& weight, double eps);
void add_rms_norm_backward(const Tensor& grad_input, const Tensor& grad_weight, const Tensor& grad_sum,
                           const Tensor& grad_y, const Tensor& kept, const Tensor& weight, const Tensor& rstd,
                           bool kept_is_output);

void rope_qk(const Tensor& out_q, const Tensor& out_k, const Tensor& q, const Tensor& k, const Tensor& positions,
             double theta, bool inverse);

}  // namespace ponder::backend::cuda
