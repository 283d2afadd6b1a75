#include "train/model_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "data/dataset.h"
#include "data/prepare.h"
#include "io/errors.h"
#include "train/held_out.h"

namespace ponder::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The verifier of `spec` (null for an empty spec), made once per set.
const data::Task* verifier(EvalSet& set, const std::string& spec) {
  if (spec.empty()) return nullptr;
  auto& task = set.tasks[spec];
  if (!task) task = data::make_task(spec);
  return task.get();
}

void add_pair(EvalSet& set, data::Sample sample, const data::Tokenizer& tok, const std::string& task, int64_t context) {
  PONDER_CHECK(sample.packed_length() <= context, ValueError, "the sample has ", sample.packed_length(),
               " tokens, more than the ", context, " positions the model was trained on");
  EvalPair p{.sample = std::move(sample), .instruction = {}, .reference = {}, .verifier = verifier(set, task)};
  p.instruction = tok.decode(p.sample.instruction);
  p.reference = tok.decode(p.sample.response);
  set.pairs.push_back(std::move(p));
}

// A record of the prepare format, plus an optional "task" field naming its verifier.
std::optional<std::pair<data::Record, std::string>> parse_eval_record(const std::string& line, const std::string& where) {
  json value = json::parse(line, nullptr, /*allow_exceptions=*/false);
  std::string task;
  if (value.is_object() && value.contains("task")) {
    PONDER_CHECK(value["task"].is_string(), io::FormatError, where, ": \"task\" must be a string (a task spec)");
    task = value["task"].get<std::string>();
    value.erase("task");
    std::optional<data::Record> r = data::parse_record(value.dump(), where);
    return std::make_pair(std::move(*r), task);
  }
  std::optional<data::Record> r = data::parse_record(line, where);  // its own message for bad JSON
  if (!r) return std::nullopt;
  return std::make_pair(std::move(*r), task);
}

void read_jsonl(EvalSet& set, const fs::path& path, const data::Tokenizer& tok, const std::string& task, size_t limit,
                int64_t context) {
  std::ifstream in(path, std::ios::binary);
  PONDER_CHECK(in.good(), io::IoError, path.string(), ": cannot be read");
  std::string line;
  for (int64_t number = 1; set.pairs.size() < limit && std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = path.string() + ":" + std::to_string(number);
    auto record = parse_eval_record(line, where);
    if (!record) continue;
    try {  // text the tokenizer cannot encode, an unknown task, or too long a sample
      add_pair(set, data::tokenize_record(record->first, tok), tok, record->second.empty() ? task : record->second,
               context);
    } catch (const ValueError& e) {
      fail<ValueError>(where, ": ", e.what());
    }
  }
}

void read_shards(EvalSet& set, const fs::path& source, const data::Tokenizer& tok, const std::string& task, size_t limit,
                 int64_t context) {
  const data::Dataset shards({source});
  PONDER_CHECK(shards.tokenizer_id() == tok.id(), ValueError, source.string(), ": the shards were made by tokenizer ",
               shards.tokenizer_id(), " but the model uses ", tok.id());
  for (int64_t i = 0; i < shards.size() && set.pairs.size() < limit; ++i) {
    try {
      add_pair(set, shards.get(i), tok, task, context);
    } catch (const ValueError& e) {
      fail<ValueError>(source.string(), ": sample ", i, ": ", e.what());
    }
  }
}

// Sets a depth for the life of the scope; the trained depth again at its end, also on errors.
class DepthScope {
 public:
  DepthScope(models::LanguageModel& model, const std::string& label) : model_(model) { model_.set_eval_depth(label); }
  ~DepthScope() { model_.set_eval_depth(""); }
  DepthScope(const DepthScope&) = delete;
  DepthScope& operator=(const DepthScope&) = delete;

 private:
  models::LanguageModel& model_;
};

// The greedy answer to each prompt, of at most `answer_budget` tokens and within the positions
// training saw. Prompts with the same budget are decoded together, so that a long prompt does
// not shorten the others' answers.
std::vector<std::string> budgeted_answers(InferenceModel& m, const std::vector<std::vector<int32_t>>& prompts,
                                          int64_t answer_budget, Device device) {
  std::map<int64_t, std::vector<size_t>> by_budget;
  for (size_t i = 0; i < prompts.size(); ++i) {
    by_budget[std::max<int64_t>(1, std::min(answer_budget, m.context - int64_t(prompts[i].size())))].push_back(i);
  }
  std::vector<std::string> answers(prompts.size());
  for (const auto& [budget, members] : by_budget) {
    std::vector<std::vector<int32_t>> group;
    for (size_t i : members) group.push_back(prompts[i]);
    const auto decoded = greedy_answers(*m.model, *m.tokenizer, group, budget, m.prompt_mask, device);
    for (size_t k = 0; k < members.size(); ++k) answers[members[k]] = decoded[k];
  }
  return answers;
}

