// CUDA twins of backend/cpu/optim.h: the same signatures and the same per-element math
// (backend/optim_math.h), over f32 master weights and f32 state. Gradients (and the parameters an
// EMA averages) may be f32, bf16 or f64; a parameter with a master is bf16 (its working copy,
// written in the same pass). f64 masters stay on the CPU.
//
// Both devices round the same operations in the same order (no fused multiply-adds), so updates
// are meant to match the CPU's bit for bit, AdamATan2's parameters aside (atan2f differs by ulps).
//
// Every update runs over a table of (tensor, chunk) pairs, so a list of parameters costs one
// launch whatever its length; the single-tensor forms are lists of one. Sums of squares are
// deterministic: fixed chunks summed in double, combined in a fixed order, no atomics.
#pragma once

#include "backend/cpu/optim.h"

namespace ponder::backend::cuda {

void adamw_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const AdamStep& step, const Tensor& grad_scale = {});
void adam_atan2_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                       const Tensor& exp_avg_sq, const AdamStep& step, const Tensor& grad_scale = {});
// Every listed parameter in one launch (all on one device); grad_scale is read by the kernel.
void adamw_update_list(const std::vector<AdamTensors>& tensors, const Tensor& grad_scale = {});
void adam_atan2_update_list(const std::vector<AdamTensors>& tensors, const Tensor& grad_scale = {});
void sgd_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& momentum_buffer,
                const SgdStep& step, const Tensor& grad_scale = {});

void ema_update(const Tensor& shadow, const Tensor& param, double decay);
// Every listed shadow in one launch (all on one device).
void ema_update_list(const TensorList& shadows, const TensorList& params, double decay);

// out: one f64 element on the tensors' device.
void sum_of_squares(const Tensor& out, const Tensor& x);
void sum_of_squares_list(const Tensor& out, const TensorList& xs);
void scale(const Tensor& x, double factor);
// One thread: the host never sees the norm.
void clip_factor(const Tensor& factor, const Tensor& sum_squares, double max_norm);

}  // namespace ponder::backend::cuda
