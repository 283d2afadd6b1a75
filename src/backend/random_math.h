// Per-element random values shared by the CPU and CUDA fills, so both produce the same bits.
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/philox.h"

namespace ponder::backend {

// Uniform in [0, 1) for element i of the stream.
PONDER_HOST_DEVICE float uniform_at(uint64_t seed, uint64_t offset, uint64_t i) {
  return philox::to_unit(philox::word(seed, offset, i));
}

// Standard normal for element i by Box-Muller over word pairs (w0,w1) and (w2,w3) of a block:
// lane 0/1 take cos/sin of the first pair, lanes 2/3 of the second. Computed in double and
// rounded, so host and device libm differences do not change the float result.
PONDER_HOST_DEVICE float normal_at(uint64_t seed, uint64_t offset, uint64_t i) {
  philox::Words w = philox::block_words(seed, offset + i / 4);
  int lane = static_cast<int>(i % 4);
  uint32_t a = w.w[lane & 2], b = w.w[(lane & 2) + 1];
  double u1 = (static_cast<double>(a >> 8) + 1.0) * (1.0 / 16777216.0);  // (0, 1]
  double u2 = static_cast<double>(b >> 8) * (1.0 / 16777216.0);          // [0, 1)
  double r = sqrt(-2.0 * log(u1));
  double theta = 6.283185307179586476925 * u2;
  return static_cast<float>((lane & 1) ? r * sin(theta) : r * cos(theta));
}

// Dropout keeps element i when its top 24 random bits reach threshold = ceil(p * 2^24), which
// happens with probability 1 - p. The comparison is on integers, so every device agrees exactly.
PONDER_HOST_DEVICE uint32_t dropout_threshold(double p) {
  return static_cast<uint32_t>(ceil(p * 16777216.0));  // exact: p * 2^24 only shifts the exponent
}

// The keep rule on element i's Philox word (kernels that draw whole blocks of four words use it).
PONDER_HOST_DEVICE bool dropout_keep_word(uint32_t word, uint32_t threshold) { return (word >> 8) >= threshold; }

PONDER_HOST_DEVICE bool dropout_keep(uint64_t seed, uint64_t offset, uint64_t i, uint32_t threshold) {
  return dropout_keep_word(philox::word(seed, offset, i), threshold);
}

}  // namespace ponder::backend
