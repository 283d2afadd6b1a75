// Joining tensors along a dimension and splitting them apart again.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// Concatenation along `dim`: every input has the same dtype, device and shape except in `dim`.
Tensor cat(const TensorList& xs, int64_t dim);
// Pieces of `x` along `dim` with the given sizes (which must add up to x.size(dim)); the pieces
// are views of x, each with its own gradient history.
TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
// Equal-shaped tensors joined along a new dimension inserted at `dim`.
Tensor stack(const TensorList& xs, int64_t dim);

}  // namespace ponder
