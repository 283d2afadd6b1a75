// CUDA twins of backend/cpu/cross_entropy.h (same semantics, same signatures; dlogits may be
// logits itself). The ops check the targets first (backend/id_check.h); when that check is
// deferred a bad target can reach these kernels, which then never read outside a row: its loss is
// NaN and its gradient row has no one-hot term.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets, int64_t ignore_index);
void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                            const Tensor& targets, const Tensor& row_scale, int64_t ignore_index);

}  // namespace ponder::backend::cuda