DepthScore score(InferenceModel& m, const EvalSet& set, Device device) {
  DepthScore s;
  std::vector<data::Sample> samples;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<const EvalPair*> asked;
  int64_t longest_answer = 1;
  for (const EvalPair& p : set.pairs) {
    samples.push_back(p.sample);
    if (p.sample.instruction.empty()) continue;  // plain text: nothing to answer
    prompts.push_back(p.sample.instruction);
    asked.push_back(&p);
    longest_answer = std::max<int64_t>(longest_answer, int64_t(p.sample.response.size()));
  }
  s.loss = response_loss(*m.model, samples, m.prompt_mask, device).mean();
  s.perplexity = std::exp(s.loss);
  if (prompts.empty()) return s;
  const std::vector<std::string> answers = budgeted_answers(m, prompts, longest_answer + 2, device);
  for (size_t i = 0; i < asked.size(); ++i) {
    const EvalPair& p = *asked[i];
    const bool ok = p.verifier ? p.verifier->verify(p.instruction, answers[i]) : answers[i] == p.reference;
    s.correct += ok;
    s.answers.push_back({&p, answers[i], ok});
  }
  s.answered = int64_t(asked.size());
  s.exact_match = double(s.correct) / double(s.answered);
  return s;
}

}  // namespace

EvalSet read_eval_set(const fs::path& source, const data::Tokenizer& tokenizer, const std::string& task,
                      int64_t max_pairs, int64_t context) {
  PONDER_CHECK(fs::exists(source), io::IoError, source.string(), ": no such file or directory");
  EvalSet set;
  verifier(set, task);  // an unknown task fails before any reading
  const size_t limit = max_pairs > 0 ? size_t(max_pairs) : SIZE_MAX;
  if (fs::is_directory(source) || source.extension() == ".h5") {
    read_shards(set, source, tokenizer, task, limit, context);
  } else {
    read_jsonl(set, source, tokenizer, task, limit, context);
  }
  PONDER_CHECK(!set.pairs.empty(), io::FormatError, source.string(), ": holds no samples");
  return set;
}

std::vector<DepthScore> evaluate_depths(InferenceModel& m, const EvalSet& set, bool sweep, Device device) {
  std::vector<models::EvalDepth> depths;
  if (sweep) depths = m.model->eval_depths();
  if (depths.empty()) depths.push_back({"", 1.0});
  std::vector<DepthScore> scores;
  for (const models::EvalDepth& d : depths) {
    DepthScope scope(*m.model, d.label);
    DepthScore s = score(m, set, device);
    s.model_metrics = m.model->take_step_metrics();
    s.depth = d.label.empty() ? "trained" : d.label;
    s.compute = d.compute;
    scores.push_back(s);
  }
  return scores;
}

std::string depth_table(const std::vector<DepthScore>& scores) {
  std::string out = "depth         compute      loss         ppl  exact match\n";
  char line[200];
  for (const DepthScore& s : scores) {
    char em[64] = "-";
    if (s.exact_match) {
      std::snprintf(em, sizeof em, "%5.1f%% (%lld/%lld)", 100 * *s.exact_match, static_cast<long long>(s.correct),
                    static_cast<long long>(s.answered));
    }
    std::snprintf(line, sizeof line, "%-12s %8.2f %9.4f %11.3f  %s", s.depth.c_str(), s.compute, s.loss,
                  s.perplexity, em);
    out += line;
    for (const auto& [name, value] : s.model_metrics) {
      std::snprintf(line, sizeof line, "  %s=%.4g", name.c_str(), value);
      out += line;
    }
    out += "\n";
  }
  return out;
}

std::string answer_lines(const DepthScore& score, size_t count) {
  std::string out;
  for (size_t i = 0; i < std::min(count, score.answers.size()); ++i) {
    const DepthScore::Answer& a = score.answers[i];
    out += "  " + a.pair->instruction + " -> " + a.text + "   (reference " + a.pair->reference + ", " +
           (a.correct ? "correct" : "wrong") + ")\n";
  }
  return out;
}

json depth_json(const std::vector<DepthScore>& scores) {
  json depths = json::array();
  for (const DepthScore& s : scores) {
    depths.push_back({{"depth", s.depth}, {"compute", s.compute}, {"loss", s.loss}, {"perplexity", s.perplexity},
                      {"exact_match", s.exact_match ? json(*s.exact_match) : json(nullptr)},
                      {"correct", s.correct}, {"answered", s.answered}, {"model_metrics", s.model_metrics}});
  }
  return depths;
}

}  // namespace ponder::train
