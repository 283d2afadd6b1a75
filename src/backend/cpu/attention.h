// CPU attention kernels over packed samples. All tensors are contiguous; q, out, dq: [N, Hq, D];
// k, v, dk, dv: [N, Hkv, D]; lse: [Hq, N], f64 for f64 inputs and f32 otherwise. `spec` has been
// validated by the op (cu_seqlens and prefix_len readable on the host).
#pragma once

#include "backend/attention_spec.h"
#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// out = softmax(scale * q k^T + mask) v per sample and head; lse = log-sum-exp of each masked score row.
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                       const Tensor& v, const AttentionSpec& spec, double scale);

// Gradients of attention_forward given grad_out, recomputing the probabilities from q, k and lse.
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const AttentionSpec& spec, double scale);

}  // namespace ponder::backend::cpu
