// CUDA twin of backend/cpu/reduce.h (same semantics, same signature). Results are deterministic:
// every output is combined in a fixed order that depends only on the shapes.
#pragma once

#include "backend/cpu/reduce.h"
#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const IntVec& dims);

}  // namespace ponder::backend::cuda
