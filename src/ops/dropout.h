// Inverted dropout driven by a Philox generator, reproducible across devices.
#pragma once

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace ponder {

// Keeps each element with probability 1 - p and scales kept values by 1 / (1 - p). Element i is
// kept iff (philox::word(seed, offset, i) >> 8) >= p * 2^24, where offset is the first of the
// philox::blocks_for(numel) blocks this call reserves from gen: the mask depends only on
// (seed, offset, i), so the CPU and CUDA agree. training == false or p == 0 returns x itself.
// p must lie in [0, 1) (ValueError otherwise); x must be floating.
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);

}  // namespace ponder
