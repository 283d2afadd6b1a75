#include "models/decode.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/reduce.h"

namespace ponder::models {
namespace {

// One packed batch holding each sequence as a sample; `last` gets the index of each sample's last token.
PackedBatch batch_of(const std::vector<std::vector<int32_t>>& seqs, const std::vector<int64_t>& prefix,
                     const DecodeOptions& o, std::vector<double>& last) {
  std::vector<double> tokens, positions, cu{0}, prefix_len;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (size_t i = 0; i < seqs[s].size(); ++i) {
      tokens.push_back(seqs[s][i]);
      positions.push_back(double(i));
    }
    cu.push_back(cu.back() + double(seqs[s].size()));
    prefix_len.push_back(double(prefix[s]));
    last.push_back(cu.back() - 1);
  }
  const int64_t n = int64_t(tokens.size()), samples = int64_t(seqs.size());
  PackedBatch b;
  b.tokens = tensor(tokens, {n}, {.dtype = DType::i64, .device = o.device});
  b.positions = tensor(positions, {n}, {.dtype = DType::i64, .device = o.device});
  b.attn.mask = o.mask;
  b.attn.cu_seqlens = tensor(cu, {samples + 1}, {.dtype = DType::i32, .device = o.device});
  if (o.mask == AttentionMask::prefix_lm)
    b.attn.prefix_len = tensor(prefix_len, {samples}, {.dtype = DType::i32, .device = o.device});
  b.rows = 1;
  b.row_len = n;
  return b;
}

}  // namespace

std::vector<std::vector<int32_t>> greedy_decode(LanguageModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                                const DecodeOptions& o) {
  NoGrad no_grad;
  const bool was_training = model.is_training();
  model.train(false);
  std::vector<std::vector<int32_t>> out(prompts.size());
  std::vector<bool> done(prompts.size(), false);
  for (int64_t t = 0; t < o.max_new_tokens; ++t) {
    std::vector<std::vector<int32_t>> seqs;
    std::vector<int64_t> prefix;
    std::vector<size_t> owner;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (done[i]) continue;
      std::vector<int32_t> s = prompts[i];
      s.insert(s.end(), out[i].begin(), out[i].end());
      seqs.push_back(std::move(s));
      prefix.push_back(int64_t(prompts[i].size()));
      owner.push_back(i);
    }
    if (seqs.empty()) break;
    std::vector<double> last;
    PackedBatch b = batch_of(seqs, prefix, o, last);
    Tensor logits = model.logits(b);
    Tensor idx = tensor(last, {int64_t(last.size())}, {.dtype = DType::i64, .device = o.device});
    Tensor last_logits = index_select(logits, 0, idx);
    if (o.vocab > 0) last_logits = last_logits.narrow(-1, 0, std::min(o.vocab, last_logits.size(-1)));
    std::vector<int64_t> next = argmax(last_logits, -1).to_vector<int64_t>();
    for (size_t k = 0; k < owner.size(); ++k) {
      if (next[k] == o.eos) {
        done[owner[k]] = true;
      } else {
        out[owner[k]].push_back(static_cast<int32_t>(next[k]));
      }
    }
  }
  model.train(was_training);
  return out;
}

}  // namespace ponder::models
