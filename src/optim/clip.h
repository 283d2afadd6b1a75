// Gradient clipping by the global L2 norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <functional>

#include "tensor/tensor.h"

namespace ponder::optim {

// The clipping of one step, left on the gradients' device: nothing waits for it, so an optimizer
// can fold `factor` into its update (Optimizer::step(grad_scale)) and the host reads the norm only
// when it needs the value.
struct GradClip {
  Tensor sum_squares;  // one f64 element: Σ g² over every gradient (over every shard with sum_shards)
  // One f64 element: max_norm / (norm + 1e-6) when the norm exceeds max_norm, else 1 (a non-finite
  // norm included: the caller skips such a step); undefined when max_norm is infinite (no clipping).
  Tensor factor;
  // sqrt(sum_squares): waits for the reduction.
  double norm() const;
};

// Enqueues the global norm's reduction over every defined .grad of `params` (squares accumulated in
// at least fp32, in a fixed order) and the clip factor. When the gradients are this process's share
// of a sharded set (ZeRO-1), `sum_shards` turns its sum of squares into the sum over every shard (a
// collective, called even with no gradients); it needs the host value, so that path waits for the
// reduction.
GradClip grad_clip(const TensorList& params, double max_norm, const std::function<double(double)>& sum_shards = {});

// Multiplies every defined .grad of `params` in place by `factor` (one f64 element, read on the
// host), one pass per gradient; nothing happens when it is 1. The pass optimizers that cannot take
// the factor in their update need (Optimizer::step).
void scale_gradients(const TensorList& params, const Tensor& factor);

// grad_clip, then scale_gradients: returns the norm; when it exceeds max_norm every gradient has
// been scaled in place by max_norm / (norm + 1e-6). A non-finite norm is returned as is and the
// gradients are left alone, so the caller can skip the step.
double clip_grad_norm(const TensorList& params, double max_norm, const std::function<double(double)>& sum_shards = {});

}  // namespace ponder::optim
