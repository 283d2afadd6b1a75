// CPU normalisation kernels over the last dimension. x, grad and the outputs are contiguous
// with x's shape, seen as [rows, D]; weight and bias are contiguous [D] or undefined (none).
// mean and rstd are contiguous [rows] in the accumulation dtype (f64 for f32/f64, f32 for bf16).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

void rms_norm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                      double eps);
// Writes each defined gradient output (grad_x like x, grad_weight like weight). With x_is_output
// (an unweighted norm only), x is the forward's output y = x * rstd instead of its input: the
// gradient needs only y and rstd, so a model can keep the y its next op keeps anyway.
void rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad,
                       const Tensor& x, const Tensor& weight, const Tensor& rstd, bool x_is_output);

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps);
void layer_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad, const Tensor& x, const Tensor& weight,
                         const Tensor& mean, const Tensor& rstd);

}  // namespace ponder::backend::cpu
