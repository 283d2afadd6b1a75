// Moving between dtypes and devices (differentiable: the gradient goes back the same way).
#pragma once

#include "tensor/tensor.h"

namespace ponder {

Tensor to_dtype(const Tensor& x, DType dtype);
Tensor to_device(const Tensor& x, Device device);

}  // namespace ponder
