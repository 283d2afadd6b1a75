// What every model family offers the trainer: a pure function from a packed batch to the summed
// next-token loss (the trainer divides by the number of loss tokens of the whole step, across
// micro-batches and ranks, so the mean is exact), plus the logits for evaluation and generation.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/batch.h"
#include "nn/kv_cache.h"
#include "nn/module.h"

namespace ponder::models {

// One sequence being generated: how many tokens the model has run and the KV cache of every
// attention call, in the order the forward makes the calls (the model sizes it on the prompt).
struct DecodeCache {
  explicit DecodeCache(AttentionMask prompt_mask = AttentionMask::prefix_lm) : prompt_mask(prompt_mask) {}
  // How the prompt attends within itself: prefix_lm (bidirectionally, as instruction tokens are
  // trained) or causal. Every later token attends causally.
  AttentionMask prompt_mask;
  int64_t length = 0;
  std::vector<nn::KVCache> attention;
  // Families without a KV cache re-run the whole sequence instead (attractor): every token so far,
  // and how many of them are the prompt.
  Tensor tokens;
  int64_t prompt_length = 0;
  // Recurrent per-layer states carried from one token to the next (SST), sized on the prompt.
  std::vector<Tensor> states;
};

// A depth a model can be evaluated at besides the one it was trained at (test-time compute):
// HRM-Text's H/L cycles, the attractor head's solver iterations, SST's deliberation steps.
struct EvalDepth {
  std::string label;    // shown in eval tables and JSON, and passed back to set_eval_depth
  double compute = 1;   // forward cost relative to the trained depth (the x-axis of the curve)
};

class LanguageModel : public nn::Module {
 public:
  virtual std::string family() const = 0;
  // [N, vocab] next-token logits: head(features(batch)).
  Tensor logits(const PackedBatch& batch) { return head(features(batch)); }
  // Sum over the batch's loss tokens of the cross-entropy (0-d, f32; f64 for an f64 model). A
  // plain head (head_weight() defined) is fused into the loss (lm_head_cross_entropy), which holds
  // one chunk of logits at a time instead of all [N, vocab] of them and their gradient.
  Tensor loss_sum(const PackedBatch& batch);
  // [N, d]: what the LM head reads for the batch.
  virtual Tensor features(const PackedBatch& batch) = 0;
  // The LM head: [..., d] -> [..., vocab].
  virtual Tensor head(const Tensor& features) const = 0;
  // Its weight [vocab, d] when head(f) is exactly linear(f, weight), else undefined.
  virtual Tensor head_weight() const { return {}; }
  // Called by the trainer before each optimizer step, for schedules that live inside a model
  // (HRM-Text's backprop depth).
  virtual void begin_step(int64_t /*step*/, int64_t /*total_steps*/) {}
  // Incremental decoding of one sequence: `tokens` (i64 [n], on the model's device) continue the
  // sequence `cache` holds, and the result is the [1, vocab] logits after the last of them. The
  // first call runs the whole prompt as one sample, later calls one token each, which reaches the
  // earlier ones through the cache. Equal to the last row of `logits` over the whole sequence with
  // the prompt as its prefix. Inference only. Families without KV caches refuse (ValueError).
  virtual Tensor next_token_logits(const Tensor& tokens, DecodeCache& cache);
  // The depths `ponder eval` sweeps, cheapest first (none by default).
  virtual std::vector<EvalDepth> eval_depths() const { return {}; }
  // Later logits/next_token_logits calls run at one of eval_depths()' labels; "" restores the
  // trained depth. Unknown labels are a ValueError.
  virtual void set_eval_depth(const std::string& label);
  // What, besides the batch's shapes, decides the kernels a training micro-step queues, for
  // replaying it from a CUDA graph (train/step_graphs.h); nullopt for a family whose step reads
  // values back to the host (the attractor's solver, SST's sample walk) and cannot be recorded.
  virtual std::optional<int64_t> step_variant() const { return std::nullopt; }
  // Family-specific numbers (solver iterations, residuals...) that the trainer adds to each logged
  // step: the family accumulates them over the steps since the last call, which resets them.
  virtual std::map<std::string, double> take_step_metrics() { return {}; }
};

// What a family's next_token_logits feeds its layers for `tokens` continuing `cache`: positions
// after the cached ones, and for the prompt one sample attending by cache.prompt_mask (later
// tokens need no spec: the cache holds their context). Sizes cache.attention to
// `attention_calls` on the prompt and advances cache.length.
struct CachedStep {
  Tensor positions;
  AttentionSpec spec;
};
CachedStep begin_cached_step(const Tensor& tokens, DecodeCache& cache, int64_t attention_calls);

}  // namespace ponder::models
