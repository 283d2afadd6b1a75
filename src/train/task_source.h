// Batches and evaluation for a synthetic task generated on the fly. Examples are tokenised as
//   instruction ids = [bos] + chars(instruction) + [resp],  response ids = chars(response) + [eos]
// and packed greedily into rows in stream order. Every rank generates the same global stream and
// takes its own rows, so the data order does not depend on the number of ranks.
#pragma once

#include <memory>

#include "data/packing.h"
#include "data/tasks/task.h"
#include "data/tokenizer.h"
#include "io/recipe.h"
#include "train/batch_source.h"
#include "train/evaluation.h"

namespace ponder::train {

// An example in the sample layout of prepared shards (data/prepare.h), so that training on a task
// and on `ponder data synth` shards of it sees the same tokens.
data::Sample encode_example(const data::Tokenizer& tok, const data::TaskExample& e);

class TaskSource : public BatchSource {
 public:
  TaskSource(std::shared_ptr<data::TaskStream> stream, std::shared_ptr<const data::Tokenizer> tokenizer,
             const io::Recipe& recipe, int64_t rank);
  models::PackedBatch next() override;
  std::string state() const override;
  void restore(const std::string& state) override;

 private:
  std::vector<data::Sample> fill_row();

  std::shared_ptr<data::TaskStream> stream_;
  std::shared_ptr<const data::Tokenizer> tokenizer_;
  data::PackOptions pack_;
  int64_t rows_, rank_, world_;
};

// Loss on the test examples and exact match of greedy answers checked by the task's verifier.
class TaskEvaluation : public Evaluation {
 public:
  TaskEvaluation(std::shared_ptr<data::TaskStream> stream, std::shared_ptr<const data::Tokenizer> tokenizer,
                 const io::Recipe& recipe);
  nlohmann::json run(models::LanguageModel& model, Device device) override;
  std::string report() const override;

 private:
  struct Shown {  // a held-out example with the model's answer
    std::string instruction, answer, reference;
    bool correct;
  };
  std::shared_ptr<data::TaskStream> stream_;
  std::shared_ptr<const data::Tokenizer> tokenizer_;
  data::PackOptions pack_;
  int64_t exact_match_;
  std::vector<Shown> shown_;
};

}  // namespace ponder::train
