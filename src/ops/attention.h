// Scaled dot-product attention over packed variable-length rows (all samples of a batch
// flattened into one token axis, split by cumulative sequence lengths).
#pragma once

#include "backend/attention_spec.h"
#include "tensor/tensor.h"

namespace ponder {

// q: [N, Hq, D]; k, v: [N, Hkv, D] with Hq a multiple of Hkv (grouped-query attention: query head h uses
// kv head h / (Hq/Hkv)); scale multiplies q.k (usually 1/sqrt(D)). Returns [N, Hq, D].
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec, double scale);

// attention(rope(q), rope(k), v) as one op: q and k rotated by `positions` as rope_qk rotates them
// (theta > 0), the rotated copies kept for the backward, which returns the gradients of q and k
// before the rotation. One autograd node where rope_qk and attention make two.
Tensor rotary_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions, double theta,
                        const AttentionSpec& spec, double scale);

}  // namespace ponder
