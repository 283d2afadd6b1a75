#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "ops/ops.h"
#include "optim/clip.h"
#include "optim/muon.h"
#include "support/python.h"
#include "support/resume_check.h"
#include "support/test_util.h"
#include "tensor/allocator.h"
#include "train/plan.h"
#include "train/session.h"

namespace ponder::train {
namespace {
namespace fs = std::filesystem;

const char* kRecipe = R"(model: {family: transformer, vocab_size: 100, dim: 32, layers: 1, heads: 2, ffn_hidden: 64}
data: {task: sort, seq_len: 64, task_eval_examples: 16}
optim: {name: adamw, lr: 3.0e-3}
schedule: {name: cosine, warmup_steps: 2, min_ratio: 0.1}
train: {steps: 8}
batch: {global_tokens: 256, micro_tokens: 128}
runtime: {device: cpu}
log: {every: 1}
eval: {exact_match: 4}
checkpoint: {every: 0}
)";

// Calls `poison(batch, step)` on the micro-batches of the chosen steps as they are drawn (before
// their forward and backward): a test's way to inject non-finite values or loss spikes.
class Poison : public BatchSource {
 public:
  using Fn = std::function<void(models::PackedBatch&)>;
  Poison(std::unique_ptr<BatchSource> inner, int64_t accumulation, std::set<int64_t> steps, Fn poison)
      : inner_(std::move(inner)), accumulation_(accumulation), steps_(std::move(steps)), poison_(std::move(poison)) {}
  models::PackedBatch next() override {
    models::PackedBatch b = inner_->next();
    if (steps_.count(drawn_++ / accumulation_)) poison_(b);
    return b;
  }
  std::string state() const override { return inner_->state(); }
  void restore(const std::string& s) override { inner_->restore(s); }

