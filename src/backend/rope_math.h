// The rotary inverse frequencies, shared by the CPU kernel and the host-side table of the CUDA
// kernel, so both devices rotate by the same angles.
#pragma once

#include <cmath>
#include <cstdint>

namespace ponder::backend {

// inv_freq[i] = 1 / theta^(2i/D) with D = 2 * half, in R as transformers computes it (float for
// f32/bf16 inputs).
template <class R>
R rope_inverse_frequency(double theta, int64_t i, int64_t half) {
  return R(1) / std::pow(R(theta), R(2 * i) / R(2 * half));
}

}  // namespace ponder::backend
