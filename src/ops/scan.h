// The gated linear scan that streams a state along packed sequences (SST's two-pass training):
//   y_t = (1 − α) ⊙ x_t + α ⊙ y_{t−1},  y_{t−1} = 0 where a sample starts.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// x [N, D] (floating), alpha [D] of x's dtype, starts [N] (u8 or i64; non-zero marks the first
// position of a sample, where the scan restarts from zero) -> [N, D]. Differentiable in x and
// alpha. CUDA: f32 and bf16.
Tensor linear_scan(const Tensor& x, const Tensor& alpha, const Tensor& starts);

}  // namespace ponder
