#include "models/generate.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "ops/creation.h"

namespace ponder::models {
namespace {

Tensor token_ids(const std::vector<int32_t>& ids, Device device) {
  return tensor(std::vector<double>(ids.begin(), ids.end()), {int64_t(ids.size())},
                {.dtype = DType::i64, .device = device});
}

}  // namespace

Generation generate(LanguageModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                    const std::function<void(int32_t)>& on_token) {
  PONDER_CHECK(!prompt.empty(), ValueError, "generate: the prompt is empty");
  NoGrad no_grad;
  const bool was_training = model.is_training();
  model.train(false);
  Sampler sampler(o.sampling);
  DecodeCache cache(o.prompt_mask);
  Generation out;
  Tensor input = token_ids(prompt, o.device);
  while (int64_t(out.tokens.size()) < o.max_new_tokens) {
    Tensor logits = model.next_token_logits(input, cache);
    if (o.vocab > 0) logits = logits.narrow(-1, 0, std::min(o.vocab, logits.size(-1)));
    const int32_t next = sampler.next(logits);
    if (next == o.eos) {
      out.stopped_at_eos = true;
      break;
    }
    out.tokens.push_back(next);
    if (on_token) on_token(next);
    input = token_ids({next}, o.device);
  }
  model.train(was_training);
  return out;
}

}  // namespace ponder::models