 private:
  std::unique_ptr<BatchSource> inner_;
  int64_t accumulation_, drawn_ = 0;
  std::set<int64_t> steps_;
  Fn poison_;
};

// A run of `recipe` in `run` whose chosen steps get `poison`; returns how it ended.
struct PoisonedRun {
  RunEnd end;
  TrainerState state;
  TensorList params;
  std::string log;
};
PoisonedRun poisoned_run(const io::Recipe& recipe, const fs::path& run, std::set<int64_t> steps,
                         const std::function<void(models::PackedBatch&, models::LanguageModel&)>& poison) {
  TrainContext ctx = make_context(recipe, run);
  models::LanguageModel* model = ctx.model.get();
  ctx.train_data = std::make_unique<Poison>(std::move(ctx.train_data), recipe.accumulation(), std::move(steps),
                                            [=](models::PackedBatch& b) { poison(b, *model); });
  Trainer t(std::move(ctx));
  PoisonedRun out{t.run(), t.state(), t.model().parameters(), ""};
  std::ifstream in(run / "log.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  out.log = ss.str();
  return out;
}

// NaN in one parameter's gradient, as if its backward had blown up (backward accumulates into it).
const char* kPoisonedParam = "model.layers.0.mlp.up_proj.weight";  // not the first parameter
void nan_gradient(models::PackedBatch&, models::LanguageModel& model) {
  bool found = false;
  for (auto& [name, p] : model.named_parameters()) {
    if (name != kPoisonedParam) continue;
    fill_(p.grad(), std::numeric_limits<double>::quiet_NaN());
    found = true;
  }
  ASSERT_TRUE(found) << kPoisonedParam;
}

// Every response token's label becomes the pad id, which the model has learnt never to predict.
void spike_loss(models::PackedBatch& b, models::LanguageModel&) {
  std::vector<double> labels;
  for (int64_t id : b.labels.to_vector<int64_t>()) labels.push_back(id == kIgnoreIndex ? double(id) : 0.0);
  b.labels = tensor(labels, b.labels.shape(), {.dtype = DType::i64});
}

void expect_resume_reproduces_the_run(const std::vector<std::string>& overrides) {
  testing::expect_resume_reproduces_the_run(io::parse_recipe(kRecipe, "r.yaml", overrides), 3);
}

TEST(Trainer, ResumeReproducesAnUninterruptedRunBitForBit) { expect_resume_reproduces_the_run({}); }

TEST(Trainer, ResumeWithMuonAdamWReproducesTheRunBitForBit) {
  expect_resume_reproduces_the_run({"optim.name=muon", "optim.lr=0.02", "optim.adam_lr=3e-3"});
}

TEST(Trainer, MuonRecipeBuildsMuonAdamWWithItsSettings) {
  io::Recipe recipe = io::parse_recipe(
      kRecipe, "r.yaml", {"optim.name=muon", "optim.lr=0.03", "optim.adam_lr=2e-3", "optim.weight_decay=0.05"});
  const nn::NamedTensors params = {{"layers.0.mlp.up_proj.weight", zeros({4, 3}).set_requires_grad(true)},
                                   {"embed_tokens.weight", zeros({5, 3}).set_requires_grad(true)}};
  auto optimizer = make_optimizer(recipe.optim, params);
  auto* muon = dynamic_cast<optim::MuonAdamW*>(optimizer.get());
  ASSERT_NE(muon, nullptr);
  EXPECT_EQ(muon->lr(), 0.03);
  ASSERT_EQ(muon->groups().size(), 2u);
  EXPECT_EQ(muon->groups()[0].name, "muon");
  EXPECT_EQ(muon->groups()[0].weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(muon->groups()[1].lr_scale * muon->lr(), 2e-3);
}

TEST(Trainer, NonFiniteStepsAreSkippedAndTooManyStopTheRun) {
  io::Recipe recipe = io::parse_recipe(kRecipe, "r.yaml", {"optim.lr=1e30", "optim.clip_grad_norm=0",
                                                            "train.max_consecutive_skips=2", "schedule.name=constant",
                                                            "schedule.warmup_steps=0"});
  fs::path run = testing::scratch_dir("diverge");
  Trainer t(make_context(recipe, run));
  EXPECT_EQ(t.run(), RunEnd::diverged);
  EXPECT_EQ(t.state().consecutive_skips, 2);
  EXPECT_GE(t.state().skipped_steps, 2);
  EXPECT_TRUE(newest_complete_checkpoint(run / "checkpoints").has_value());  // the last good state
  fs::remove_all(run);
}

TEST(Trainer, InjectedNonFiniteGradientsAreSkippedCountedAndNamed) {
  io::Recipe recipe = io::parse_recipe(kRecipe, "r.yaml", {"train.max_consecutive_skips=3", "schedule.name=constant"});
  fs::path run = testing::scratch_dir("nan_skip");
  PoisonedRun r = poisoned_run(recipe, run, {2, 5, 6}, nan_gradient);
  EXPECT_EQ(r.end, RunEnd::finished);
  EXPECT_EQ(r.state.skipped_steps, 3);
  EXPECT_EQ(r.state.consecutive_skips, 0);
  EXPECT_NE(r.log.find(std::string("step 6 skipped: non-finite values in the gradient of ") + kPoisonedParam + "\n"),
            std::string::npos) << r.log;
  for (const Tensor& p : r.params) EXPECT_TRUE(std::isfinite(norm(p).item<float>()));
  fs::remove_all(run);
}

TEST(Trainer, ConsecutiveNonFiniteStepsStopWithTheLastGoodStateSaved) {
  io::Recipe recipe = io::parse_recipe(kRecipe, "r.yaml", {"train.max_consecutive_skips=3", "schedule.name=constant"});
  fs::path run = testing::scratch_dir("nan_stop"), clean = testing::scratch_dir("nan_clean");
  PoisonedRun r = poisoned_run(recipe, run, {4, 5, 6, 7}, nan_gradient);
  EXPECT_EQ(r.end, RunEnd::diverged);
  EXPECT_EQ(r.state.step, 7);
  EXPECT_NE(r.log.find(std::string("stopping: 3 consecutive skipped steps (the first: non-finite values in the "
                                   "gradient of ") + kPoisonedParam + "); the last good state is saved"),
            std::string::npos) << r.log;
  // The saved weights are those after the 4 good steps: a clean 4-step run's, bit for bit.
  auto saved = newest_complete_checkpoint(run / "checkpoints");
  ASSERT_TRUE(saved.has_value());
  LoadedCheckpoint c = read_checkpoint(*saved);
  EXPECT_EQ(c.state.skipped_steps, 3);
  Trainer t(make_context(io::parse_recipe(kRecipe, "r.yaml", {"schedule.name=constant", "train.steps=4"}), clean));
  ASSERT_EQ(t.run(), RunEnd::finished);
  for (auto& [name, p] : t.model().named_parameters()) EXPECT_EQ(c.model.at(name).to_vector<float>(), p.to_vector<float>()) << name;
  fs::remove_all(run);
  fs::remove_all(clean);
}

TEST(Trainer, TheLossSpikeGuardSkipsSpikesLikeNonFiniteSteps) {
  const std::vector<std::string> guard = {"schedule.name=constant", "train.spike_zscore=3", "train.spike_window=3",
                                          "train.max_consecutive_skips=2"};
  fs::path run = testing::scratch_dir("spike");
  // Off by default: the spiking step is applied.
  PoisonedRun off = poisoned_run(io::parse_recipe(kRecipe, "r.yaml", {"schedule.name=constant"}), run, {5}, spike_loss);
  EXPECT_EQ(off.end, RunEnd::finished);
  EXPECT_EQ(off.state.skipped_steps, 0);
  fs::remove_all(run);
  PoisonedRun one = poisoned_run(io::parse_recipe(kRecipe, "r.yaml", guard), run, {5}, spike_loss);
  EXPECT_EQ(one.end, RunEnd::finished);
  EXPECT_EQ(one.state.skipped_steps, 1);
  EXPECT_NE(one.log.find("step 6 skipped: a loss spike (loss"), std::string::npos) << one.log;
  EXPECT_EQ(one.state.recent_losses.size(), 3u);
  fs::remove_all(run);
  PoisonedRun two = poisoned_run(io::parse_recipe(kRecipe, "r.yaml", guard), run, {5, 6}, spike_loss);
  EXPECT_EQ(two.end, RunEnd::diverged);
  EXPECT_EQ(two.state.step, 7);
  EXPECT_NE(two.log.find("stopping: 2 consecutive skipped steps (the first: a loss spike"), std::string::npos) << two.log;
  fs::remove_all(run);
}

// The trainer's clipped steps (the norm read with the loss, the factor folded into AdamW's update)
// against the same steps written out with clip_grad_norm's scaling pass: the same weights bit for
// bit, and the same grad_norm in the metrics.
TEST(Trainer, FoldedClippingMatchesClipThenStep) {
  const io::Recipe recipe = io::parse_recipe(
      kRecipe, "r.yaml", {"train.steps=3", "schedule.name=constant", "schedule.warmup_steps=0", "optim.clip_grad_norm=0.05"});
  const fs::path run = testing::scratch_dir("folded_clip");
  Trainer trainer(make_context(recipe, run / "trainer"));
  trainer.run();

  TrainContext ref = make_context(recipe, run / "reference");
  models::LanguageModel& model = *ref.model;
  model.to(ref.device);
  model.to(ref.param_dtype);
  model.train(true);
  auto optimizer = make_optimizer(recipe.optim, model.named_parameters());
  optimizer->set_lr(recipe.optim.lr);  // constant, no warmup
  std::vector<double> norms;
  for (int64_t step = 0; step < recipe.train.steps; ++step) {
    std::vector<models::PackedBatch> micro;
    int64_t tokens = 0;
    for (int64_t i = 0; i < recipe.accumulation(); ++i) {
      micro.push_back(ref.train_data->next());
      tokens += micro.back().loss_tokens;
    }
    model.begin_step(step, recipe.train.steps);
    for (const models::PackedBatch& b : micro)
      (model.loss_sum(models::to_device(b, ref.device)) * (1.0 / double(tokens))).backward();
    norms.push_back(optim::clip_grad_norm(model.parameters(), recipe.optim.clip_grad_norm));
    ASSERT_GT(norms.back(), recipe.optim.clip_grad_norm) << "step " << step << " is not clipped";
    optimizer->step();
    optimizer->zero_grad();
  }

  std::ifstream in(run / "trainer" / "metrics.jsonl");
  std::vector<double> logged;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("grad_norm")) logged.push_back(j["grad_norm"].get<double>());
  }
  EXPECT_EQ(logged, norms);
  const TensorList got = trainer.model().parameters(), want = model.parameters();
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) EXPECT_TRUE(testing::all_close(got[k], want[k], 0, 0)) << "parameter " << k;
  fs::remove_all(run);
}

