// CUDA twins of backend/cpu/norm.h: same signatures and semantics over f32 and bf16, except that
// the statistics mean and rstd are contiguous [rows] f32 on the GPU for both dtypes (the CPU keeps
// f64 for f32 inputs); ops allocate them with ops_detail::empty_norm_stats, which knows this.
// A team of threads (a warp, or several) normalises each row, held in registers, with fp32
// statistics; the backward adds the weight and bias gradients in the same pass, deterministically
// (per-block column sums, then a fixed-order sum over the blocks, no atomics).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void rms_norm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight, double eps);
void rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad, const Tensor& x,
                       const Tensor& weight, const Tensor& rstd, bool x_is_output);

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, double eps);
void layer_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias, const Tensor& grad,
                         const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd);

}  // namespace ponder::backend::cuda
