// CPU kernels of the gated linear scan (ops/scan.h). x, out and grad tensors are contiguous
// [N, D], alpha contiguous [D] of x's dtype, starts contiguous u8 [N] (non-zero: a sample starts).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// out_t = (1 − α) ⊙ x_t + α ⊙ out_{t−1}, with out_{t−1} = 0 where starts[t].
void linear_scan(const Tensor& out, const Tensor& x, const Tensor& alpha, const Tensor& starts);

// The adjoint, a reverse scan: ĝ_t = g_t + α ⊙ ĝ_{t+1} (cut where starts[t+1]);
// grad_x_t = (1 − α) ⊙ ĝ_t and grad_alpha = Σ_t ĝ_t ⊙ (out_{t−1} − x_t), accumulated in the
// compute type. `out` is the forward's result.
void linear_scan_backward(const Tensor& grad_x, const Tensor& grad_alpha, const Tensor& grad, const Tensor& out,
                          const Tensor& x, const Tensor& alpha, const Tensor& starts);

}  // namespace ponder::backend::cpu
