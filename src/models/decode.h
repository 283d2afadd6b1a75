// Greedy decoding by recomputation: each new token runs the model over the whole sequence so far
// (prompt as the PrefixLM prefix). Simple and exact for short answers (task evaluation); the
// cached generator (models/generate.h) serves long generations.
#pragma once

#include <vector>

#include "models/language_model.h"

namespace ponder::models {

struct DecodeOptions {
  int64_t max_new_tokens = 64;
  int32_t eos = -1;  // stop a sequence when produced (not included in the result)
  AttentionMask mask = AttentionMask::prefix_lm;
  Device device = Device::cpu();
  // Choose among the first `vocab` ids only: a tokenizer's, when the model's vocabulary is padded
  // past it (an untrained model would otherwise pick ids no tokenizer can decode). 0: all.
  int64_t vocab = 0;
};

// Continues every prompt (in one packed batch per step) and returns the generated tokens.
std::vector<std::vector<int32_t>> greedy_decode(LanguageModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                                const DecodeOptions& options);

}  // namespace ponder::models
