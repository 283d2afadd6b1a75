// Generation with KV caches: the prompt runs once, as one sample attending by the prompt mask
// (PrefixLM: bidirectionally, as instructions are trained), then every new token runs alone and
// reads the earlier ones from the caches. Tokens are chosen by a Sampler.
#pragma once

#include <functional>
#include <vector>

#include "models/language_model.h"
#include "models/sampling.h"

namespace ponder::models {

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  int32_t eos = -1;  // stops generation when chosen (not part of the result)
  AttentionMask prompt_mask = AttentionMask::prefix_lm;
  SamplingOptions sampling{};
  Device device = Device::cpu();  // the model's
  int64_t vocab = 0;  // choose among the first `vocab` ids only (a tokenizer's, see DecodeOptions); 0: all
};

struct Generation {
  std::vector<int32_t> tokens;
  bool stopped_at_eos = false;  // else it ran out of max_new_tokens
};

// Continues `prompt` (not empty); `on_token` sees each new token as soon as it is chosen.
Generation generate(LanguageModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                    const std::function<void(int32_t)>& on_token = {});

}  // namespace ponder::models
