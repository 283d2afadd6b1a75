#include "train/shard_source.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "io/config_reader.h"

namespace ponder::train {

data::LoaderOptions loader_options(const io::Recipe& r, int rank, bool shuffle) {
  data::LoaderOptions o;
  o.row_len = r.data.seq_len;
  o.rows_per_micro_batch = r.rows_per_micro_batch();
  o.micro_batches_per_step = r.accumulation();
  o.rank = rank;
  o.world = static_cast<int>(r.distributed.world_size);
  o.mask = r.data.attention_mask();
  o.loss_on_response_only = r.data.loss == "response";
  o.strategy = r.data.packing == "greedy" ? data::PackStrategy::greedy : data::PackStrategy::longest_first;
  o.seed = r.runtime.seed;
  o.shuffle = shuffle;
  o.prefetch = r.data.prefetch;
  return o;
}

ShardSource::ShardSource(std::shared_ptr<const data::Dataset> data, const io::Recipe& recipe, int rank)
    : data_(std::move(data)), loader_(*data_, loader_options(recipe, rank, /*shuffle=*/true)) {}

models::PackedBatch ShardSource::next() {
  std::optional<models::PackedBatch> b = loader_.next();
  PONDER_CHECK(b.has_value(), Error, "data.train: the data stream ended");  // endless by construction
  return *b;
}

std::string ShardSource::state() const {
  data::LoaderState s = loader_.state();
  YAML::Emitter e;
  e << YAML::Flow << YAML::BeginMap << YAML::Key << "epoch" << YAML::Value << s.epoch << YAML::Key << "row"
    << YAML::Value << s.row << YAML::Key << "steps" << YAML::Value << s.steps << YAML::Key << "samples"
    << YAML::Value << s.samples << YAML::Key << "plan" << YAML::Value << s.plan << YAML::EndMap;
  return e.c_str();
}

void ShardSource::restore(const std::string& state) {
  io::ConfigReader reader = io::ConfigReader::from_string(state, "trainer.yaml data_state");
  io::Section s = reader.root();
  data::LoaderState ls;
  ls.epoch = s.require<int64_t>("epoch", io::non_negative_int());
  ls.row = s.require<int64_t>("row", io::non_negative_int());
  ls.steps = s.require<int64_t>("steps", io::non_negative_int());
  ls.samples = s.require<int64_t>("samples", io::non_negative_int());
  ls.plan = s.require<std::string>("plan");
  reader.check_unknown_keys();
  loader_.restore(ls);
}

ShardEvaluation::ShardEvaluation(std::shared_ptr<const data::Dataset> data, const io::Recipe& recipe)
    : data_(std::move(data)), options_(loader_options(recipe, 0, /*shuffle=*/false)), batches_(recipe.eval.batches) {
  options_.world = 1;
  options_.micro_batches_per_step = 1;
  options_.prefetch = 0;
  options_.epochs = 1;
}

nlohmann::json ShardEvaluation::run(models::LanguageModel& model, Device device) {
  NoGrad no_grad;
  const bool was_training = model.is_training();
  model.train(false);
  data::BatchLoader loader(*data_, options_);
  double loss = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < batches_; ++i) {
    std::optional<models::PackedBatch> b = loader.next();
    if (!b) break;
    models::PackedBatch d = *b;
    d.tokens = d.tokens.to(device);
    d.positions = d.positions.to(device);
    d.labels = d.labels.to(device);
    d.attn.cu_seqlens = d.attn.cu_seqlens.to(device);
    if (d.attn.prefix_len.defined()) d.attn.prefix_len = d.attn.prefix_len.to(device);
    if (d.loss_tokens == 0) continue;
    loss += model.loss_sum(d).item<double>();
    tokens += d.loss_tokens;
  }
  model.train(was_training);
  const double mean = tokens ? loss / double(tokens) : 0.0;
  return {{"eval.loss", mean}, {"eval.perplexity", std::exp(mean)}};
}

}  // namespace ponder::train
