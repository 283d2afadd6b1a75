// CPU softmax kernels. They work on the last dimension of contiguous tensors of one shape
// (a 0-d tensor is one row of one element); the op moves the requested dimension last.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// y = softmax(x), or log_softmax(x) when `log`, along the last dimension.
void softmax_forward(const Tensor& y, const Tensor& x, bool log);
// dx from the forward output y and the upstream gradient g:
// softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g).
void softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& g, bool log);

}  // namespace ponder::backend::cpu
