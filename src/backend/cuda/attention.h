// CUDA twins of backend/cpu/attention.h (same signatures and semantics). bf16 runs FlashAttention-2
// style tensor-core kernels for head_dim 64 and 128 (other head dims are refused with a ShapeError
// before anything is launched); f32 runs simple, slower kernels (f64 accumulation, head_dim <= 256).
// Both use O(tokens) memory. f64 has no CUDA kernel (DTypeError).
//
// The contents of cu_seqlens and prefix_len stay on the device: they are not copied back or
// validated here (the batch builder validates them on the host). Kernels clamp every boundary into
// range, so malformed values give wrong results but never out-of-bounds accesses. Grids are sized
// from the token and sample counts (see kernels/attention_common.cuh).
#pragma once

#include "backend/attention_spec.h"
#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                       const Tensor& v, const AttentionSpec& spec, double scale);

// bf16: one kernel computes dk, dv and adds dS K into a temporary f32 dq with atomics (the order of
// the additions, so dq's last bits, varies run to run); in deterministic mode (backend/determinism.h)
// dq and dk/dv come from two kernels that each own their output rows. f32 always runs the two
// simple kernels, which are deterministic.
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const AttentionSpec& spec, double scale);

}  // namespace ponder::backend::cuda
