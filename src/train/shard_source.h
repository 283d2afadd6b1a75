// Batches and evaluation from HDF5 token shards (data.train / data.eval), through the prefetching
// data loader.
#pragma once

#include <memory>

#include "data/dataset.h"
#include "data/loader.h"
#include "io/recipe.h"
#include "train/batch_source.h"
#include "train/evaluation.h"

namespace ponder::train {

data::LoaderOptions loader_options(const io::Recipe& recipe, int rank, bool shuffle);

class ShardSource : public BatchSource {
 public:
  ShardSource(std::shared_ptr<const data::Dataset> data, const io::Recipe& recipe, int rank);
  models::PackedBatch next() override;
  std::string state() const override;  // the loader's position as YAML
  void restore(const std::string& state) override;

 private:
  std::shared_ptr<const data::Dataset> data_;
  data::BatchLoader loader_;
};

// Mean loss over the first eval.batches micro-batches of the eval shards, in file order.
class ShardEvaluation : public Evaluation {
 public:
  ShardEvaluation(std::shared_ptr<const data::Dataset> data, const io::Recipe& recipe);
  nlohmann::json run(models::LanguageModel& model, Device device) override;

 private:
  std::shared_ptr<const data::Dataset> data_;
  data::LoaderOptions options_;
  int64_t batches_;
};

}  // namespace ponder::train
