#include "train/trainer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "ops/ops.h"
#include "optim/muon.h"
#include "support/python.h"
#include "support/resume_check.h"
#include "support/test_util.h"
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
