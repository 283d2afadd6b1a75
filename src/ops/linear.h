// The affine map of a dense layer, in the weight layout of torch.nn.Linear.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// x [..., in], weight [out, in], bias [out] (undefined = none) -> x @ weight^T (+ bias), [..., out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

// x [..., in] through several weights [out_i, in] at once: {x @ weight_i^T}, recorded as one node.
// Its backward sums the x gradients of all of them into one buffer and forms the weight gradients
// together (linear_weight_grads: one batched product on the GPU), which is why attention's q/k/v
// and the MLP's gate/up projections use it.
TensorList linear_group(const Tensor& x, const TensorList& weights);

}  // namespace ponder
