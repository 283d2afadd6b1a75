// CUDA twin of backend/cpu/scan.h over f32 and bf16 (float accumulation): one thread per channel
// walks the sequence, so neighbouring threads read neighbouring channels of each position.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void linear_scan(const Tensor& out, const Tensor& x, const Tensor& alpha, const Tensor& starts);
void linear_scan_backward(const Tensor& grad_x, const Tensor& grad_alpha, const Tensor& grad, const Tensor& out,
                          const Tensor& x, const Tensor& alpha, const Tensor& starts);

}  // namespace ponder::backend::cuda