// Rank 0 of two whose other rank has `other_mib` MiB available (all_gather is the only collective
// resolve_by_memory uses).
class OtherRankHas : public dist::LocalCommunicator {
 public:
  explicit OtherRankHas(double other_mib) : other_mib_(other_mib) {}
  int world_size() const override { return 2; }
  dist::WorkHandle all_gather_async(const Tensor& input, const Tensor& out) override {
    out.data<float>()[0] = input.item<float>();
    out.data<float>()[1] = float(other_mib_);
    return dist::done();
  }

 private:
  double other_mib_;
};

TEST(Trainer, AutoMicroBatchFollowsTheRankWithTheLeastMemory) {
  // 256 tokens on 2 ranks: 2 rows of 64 each
  const io::Recipe recipe = io::parse_recipe(kRecipe, "r.yaml", {"batch.micro_tokens=auto"}, 2);
  io::Recipe one_row = recipe;
  one_row.batch.micro_tokens = 64;
  const double one_row_mib = make_plan(one_row, PlanOptions{.gpus = 2}).memory.total() / kUsableMemory / (1 << 20);
  for (auto [other_mib, rows] : {std::pair{one_row_mib * 1.01, 1}, std::pair{one_row_mib * 100, 2}}) {
    io::Recipe r = recipe;
    OtherRankHas other(other_mib);
    const std::string chosen = resolve_by_memory(r, Device::cpu(), other);
    EXPECT_EQ(r.batch.micro_tokens, rows * 64) << chosen;
    EXPECT_EQ(r.accumulation(), 2 / rows);
    EXPECT_EQ(chosen.find("batch.micro_tokens auto: " + std::to_string(rows * 64) + " tokens"), 0u) << chosen;
  }
  io::Recipe r = recipe;
  OtherRankHas none(one_row_mib * 0.99);
  EXPECT_NE(testing::error_message<io::ConfigError>([&] { resolve_by_memory(r, Device::cpu(), none); })
                .find("one row of 64 tokens needs an estimated"),
            std::string::npos);
}

