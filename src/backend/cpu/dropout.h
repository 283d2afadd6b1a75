// CPU inverted dropout from the Philox stream (seed, offset); keeps the same elements as the
// CUDA kernel (the keep rule lives in backend/random_math.h).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// out[i] = dropout_keep(seed, offset, i, ...) ? in[i] / (1 - p) : 0 over contiguous tensors.
// Dropout is a diagonal linear map, so this applies it to x in the forward and to the output
// gradient in the backward, regenerating the same mask.
void dropout(const Tensor& out, const Tensor& in, double p, uint64_t seed, uint64_t offset);

}  // namespace ponder::backend::cpu
