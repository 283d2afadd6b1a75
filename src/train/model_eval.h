// `ponder eval`: a trained model scored on held-out instruction -> response pairs at each of its
// evaluation depths (test-time compute): the loss and perplexity on response tokens, and the
// exact-match accuracy of greedy answers, checked by the task's verifier when the pairs name a task
// (data/tasks) and by string equality otherwise.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/packing.h"
#include "data/tasks/task.h"
#include "train/inference.h"

namespace ponder::train {

struct EvalPair {
  data::Sample sample;           // the tokens, in the training layout
  std::string instruction, reference;
  const data::Task* verifier;    // null: exact string match
};

struct EvalSet {
  std::vector<EvalPair> pairs;
  std::map<std::string, std::unique_ptr<data::Task>> tasks;  // the verifiers, by spec
};

// The pairs of `source`: a shard file (*.h5) or a directory of shards (their tokenizer must be the
// model's), or else a JSONL file of {"instruction", "response"[, "task"][, "condition"]} records.
// Plain-text samples count towards the loss only. `task` (a task spec, may be empty) verifies the pairs that
// name none. At most max_pairs (0: all). Missing files and bad records are io errors naming them,
// an unknown task or a sample longer than `context` tokens (the model's training row) a ValueError.
EvalSet read_eval_set(const std::filesystem::path& source, const data::Tokenizer& tokenizer, const std::string& task,
                      int64_t max_pairs, int64_t context);

struct DepthScore {
  std::string depth = "trained";  // a label of eval_depths(), or "trained"
  double compute = 1;             // forward cost relative to the trained depth
  double loss = 0, perplexity = 0;
  std::optional<double> exact_match;  // none without instruction pairs
  int64_t correct = 0, answered = 0;
  struct Answer {
    const EvalPair* pair;
    std::string text;
    bool correct;
  };
  std::vector<Answer> answers;  // of every instruction pair, in order (pointing into the EvalSet)
  // What the family counted while scoring (take_step_metrics), e.g. SST's mean deliberation
  // iterations, which fall below the depth when its early stop settles.
  std::map<std::string, double> model_metrics;
};

// The trained depth only, or with `sweep` every depth of model.eval_depths() (the trained one
// alone when the family has none). The model is left at its trained depth.
std::vector<DepthScore> evaluate_depths(InferenceModel& model, const EvalSet& set, bool sweep, Device device);

// The table `ponder eval` prints: depth, relative compute, loss, perplexity, exact match, then
// the model's metrics as name=value.
std::string depth_table(const std::vector<DepthScore>& scores);
nlohmann::json depth_json(const std::vector<DepthScore>& scores);
// The first `count` answers of a score beside their references, one line each.
std::string answer_lines(const DepthScore& score, size_t count);

}  // namespace ponder::train
