// CPU embedding kernels. weight and grad_weight are contiguous [V, D]; ids is contiguous i64 with
// N elements; out and grad are contiguous [N..., D].
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// out[n] = weight[ids[n]], ids in [0, V) (ops::embedding checks them first, backend/id_check.h).
void embedding_forward(const Tensor& out, const Tensor& weight, const Tensor& ids);
// grad_weight[v] = sum of grad[n] over the n with ids[n] == v, added in increasing n.
void embedding_backward(const Tensor& grad_weight, const Tensor& grad, const Tensor& ids);

}  // namespace ponder::backend::cpu
