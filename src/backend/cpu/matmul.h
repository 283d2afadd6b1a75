// CPU matrix products through Eigen. a: [batch..., M, K], b: [batch..., K, N] with the batch
// dims already broadcast to out's (stride-0 views allowed); out: contiguous [batch..., M, N].
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// With `accumulate`, out += a @ b (one rounding of the sum for bf16). out has a's dtype, or f32
// for bf16 operands (gradients summed into an fp32 buffer).
void matmul(const Tensor& out, const Tensor& a, const Tensor& b, bool accumulate = false);

// The dense layer on 2-D operands: out [M, N] (contiguous) = x [M, K] @ weight [N, K]^T + bias [N]
// (bias undefined = none).
void linear(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias);
// Its gradients for the upstream gradient `grad` [M, N]: grad_x = grad @ weight,
// grad_weight = grad^T @ x, grad_bias = the column sums of grad. Each output is contiguous and
// optional (undefined = not wanted). With accumulate_x / accumulate_weight that product is added
// to grad_x / grad_weight instead (which may then be f32 under bf16 operands, as in matmul).
void linear_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                     const Tensor& grad, const Tensor& x, const Tensor& weight, bool accumulate_x = false,
                     bool accumulate_weight = false);
// The weight gradients of linears that share the input x [M, K]: grad_weights[i] [N, K] =
// grads[i]^T @ x for each upstream gradient grads[i] [M, N] (added, with `accumulate`).
void linear_weight_grads(const TensorList& grad_weights, const TensorList& grads, const Tensor& x, bool accumulate);

}  // namespace ponder::backend::cpu
