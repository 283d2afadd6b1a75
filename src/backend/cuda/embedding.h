// CUDA twins of backend/cpu/embedding.h. The forward checks the ids first (one small host round
// trip) and throws the CPU's ValueError; the backward, fed the ids the forward checked, sums each
// vocabulary row's gradients in increasing position (a stable sort of the ids), so it is
// deterministic. Gradients accumulate in fp32 (f32 and bf16).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void embedding_forward(const Tensor& out, const Tensor& weight, const Tensor& ids);
void embedding_backward(const Tensor& grad_weight, const Tensor& grad, const Tensor& ids);

}  // namespace ponder::backend::cuda
