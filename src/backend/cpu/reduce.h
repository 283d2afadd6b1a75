// CPU reductions. `out` is contiguous with x's shape reduced over `dims` (keepdim layout).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend {
enum class ReduceOp : uint8_t { sum, sum_squares, max, argmax };

// x viewed as [kept dims..., reduced dims...] and made contiguous (a copy unless already so): rows
// of the reduced elements, in the order of `dims`. Shared by the CPU and CUDA kernels.
Tensor reduced_dims_last(const Tensor& x, const IntVec& dims);
}  // namespace ponder::backend

namespace ponder::backend::cpu {

void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const IntVec& dims);

}  // namespace ponder::backend::cpu
