// Scoring a model on held-out instruction -> response samples: the loss on the response tokens and
// greedy answers. Shared by the trainer's task evaluation and `ponder eval`.
#pragma once

#include <string>
#include <vector>

#include "data/packing.h"
#include "data/tokenizer.h"
#include "models/language_model.h"

namespace ponder::train {

struct ResponseLoss {
  double sum = 0;       // summed cross-entropy over the response tokens
  int64_t tokens = 0;   // response tokens scored
  double mean() const { return tokens ? sum / double(tokens) : 0.0; }
};

// Every sample once, one per row, with the response (the whole sample for a plain-text one) scored.
ResponseLoss response_loss(models::LanguageModel& model, const std::vector<data::Sample>& samples, AttentionMask mask,
                           Device device);

// The greedy continuation of each prompt (token ids as data::Sample::instruction holds them),
// decoded to text, stopping at eos or after max_new_tokens.
std::vector<std::string> greedy_answers(models::LanguageModel& model, const data::Tokenizer& tokenizer,
                                        const std::vector<std::vector<int32_t>>& prompts, int64_t max_new_tokens,
                                        AttentionMask mask, Device device);

}  // namespace ponder::train
