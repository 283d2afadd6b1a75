// CUDA twins of backend/cpu/random.h over f32, bf16 and f64: element i gets the CPU's value (the
// math is backend/random_math.h, done in double and rounded). Uniform values are identical in
// every dtype; normal values are identical in f32 and bf16, while in f64 they may differ in the
// last bit, since the device's double log/sin/cos may round differently from the host's.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void fill_uniform(const Tensor& t, double low, double high, uint64_t seed, uint64_t offset);
void fill_normal(const Tensor& t, double mean, double std, double wrap, uint64_t seed, uint64_t offset);

}  // namespace ponder::backend::cuda
