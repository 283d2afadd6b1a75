// CPU matrix products through Eigen. a: [batch..., M, K], b: [batch..., K, N] with the batch
// dims already broadcast to out's (stride-0 views allowed); out: contiguous [batch..., M, N].
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

void matmul(const Tensor& out, const Tensor& a, const Tensor& b);

}  // namespace ponder::backend::cpu
