// Fused ops: each computes in one kernel (forward and backward) what a chain of simpler ops
// computes, without rounding the intermediate results to the tensors' dtype. All operands share
// a device and a floating dtype.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// silu(gate) * up, the SwiGLU MLP activation; gate and up have the same shape.
Tensor swiglu(const Tensor& gate, const Tensor& up);

// sigmoid(gate_pre) * attn, the gated attention output; gate_pre and attn have the same shape.
Tensor gated_output(const Tensor& gate_pre, const Tensor& attn);

struct AddRmsNorm {
  Tensor sum;     // x + residual, rounded to x's dtype: the new residual stream
  Tensor normed;  // rms_norm(sum, weight, eps)
};
// The pre-norm residual step in one pass: x and residual have the same shape, weight is [D]
// (D = the last dimension) or undefined (none).
AddRmsNorm add_rms_norm(const Tensor& x, const Tensor& residual, const Tensor& weight, double eps);

struct RopeQK {
  Tensor q, k;
};
// rope(q, positions, theta) and rope(k, positions, theta) in one launch: q is [..., Hq, D] and
// k is [..., Hk, D] with the same leading shape (positions' shape) and the same even D.
RopeQK rope_qk(const Tensor& q, const Tensor& k, const Tensor& positions, double theta);

}  // namespace ponder
