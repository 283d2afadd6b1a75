// Selecting entries along a dimension by a list of indices.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// out[..., j, ...] = x[..., index[j], ...] along `dim`; index is 1-D i32 or i64 with values in
// [0, x.size(dim)) (ValueError otherwise). Any dtype of x; the gradient (floating x) adds the
// output gradient back into the selected positions, repeated indices accumulating.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

}  // namespace ponder
