// CUDA twins of backend/cpu/embedding.h. ops::embedding checks the ids first (backend/id_check.h);
// when that check is deferred a bad id can reach these kernels, and they stay inside the tables:
// the forward gives its row zeros, the backward adds it nowhere. The backward sums each vocabulary
// row's gradients in increasing position (a stable sort of the ids), so it is deterministic.
// Gradients accumulate in fp32 (f32 and bf16).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void embedding_forward(const Tensor& out, const Tensor& weight, const Tensor& ids);
void embedding_backward(const Tensor& grad_weight, const Tensor& grad, const Tensor& ids);

}  // namespace ponder::backend::cuda
