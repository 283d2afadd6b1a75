// Differentiable views (sharing storage) and copies. Methods of the same names on Tensor
// forward here.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// Reshape; one entry may be -1 (inferred). view() requires a layout that allows it without a
// copy (contiguous), reshape() copies when needed.
Tensor view(const Tensor& x, const Shape& shape);
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& x, const IntVec& order);
// Python-style x[start:end:step] along dim (negative indices count from the end; clamped).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
// Broadcast to `shape` (-1 keeps a size); size-1 dims repeat without copying.
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);

}  // namespace ponder
