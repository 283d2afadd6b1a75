// Normalisation over the last dimension, each a single fused op. Statistics are computed in the
// accumulation type: on the CPU double for f32 and float for bf16, on CUDA float for both. An
// undefined weight or bias means none.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// y = x * rsqrt(mean(x^2) + eps) [* weight]; weight has shape [D] (D = x's last dimension).
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps);
// y = (x - mean) * rsqrt(var + eps) [* weight + bias], with the biased variance (as
// torch.nn.LayerNorm); weight and bias have shape [D].
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

}  // namespace ponder
