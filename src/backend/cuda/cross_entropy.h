// CUDA twins of backend/cpu/cross_entropy.h (same semantics, same signatures; dlogits may be
// logits itself). cross_entropy_forward checks the targets on the device first and copies the
// first bad one back: the one host synchronisation of these kernels, so that an out-of-range
// target throws the CPU's ValueError instead of reading outside a row.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets, int64_t ignore_index);
void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                            const Tensor& targets, const Tensor& row_scale, int64_t ignore_index);

}  // namespace ponder::backend::cuda
