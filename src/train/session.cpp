#include "train/session.h"

#include <algorithm>

#include "backend/determinism.h"
#include "data/tokenizer.h"
#include "io/errors.h"
#include "ops/creation.h"
#include "tensor/allocator.h"
#include "train/backbone.h"
#include "train/family.h"
#include "train/plan.h"
#include "train/shard_source.h"
#include "train/task_source.h"

namespace ponder::train {

Device resolve_device(const io::Recipe& r, int local_rank) {
  if (r.runtime.device == "cpu") return Device::cpu();
  const int gpus = cuda_device_count();
  if (r.runtime.device == "cuda") PONDER_CHECK(gpus > 0, DeviceError, "runtime.device is cuda but no CUDA device is visible");
  if (gpus == 0) return Device::cpu();
  PONDER_CHECK(local_rank < gpus, DeviceError, "local rank ", local_rank, " needs GPU ", local_rank, " but only ", gpus,
               " are visible");
  return Device::cuda(local_rank);
}

DType resolve_precision(const io::Recipe& r, Device device) {
  if (r.runtime.precision == "bf16") return DType::bf16;
  if (r.runtime.precision == "f32") return DType::f32;
  return device.is_cuda() ? DType::bf16 : DType::f32;
}

namespace {

int rank_of(const TrainContext& ctx) { return ctx.comm->rank(); }

void attach_task(TrainContext& ctx, const io::Recipe& r, const RunData& run_data) {
  auto tokenizer = std::make_shared<data::CharTokenizer>();
  auto stream = std::make_shared<data::TaskStream>(run_data.task, r.runtime.seed, r.data.task_eval_examples);
  ctx.tokenizer = tokenizer;
  ctx.train_data = std::make_unique<TaskSource>(stream, tokenizer, r, rank_of(ctx));
  if (r.data.task_eval_examples > 0) ctx.evaluation = std::make_unique<TaskEvaluation>(stream, tokenizer, r);
}

// What packing does to samples longer than a row (data::fit_to_row), said once at the start.
std::string long_samples_note(const data::Dataset& data, int64_t seq_len) {
  const std::vector<int64_t> lengths = data.packed_lengths();
  const auto longer = std::count_if(lengths.begin(), lengths.end(), [&](int64_t n) { return n > seq_len; });
  if (longer == 0) return "";
  return "data.train: " + std::to_string(longer) + " of " + std::to_string(lengths.size()) +
         " samples are longer than data.seq_len " + std::to_string(seq_len) +
         " and are cut to that length, their responses first";
}

std::vector<std::filesystem::path> paths(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

void attach_shards(TrainContext& ctx, const io::Recipe& r, const RunData& run_data) {
  ctx.tokenizer = data::tokenizer_beside(r.data.train.front());  // where ponder data prepare puts it
  if (std::string cut = long_samples_note(*run_data.train, r.data.seq_len); !cut.empty()) ctx.notes.push_back(std::move(cut));
  ctx.train_data = std::make_unique<ShardSource>(run_data.train, r, rank_of(ctx));
  if (run_data.eval) ctx.evaluation = std::make_unique<ShardEvaluation>(run_data.eval, r);
}

}  // namespace

RunData open_data(const io::Recipe& r) {
  RunData run_data;
  if (!r.data.task.empty()) {
    run_data.task = data::make_task(r.data.task);
    const int64_t chars = data::CharTokenizer().vocab_size();
    PONDER_CHECK(vocab_size(r.model) >= chars, io::ConfigError, "model.vocab_size: ", vocab_size(r.model),
                 " is smaller than the ", chars, " tokens of the character tokenizer that data.task uses");
    return run_data;
  }
  run_data.train = std::make_shared<const data::Dataset>(paths(r.data.train), data::TokenCheck::on_read);
  PONDER_CHECK(vocab_size(r.model) >= run_data.train->vocab_size(), io::ConfigError, "model.vocab_size: ",
               vocab_size(r.model), " is smaller than the shards' vocabulary of ", run_data.train->vocab_size());
  if (!r.data.eval.empty()) {
    run_data.eval = std::make_shared<const data::Dataset>(paths(r.data.eval), data::TokenCheck::on_read);
    PONDER_CHECK(run_data.eval->tokenizer_id() == run_data.train->tokenizer_id(), io::ConfigError,
                 "data.eval: shards were made by tokenizer ", run_data.eval->tokenizer_id(), " but the training shards by ",
                 run_data.train->tokenizer_id());
  }
  return run_data;
}

std::string resolve_by_memory(io::Recipe& recipe, Device device, dist::Communicator& comm) {
  if (!recipe.batch.micro_auto() && !recipe.runtime.recompute_auto()) return "";
  constexpr double kMiB = 1 << 20;
  const Tensor mine = full({1}, double(available_memory(device)) / kMiB, {DType::f32, comm.device()});
  const Tensor all = Tensor::empty({comm.world_size()}, {DType::f32, comm.device()});
  comm.all_gather(mine, all);
  const std::vector<float> available = all.to_vector<float>();
  PlanOptions options;
  options.gpus = comm.world_size();
  const MemoryChoice choice =
      choose_by_memory(recipe, options, *std::min_element(available.begin(), available.end()) * kMiB);
  std::string chosen = describe(choice, recipe);
  apply(choice, recipe);
  return chosen;
}

TrainContext make_context(const io::Recipe& recipe, const std::filesystem::path& run_dir,
                          std::shared_ptr<dist::Communicator> comm) {
  TrainContext ctx;
  ctx.recipe = recipe;
  ctx.run_dir = run_dir;
  ctx.device = comm && comm->device().is_cuda() ? comm->device() : resolve_device(recipe);
  ctx.comm = comm ? std::move(comm) : std::make_shared<dist::LocalCommunicator>(ctx.device);
  if (std::string chosen = resolve_by_memory(ctx.recipe, ctx.device, *ctx.comm); !chosen.empty()) {
    ctx.notes.push_back(std::move(chosen));
  }
  const io::Recipe& r = ctx.recipe;
  ctx.param_dtype = resolve_precision(r, ctx.device);
  backend::set_deterministic(r.runtime.deterministic);
  const RunData run_data = open_data(r);
  ctx.model = build_training_model(r);
  init_backbone(*ctx.model, r);  // a resumed run's checkpoint then overwrites it
  if (run_data.task) {
    attach_task(ctx, r, run_data);
  } else {
    attach_shards(ctx, r, run_data);
  }
  return ctx;
}

}  // namespace ponder::train
