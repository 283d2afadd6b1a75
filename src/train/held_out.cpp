#include "train/held_out.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "models/decode.h"

namespace ponder::train {

ResponseLoss response_loss(models::LanguageModel& model, const std::vector<data::Sample>& samples, AttentionMask mask,
                           Device device) {
  NoGrad no_grad;
  const bool was_training = model.is_training();
  model.train(false);
  ResponseLoss out;
  const size_t per_batch = 64;  // bounds the logits held at once
  for (size_t i = 0; i < samples.size(); i += per_batch) {
    std::vector<std::vector<data::Sample>> rows;
    int64_t longest = 1;
    for (size_t j = i; j < std::min(samples.size(), i + per_batch); ++j) {
      rows.push_back({samples[j]});
      longest = std::max(longest, samples[j].packed_length());
    }
    const models::PackedBatch b = data::pack_rows(rows, {.row_len = longest, .mask = mask, .loss_on_response_only = true});
    if (b.loss_tokens == 0) continue;
    out.sum += model.loss_sum(models::to_device(b, device)).item<double>();
    out.tokens += b.loss_tokens;
  }
  model.train(was_training);
  return out;
}

std::vector<std::string> greedy_answers(models::LanguageModel& model, const data::Tokenizer& tokenizer,
                                        const std::vector<std::vector<int32_t>>& prompts, int64_t max_new_tokens,
                                        AttentionMask mask, Device device) {
  const models::DecodeOptions o{
      .max_new_tokens = max_new_tokens, .eos = tokenizer.eos(), .mask = mask, .device = device, .vocab = tokenizer.vocab_size()};
  std::vector<std::string> answers;
  for (const std::vector<int32_t>& ids : models::greedy_decode(model, prompts, o)) answers.push_back(tokenizer.decode(ids));
  return answers;
}

}  // namespace ponder::train
