// CPU rotary position embedding. x and out are contiguous [N, H, D] (any leading shape with N
// elements); positions is contiguous i64 with N elements.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// Rotates each head vector by its position's angles, or by their negatives when `inverse`
// (the backward: the rotation's transpose). Throws ValueError naming a negative position.
void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, bool inverse);

}  // namespace ponder::backend::cpu
