// Rotary position embedding in the rotate-half convention (as Llama in HF transformers).
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// x: [..., H, D] with D even; positions: non-negative i32/i64 with x's leading shape (x.shape
// without the last two dims). With inv_freq[i] = 1 / theta^(2i/D) (i < D/2) and
// angle = position * inv_freq[i]:
//   out[..., i] = x_i cos - x_{i+D/2} sin,   out[..., i+D/2] = x_{i+D/2} cos + x_i sin.
// Angles are computed in float for f32/bf16 (exactly as transformers does) and in double for f64.
// On CUDA (f32 and bf16, D up to 1024) negative positions are not reported, to spare a host round trip.
Tensor rope(const Tensor& x, const Tensor& positions, double theta);

}  // namespace ponder
