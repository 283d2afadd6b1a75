// Cross-entropy of a language-model head, fused so that the [tokens, vocabulary] logits never
// exist for the whole batch at once.
#pragma once

#include "ops/loss.h"
#include "tensor/tensor.h"

namespace ponder {

// The value and gradients of cross_entropy(linear(hidden, weight), targets, ignore_index,
// reduction) for hidden [..., d], weight [V, d] and targets [...] (i64 or i32); reduction sum or
// mean. Tokens go through chunk_tokens at a time: a chunk's logits h_c · Wᵀ give its losses and,
// overwriting them, its logits gradient (softmax - onehot, scaled for the reduction), from which
// the forward already forms dh_c = dlogits_c · W and adds dlogits_cᵀ · h_c into dW (one GEMM each,
// the second summing in place); backward only scales dh and dW by the upstream gradient, adding dW
// straight into the weight's fp32 .grad when the engine offers it (one pass, no scaled copy). Extra
// memory at any time: one chunk of logits in hidden's dtype, per-token f32 statistics (f64 for
// f64), dh, and dW in f32 for a bf16 weight. Chunks of 1,024 tokens: at the XL shape (65,536 x
// 1,536 head) a chunk's logits are 128 MiB, and the training step ran as fast as with 4,096 (H100).
// Models train through it (models::LanguageModel::loss_sum). Targets are checked up front on the
// host (one copy from the device); on the GPU the cross-entropy kernel's own target check also
// waits for the device once per chunk.
inline constexpr int64_t kLmHeadChunkTokens = 1024;
Tensor lm_head_cross_entropy(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                             int64_t ignore_index = kIgnoreIndex, Reduction reduction = Reduction::mean,
                             int64_t chunk_tokens = kLmHeadChunkTokens);

}  // namespace ponder
