// CUDA twins of backend/cpu/index.h. Both check the index on the device and copy back the first
// bad one (one small host round trip) to throw the CPU's ValueError. index_add sums repeated
// indices in index order in fp32 (f32 and bf16), so it is deterministic.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void index_select(const Tensor& out, const Tensor& x, int dim, const Tensor& index);
void index_add(const Tensor& dst, int dim, const Tensor& index, const Tensor& src);

}  // namespace ponder::backend::cuda
