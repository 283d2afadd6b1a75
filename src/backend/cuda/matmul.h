// CUDA twins of backend/cpu/matmul.h (same semantics, same signatures), through cuBLASLt.
// bf16 products accumulate in fp32; f32 products are exact fp32 unless TF32 is allowed. In
// deterministic mode (backend/determinism.h) GEMMs use only algorithms without split-K
// reduction, so a product's summation order along K is the kernel's one-pass order whatever split
// the heuristic would pick for this GPU's SM count.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

// Accumulating products run with beta = 1 (D = A B + D): deterministic, no extra pass.
void matmul(const Tensor& out, const Tensor& a, const Tensor& b, bool accumulate = false);
void linear(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias);
void linear_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                     const Tensor& grad, const Tensor& x, const Tensor& weight, bool accumulate_x = false,
                     bool accumulate_weight = false);
// The weight gradients of linears sharing x, as the CPU twin: one cuBLASLt product in pointer-array
// batch mode when the gradients agree in shape and dtype (a 1536 x 1536 dW alone fills the H100's
// 132 SMs with about one wave of tiles; four of them batched, with over four).
void linear_weight_grads(const TensorList& grad_weights, const TensorList& grads, const Tensor& x, bool accumulate);

// Process-wide: f32 products run on TF32 tensor cores (inputs rounded to 10 mantissa bits, about
// 1e-3 relative error, several times faster). Off by default.
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace ponder::backend::cuda
