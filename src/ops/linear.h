// The affine map of a dense layer, in the weight layout of torch.nn.Linear.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// x [..., in], weight [out, in], bias [out] (undefined = none) -> x @ weight^T (+ bias), [..., out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace ponder
