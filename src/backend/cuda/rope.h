// CUDA twin of backend/cpu/rope.h over f32 and bf16 with head dims up to 1024. The inverse
// frequencies are computed on the host exactly as the CPU kernel computes them (float pow), and
// the angles in float on the device, so both agree to a few float ulps. Unlike the CPU kernel,
// this one does not check that positions are non-negative (that would need a host round trip per
// call); a negative position rotates by a negative angle, touching no memory out of bounds.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, bool inverse);

}  // namespace ponder::backend::cuda
