// Matrix products with NumPy semantics: [..., M, K] @ [..., K, N] -> [..., M, N], batch dims
// broadcast; a 1-D operand is treated as a row (left) or column (right) vector.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace ponder