TEST(Trainer, AutoMicroBatchRunsAndSaysWhatItChose) {
  io::Recipe recipe = io::parse_recipe(
      kRecipe, "r.yaml", {"batch.micro_tokens=auto", "runtime.recompute=auto", "train.steps=2", "schedule.name=constant"});
  fs::path run = testing::scratch_dir("auto_micro");
  TrainContext ctx = make_context(recipe, run);
  EXPECT_EQ(ctx.recipe.batch.micro_tokens, 256);  // a CPU holds the whole step of this small model
  EXPECT_EQ(ctx.recipe.runtime.recompute, "none");
  Trainer t(std::move(ctx));
  EXPECT_EQ(t.run(), RunEnd::finished);
  std::ifstream log(run / "log.txt");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("batch.micro_tokens auto: 256 tokens (4 rows) of 256 per rank, runtime.recompute auto: none"),
            std::string::npos)
      << text;
  fs::remove_all(run);
}

// One rank has nothing to shard: distributed.zero: 1 then allocates nothing beyond the plain
// optimizer's state and trains the same.
TEST(Trainer, ZeroOneOnOneRankIsThePlainOptimizer) {
  auto held_after_setup = [](const std::string& zero, const fs::path& run) {
    const io::Recipe recipe = io::parse_recipe(kRecipe, "r.yaml", {"distributed.zero=" + zero, "train.steps=3"});
    const int64_t before = memory_stats(Device::cpu()).current_bytes;
    auto trainer = std::make_unique<Trainer>(make_context(recipe, run));
    const int64_t held = memory_stats(Device::cpu()).current_bytes - before;
    trainer->run();
    return std::pair{held, trainer->state().step};
  };
  const fs::path run = testing::scratch_dir("zero_one_rank");
  const auto plain = held_after_setup("0", run / "plain");
  const auto zero = held_after_setup("1", run / "zero");
  EXPECT_EQ(zero.first, plain.first);
  EXPECT_EQ(zero.second, 3);
  EXPECT_EQ(testing::logged_losses(run / "zero").size(), 3u);
  EXPECT_EQ(testing::logged_losses(run / "zero"), testing::logged_losses(run / "plain"));
  fs::remove_all(run);
}

