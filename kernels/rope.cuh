// The rotary launcher behind backend/cuda/rope.h, shared with the fused rope_qk
// (kernels/fused.cu). Host-side declaration only; the kernel lives in kernels/rope.cu.
#pragma once

#include "tensor/tensor.h"

namespace ponder::kernels {

// Rotates q [N, Hq, D] into out_q and, when k is defined, k [N, Hk, D] into out_k (all
// contiguous) by the angles of positions (contiguous i64 [N]), negated when `inverse`. Each
// (position, frequency) pair's sine and cosine are computed once for all heads of q and k.
void rotate_qk(const char* op, const Tensor& out_q, const Tensor& q, const Tensor& out_k, const Tensor& k,
               const Tensor& positions, double theta, bool inverse);

}  // namespace ponder::kernels
