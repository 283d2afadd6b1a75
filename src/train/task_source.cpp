#include "train/task_source.h"

#include "autograd/grad_mode.h"
#include "data/prepare.h"
#include "models/decode.h"
#include "ops/loss.h"

namespace ponder::train {

namespace {
data::PackOptions pack_options(const io::Recipe& r) {
  data::PackOptions o;
  o.row_len = r.data.seq_len;
  o.mask = r.data.attention_mask();
  o.loss_on_response_only = r.data.loss == "response";
  return o;
}

std::vector<int32_t> without_eos(std::vector<int32_t> ids, int32_t eos) {
  while (!ids.empty() && ids.back() == eos) ids.pop_back();
  return ids;
}
}  // namespace

data::Sample encode_example(const data::Tokenizer& tok, const data::TaskExample& e) {
  return data::tokenize_record({.instruction = e.instruction, .response = e.response, .condition = {}}, tok);
}

TaskSource::TaskSource(std::shared_ptr<data::TaskStream> stream, std::shared_ptr<const data::Tokenizer> tokenizer,
                       const io::Recipe& recipe, int64_t rank)
    : stream_(std::move(stream)), tokenizer_(std::move(tokenizer)), pack_(pack_options(recipe)),
      rows_(recipe.rows_per_micro_batch()), rank_(rank), world_(recipe.distributed.world_size) {}

std::vector<data::Sample> TaskSource::fill_row() {
  std::vector<data::Sample> row;
  int64_t used = 0;
  while (true) {
    data::Sample s = encode_example(*tokenizer_, stream_->peek_train());
    PONDER_CHECK(s.packed_length() <= pack_.row_len, ValueError, "data.seq_len ", pack_.row_len,
                 " is too short for a ", stream_->task().name(), " example of ", s.packed_length(), " tokens");
    if (used + s.packed_length() > pack_.row_len) return row;
    used += s.packed_length();
    row.push_back(std::move(s));
    stream_->pop_train();
  }
}

models::PackedBatch TaskSource::next() {
  std::vector<std::vector<data::Sample>> mine;
  for (int64_t r = 0; r < world_ * rows_; ++r) {
    std::vector<data::Sample> row = fill_row();
    if (r / rows_ == rank_) mine.push_back(std::move(row));
  }
  return data::pack_rows(mine, pack_);
}

std::string TaskSource::state() const { return "task_cursor: " + std::to_string(stream_->cursor()); }

void TaskSource::restore(const std::string& state) {
  const std::string key = "task_cursor: ";
  PONDER_CHECK(state.rfind(key, 0) == 0, ValueError, "task data: unreadable data state \"", state, "\"");
  stream_->set_cursor(std::stoull(state.substr(key.size())));
}

TaskEvaluation::TaskEvaluation(std::shared_ptr<data::TaskStream> stream, std::shared_ptr<const data::Tokenizer> tokenizer,
                               const io::Recipe& recipe)
    : stream_(std::move(stream)), tokenizer_(std::move(tokenizer)), pack_(pack_options(recipe)),
      exact_match_(recipe.eval.exact_match) {}

nlohmann::json TaskEvaluation::run(models::LanguageModel& model, Device device) {
  NoGrad no_grad;
  const bool was_training = model.is_training();
  model.train(false);
  // Loss over every test example, one sample per row.
  double loss = 0;
  int64_t tokens = 0;
  const auto& test = stream_->test();
  const size_t per_batch = 64;
  for (size_t i = 0; i < test.size(); i += per_batch) {
    std::vector<std::vector<data::Sample>> rows;
    int64_t longest = 1;
    for (size_t j = i; j < std::min(test.size(), i + per_batch); ++j) {
      rows.push_back({encode_example(*tokenizer_, test[j])});
      longest = std::max(longest, rows.back()[0].packed_length());
    }
    data::PackOptions o = pack_;
    o.row_len = longest;
    models::PackedBatch b = data::pack_rows(rows, o);
    b.tokens = b.tokens.to(device);
    b.positions = b.positions.to(device);
    b.labels = b.labels.to(device);
    b.attn.cu_seqlens = b.attn.cu_seqlens.to(device);
    if (b.attn.prefix_len.defined()) b.attn.prefix_len = b.attn.prefix_len.to(device);
    loss += model.loss_sum(b).item<double>();
    tokens += b.loss_tokens;
  }
  nlohmann::json out = {{"eval.loss", tokens ? loss / double(tokens) : 0.0}};
  // Exact match by greedy decoding.
  const size_t n = std::min<size_t>(test.size(), static_cast<size_t>(exact_match_));
  if (n > 0) {
    std::vector<std::vector<int32_t>> prompts;
    int64_t longest_answer = 1;
    for (size_t i = 0; i < n; ++i) {
      data::Sample s = encode_example(*tokenizer_, test[i]);
      prompts.push_back(s.instruction);
      longest_answer = std::max<int64_t>(longest_answer, int64_t(s.response.size()));
    }
    models::DecodeOptions d{.max_new_tokens = longest_answer + 2, .eos = tokenizer_->eos(), .mask = pack_.mask, .device = device};
    auto answers = models::greedy_decode(model, prompts, d);
    int64_t correct = 0;
    shown_.clear();
    for (size_t i = 0; i < n; ++i) {
      std::string text = tokenizer_->decode(without_eos(answers[i], tokenizer_->eos()));
      bool ok = stream_->task().verify(test[i].instruction, text);
      correct += ok;
      if (shown_.size() < 4) shown_.push_back({test[i].instruction, text, test[i].response, ok});
    }
    out["eval.exact_match"] = double(correct) / double(n);
  }
  model.train(was_training);
  return out;
}

std::string TaskEvaluation::report() const {
  std::string out;
  for (const Shown& s : shown_) {
    out += "  " + s.instruction + " -> " + s.answer + (s.correct ? "  (correct)" : "  (expected " + s.reference + ")") + "\n";
  }
  return out;
}

}  // namespace ponder::train
