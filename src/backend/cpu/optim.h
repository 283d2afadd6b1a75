// CPU optimizer kernels: one pass over one tensor each, math in the master weights' type
// (f32; f64 when the parameter is f64), per element as backend/optim_math.h says. The CUDA twins
// (backend/cuda/optim.h) keep these signatures; the *_list forms are what optimizers call, so the
// GPU can update every parameter (or sum every gradient) in one launch.
//
// `master` holds the master weights of a low-precision (bf16) `param`: the kernel updates the master
// and writes it back into `param`, rounded, in the same pass. When `master` is undefined, `param`
// (f32 or f64) is its own master. Gradients may have any floating dtype; state buffers have the
// master's dtype. All tensors are contiguous and have the same number of elements.
//
// `grad_scale`, where an update takes one, is one f64 element on the tensors' device (undefined:
// no scaling) that multiplies every gradient as the update reads it: the clip factor folded into
// the update, so clipping needs no pass of its own and the host never reads the norm for it.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/optim_math.h"
#include "tensor/tensor.h"

namespace ponder::backend {

// One parameter's operands of a fused Adam-family update (the single-tensor kernels' arguments).
struct AdamTensors {
  Tensor param, master, grad, exp_avg, exp_avg_sq;
  AdamStep step;
};

}  // namespace ponder::backend

namespace ponder::backend::cpu {

// torch.optim.AdamW: θ ← θ(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
// θ ← θ − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps).
void adamw_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const AdamStep& step, const Tensor& grad_scale = {});
// AdamATan2 (HRM): as AdamW without eps, the ratio replaced by a bounded atan2:
// θ ← θ − lr/(1−β1^t) · atan2(m, sqrt(v)/sqrt(1−β2^t)).
void adam_atan2_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                       const Tensor& exp_avg_sq, const AdamStep& step, const Tensor& grad_scale = {});
// The same update of every listed parameter (each with its own step), one tensor after another.
void adamw_update_list(const std::vector<AdamTensors>& tensors, const Tensor& grad_scale = {});
void adam_atan2_update_list(const std::vector<AdamTensors>& tensors, const Tensor& grad_scale = {});
// torch.optim.SGD: d = g + wd·θ; with momentum, b ← first ? d : μ·b + (1−dampening)·d and
// d = nesterov ? d + μ·b : b; θ ← θ − lr·d. `momentum_buffer` is undefined when momentum is 0.
void sgd_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& momentum_buffer,
                const SgdStep& step, const Tensor& grad_scale = {});
// Refuses a grad_scale that is not one f64 element on `device` (an undefined one is fine).
void check_grad_scale(const char* kernel, const Tensor& grad_scale, Device device);

// shadow ← decay·shadow + (1−decay)·param (shadow f32 or f64, param any floating dtype).
void ema_update(const Tensor& shadow, const Tensor& param, double decay);
// Every listed shadow in one launch (all on one device).
void ema_update_list(const TensorList& shadows, const TensorList& params, double decay);

// out (one f64 element) = Σ x², accumulated in double in a fixed order (the same result for any
// thread count).
void sum_of_squares(const Tensor& out, const Tensor& x);
// out (one f64 element) = Σ over the tensors of their sums of squares, added in list order.
void sum_of_squares_list(const Tensor& out, const TensorList& xs);
// x ← factor·x in place.
void scale(const Tensor& x, double factor);
// factor (one f64 element) = clip_factor_of(sum_squares, max_norm) (backend/optim_math.h), from
// sum_squares (one f64 element, as sum_of_squares_list writes it).
void clip_factor(const Tensor& factor, const Tensor& sum_squares, double max_norm);

}  // namespace ponder::backend::cpu
