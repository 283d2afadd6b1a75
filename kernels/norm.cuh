// The normalisation launchers behind backend/cuda/norm.h, shared with the fused add_rms_norm
// (kernels/fused.cu). Host-side declarations only; the kernels live in kernels/norm.cu.
#pragma once

#include "tensor/tensor.h"

namespace ponder::kernels {

// Operands of a normalisation over the last dimension, rows of length D; all contiguous.
// Undefined tensors mean: no mean (RMSNorm), no weight, no bias, no residual.
struct NormForward {
  const char* op;
  Tensor y, mean, rstd;  // outputs; mean and rstd f32 [rows]
  Tensor x;
  Tensor residual, sum;  // when residual is defined: sum = x + residual is written and normalised
  Tensor weight, bias;
  double eps;
};
void norm_forward(const NormForward& a);

struct NormBackward {
  const char* op;
  Tensor grad_x, grad_weight, grad_bias;  // outputs, each undefined when not wanted
  Tensor grad;                            // gradient of y
  Tensor grad_extra;                      // added into grad_x when defined (the sum's gradient)
  Tensor x, weight, mean, rstd;
  bool x_is_xhat = false;  // x holds an unweighted RMSNorm's output, xhat itself, not its input
};
// Throws ValueError for x_is_xhat with a weight or a mean.
void norm_backward(const NormBackward& a);

}  // namespace ponder::kernels
