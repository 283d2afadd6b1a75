// CUDA twin of backend/cpu/dropout.h: the same mask bit for bit (backend/random_math.h) and the
// same scaled values (one float multiply) for f32, bf16 and f64.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void dropout(const Tensor& out, const Tensor& in, double p, uint64_t seed, uint64_t offset);

}  // namespace ponder::backend::cuda