// HRM-Text's weight-shared stacks with recomputed MLPs: each region's backward adds into the same
// weights again, after a 1 MiB gradient bucket holding them may have looked complete. The
// gradients are then reduced after backward, and training matches the run that keeps everything.
TEST(Trainer, RecomputedWeightSharedStacksTrainWithGradientBuckets) {
  auto losses = [](const std::string& recompute) {
    std::ifstream f(std::string(PONDER_SOURCE_DIR) + "/recipes/hrm_text/tiny.yaml");
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // MLP weights of 256 x 1024 fp32 gradients: 1 MiB each, a bucket of their own
    const io::Recipe recipe = io::parse_recipe(
        text, "tiny.yaml",
        {"model.dim=256", "model.heads=4", "model.ffn_hidden=1024", "model.bp=5", "distributed.bucket_mb=1",
         "runtime.recompute=" + recompute, "runtime.device=cpu", "train.steps=2", "schedule.name=constant",
         "batch.global_tokens=128", "eval.every=0", "eval.exact_match=0", "log.every=1"});
    const fs::path run = testing::scratch_dir("recompute_buckets_" + recompute);
    Trainer(make_context(recipe, run)).run();
    const std::vector<double> logged = testing::logged_losses(run);
    fs::remove_all(run);
    return logged;
  };
  const std::vector<double> kept = losses("none");
  ASSERT_EQ(kept.size(), 2u);
  const std::vector<double> recomputed = losses("mlp");
  ASSERT_EQ(recomputed.size(), 2u);
  EXPECT_NEAR(recomputed[1], kept[1], 1e-9);
}

// Setting up a run writes nothing, so input it rejects touches no run directory; the trainer then
// saves the data's tokenizer there. A task without held-out examples has no evaluation.
TEST(Trainer, TheContextWritesNothingAndTheTrainerSavesTheTokenizer) {
  const fs::path run = ponder::testing::scratch_dir("trainer_context") / "run";
  TrainContext ctx = make_context(io::parse_recipe(kRecipe, "r.yaml"), run);
  EXPECT_FALSE(fs::exists(run));
  EXPECT_NE(ctx.evaluation, nullptr);
  Trainer t(std::move(ctx));
  EXPECT_TRUE(fs::exists(run / "tokenizer" / "char_tokenizer.json"));
  EXPECT_EQ(make_context(io::parse_recipe(kRecipe, "r.yaml", {"data.task_eval_examples=0"}), run).evaluation, nullptr);
  fs::remove_all(run.parent_path());
}

TEST(Trainer, MetricsHoldTheNamedFields) {
  io::Recipe recipe = io::parse_recipe(kRecipe, "r.yaml", {"train.steps=2", "schedule.name=constant"});
  fs::path run = testing::scratch_dir("metrics");
  Trainer t(make_context(recipe, run));
  t.run();
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  std::getline(in, line);
  auto first = nlohmann::json::parse(line);
  for (const char* key : {"step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "skipped_steps"})
    EXPECT_TRUE(first.contains(key)) << key;
  bool saw_eval = false;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("eval.loss")) {
      saw_eval = true;
      EXPECT_TRUE(j.contains("eval.exact_match"));
      EXPECT_GE(j["eval.exact_match"].get<double>(), 0.0);
      EXPECT_LE(j["eval.exact_match"].get<double>(), 1.0);
    }
  }
  EXPECT_TRUE(saw_eval);
  fs::remove_all(run);
}

}  // namespace
}  // namespace ponder::train
