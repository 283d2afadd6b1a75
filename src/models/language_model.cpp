#include "models/language_model.h"

#include "ops/creation.h"
#include "ops/lm_head_loss.h"
#include "ops/loss.h"

namespace ponder::models {

Tensor LanguageModel::loss_sum(const PackedBatch& batch) {
  const Tensor f = features(batch), weight = head_weight();
  if (!weight.defined()) return cross_entropy(head(f), batch.labels, kIgnoreIndex, Reduction::sum);
  return lm_head_cross_entropy(f, weight, batch.labels, kIgnoreIndex, Reduction::sum);
}

Tensor LanguageModel::next_token_logits(const Tensor& /*tokens*/, DecodeCache& /*cache*/) {
  fail<ValueError>(family(), ": this model family has no KV-cache decoding");
}

void LanguageModel::set_eval_depth(const std::string& label) {
  PONDER_CHECK(label.empty(), ValueError, family(), ": no evaluation depth '", label,
               "' (this family is evaluated only at its trained depth)");
}

CachedStep begin_cached_step(const Tensor& tokens, DecodeCache& cache, int64_t attention_calls) {
  PONDER_CHECK(tokens.dim() == 1 && tokens.numel() > 0, ShapeError, "decoding: tokens must be a non-empty [n], got ",
               describe(tokens));
  const int64_t n = tokens.size(0);
  const TensorOptions on_device{.dtype = DType::i32, .device = tokens.device()};
  CachedStep step;
  step.positions = arange(cache.length, cache.length + n, 1, {.dtype = DType::i64, .device = tokens.device()});
  if (cache.length == 0) {
    PONDER_CHECK(cache.prompt_mask != AttentionMask::bidirectional, ValueError,
                 "decoding: the prompt attends by prefix_lm or causal masks; a bidirectional model cannot generate");
    cache.attention.assign(static_cast<size_t>(attention_calls), nn::KVCache{});
    step.spec.mask = cache.prompt_mask;
    step.spec.cu_seqlens = tensor({0, double(n)}, {2}, on_device);
    if (cache.prompt_mask == AttentionMask::prefix_lm) step.spec.prefix_len = tensor({double(n)}, {1}, on_device);
  } else {
    PONDER_CHECK(n == 1, ValueError, "decoding: after the prompt, tokens come one at a time, got ", n);
  }
  cache.length += n;
  return step;
}

}  // namespace ponder::models
