// CUDA twins of backend/cpu/softmax.h (same semantics, same signatures): the last dimension of
// contiguous tensors, row statistics in f32 (f64 for f64).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void softmax_forward(const Tensor& y, const Tensor& x, bool log);
void softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& g, bool log);

}  // namespace ponder::backend::cuda
