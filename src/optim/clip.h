// Gradient clipping by the global L2 norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <functional>

#include "tensor/tensor.h"

namespace ponder::optim {

// The L2 norm over every defined .grad of `params` (squares accumulated in at least fp32, in a
// fixed order). When it exceeds max_norm, every gradient is scaled in place by
// max_norm / (norm + 1e-6). A non-finite norm is returned as is and the gradients are left alone,
// so the caller can skip the step.
// When the gradients are this process's share of a sharded set (ZeRO-1), `sum_shards` turns its
// sum of squares into the sum over every shard (a collective, called even with no gradients).
double clip_grad_norm(const TensorList& params, double max_norm, const std::function<double(double)>& sum_shards = {});

}  // namespace ponder::optim
