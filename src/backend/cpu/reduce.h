// CPU reductions. `out` is contiguous with x's shape reduced over `dims` (keepdim layout).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend {
enum class ReduceOp : uint8_t { sum, sum_squares, max, argmax };
}

namespace ponder::backend::cpu {

void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const IntVec& dims);

}  // namespace ponder::backend::cpu
