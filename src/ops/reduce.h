// Reductions over any set of dimensions (empty dims = all). Sums accumulate in a wider type.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

Tensor sum(const Tensor& x, const IntVec& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const IntVec& dims = {}, bool keepdim = false);
// Largest value; the gradient is shared equally among tied maxima.
Tensor amax(const Tensor& x, const IntVec& dims = {}, bool keepdim = false);
// Euclidean (L2) norm; the gradient at a zero norm is zero.
Tensor norm(const Tensor& x, const IntVec& dims = {}, bool keepdim = false);
// Index of the largest value along dim (first on ties), i64, no gradient.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace ponder
