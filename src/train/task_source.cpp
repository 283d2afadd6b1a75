#include "train/task_source.h"

#include "data/prepare.h"
#include "train/held_out.h"

namespace ponder::train {

namespace {
data::PackOptions pack_options(const io::Recipe& r) {
  data::PackOptions o;
  o.row_len = r.data.seq_len;
  o.mask = r.data.attention_mask();
  o.loss_on_response_only = r.data.loss == "response";
  return o;
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
  const auto& test = stream_->test();
  std::vector<data::Sample> samples;
  for (const data::TaskExample& e : test) samples.push_back(encode_example(*tokenizer_, e));
  nlohmann::json out = {{"eval.loss", response_loss(model, samples, pack_.mask, device).mean()}};
  const size_t n = std::min<size_t>(test.size(), static_cast<size_t>(exact_match_));
  if (n == 0) return out;
  std::vector<std::vector<int32_t>> prompts;
  int64_t longest_answer = 1;
  for (size_t i = 0; i < n; ++i) {
    prompts.push_back(samples[i].instruction);
    longest_answer = std::max<int64_t>(longest_answer, int64_t(samples[i].response.size()));
  }
  const auto answers = greedy_answers(model, *tokenizer_, prompts, longest_answer + 2, pack_.mask, device);
  int64_t correct = 0;
  shown_.clear();
  for (size_t i = 0; i < n; ++i) {
    const bool ok = stream_->task().verify(test[i].instruction, answers[i]);
    correct += ok;
    if (shown_.size() < 4) shown_.push_back({test[i].instruction, answers[i], test[i].response, ok});
  }
  out["eval.exact_match"] = double(correct) / double(n);
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
