// CPU random fills over contiguous tensors from the Philox stream (seed, offset): the same
// values as the CUDA kernels, element by element.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

void fill_uniform(const Tensor& t, double low, double high, uint64_t seed, uint64_t offset);
// mean + std * z with z ~ N(0,1); when wrap > 0, z is first replaced by fmod(z, wrap).
void fill_normal(const Tensor& t, double mean, double std, double wrap, uint64_t seed, uint64_t offset);

}  // namespace ponder::backend::cpu
