// CPU matrix products through Eigen. a: [batch..., M, K], b: [batch..., K, N] with the batch
// dims already broadcast to out's (stride-0 views allowed); out: contiguous [batch..., M, N].
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

void matmul(const Tensor& out, const Tensor& a, const Tensor& b);

// The dense layer on 2-D operands: out [M, N] (contiguous) = x [M, K] @ weight [N, K]^T + bias [N]
// (bias undefined = none).
void linear(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias);
// Its gradients for the upstream gradient `grad` [M, N]: grad_x = grad @ weight,
// grad_weight = grad^T @ x, grad_bias = the column sums of grad. Each output is contiguous and
// optional (undefined = not wanted).
void linear_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                     const Tensor& grad, const Tensor& x, const Tensor& weight);

}  // namespace ponder::backend::cpu
