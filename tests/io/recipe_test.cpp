#include "io/recipe.h"

#include <gtest/gtest.h>

#include "support/test_util.h"

namespace ponder::io {
namespace {

const char* kGood = R"(model:
  family: transformer
  vocab_size: 32
  dim: 64
  layers: 2
  heads: 4
data:
  task: sort
  seq_len: 64
optim:
  name: adamw
  lr: 3.0e-3
train:
  steps: 100
batch:
  global_tokens: 1024
  micro_tokens: 512
)";

Recipe parse(const std::string& yaml, const std::vector<std::string>& sets = {}, int64_t world = 1) {
  return parse_recipe(yaml, "r.yaml", sets, world);
}

TEST(Recipe, ReadsValuesAndDefaults) {
  Recipe r = parse(kGood);
  EXPECT_EQ(r.family, "transformer");
  auto& m = std::get<models::TransformerConfig>(r.model);
  EXPECT_EQ(m.vocab_size, 32);
  EXPECT_EQ(m.heads, 4);
  EXPECT_EQ(r.optim.lr, 3e-3);
  EXPECT_EQ(r.optim.beta2, 0.95);  // default
  EXPECT_EQ(r.train.steps, 100);
  EXPECT_EQ(r.rows_per_micro_batch(), 8);
  EXPECT_EQ(r.accumulation(), 2);
  EXPECT_EQ(r.runtime.device, "auto");
}

TEST(Recipe, ResolvedRecipeHoldsEveryValueAndReadsBackTheSame) {
  Recipe r = parse(kGood);
  EXPECT_NE(r.resolved_yaml.find("beta2: 0.95"), std::string::npos) << r.resolved_yaml;
  EXPECT_NE(r.resolved_yaml.find("micro_tokens: 512"), std::string::npos);
  Recipe again = parse(r.resolved_yaml);
  EXPECT_EQ(again.resolved_yaml, r.resolved_yaml);
}

TEST(Recipe, OverridesAreValidatedTheSameWay) {
  Recipe r = parse(kGood, {"optim.lr=1e-4", "train.steps=7", "eval.every=3"});
  EXPECT_EQ(r.optim.lr, 1e-4);
  EXPECT_EQ(r.train.steps, 7);
  EXPECT_EQ(r.eval.every, 3);
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"optim.lr=fast"}); }),
            "optim.lr: expected a positive number, got \"fast\" (from --set)");
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"optim.lrr=1"}); }),
            "unknown key optim.lrr (from --set); did you mean \"lr\"?");
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"optim.lr"}); }),
            "--set expects key.path=value, got \"optim.lr\"");
  // An empty number is a mistake; an empty text means none.
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"model.dim="}); }),
            "model.dim: expected a positive integer, got nothing (from --set)");
  EXPECT_TRUE(parse(kGood, {"data.eval="}).data.eval.empty());
}

TEST(Recipe, RecomputationIsOffByDefaultAndValidated) {
  EXPECT_EQ(parse(kGood).runtime.recompute, "none");
  EXPECT_EQ(parse(kGood, {"runtime.recompute=attention_mlp"}).runtime.recompute, "attention_mlp");
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"runtime.recompute=all"}); }),
            "runtime.recompute: expected one of none, elementwise, mlp, attention_mlp, auto, got \"all\" (from --set)");
  Recipe r = parse(kGood, {"runtime.recompute=auto"});
  EXPECT_TRUE(r.runtime.recompute_auto());
  EXPECT_EQ(testing::error_message<ValueError>([&] { r.recompute(); }),
            "runtime.recompute is auto and has not been chosen yet (train::resolve_by_memory does it)");
  EXPECT_EQ(parse(kGood, {"runtime.recompute=mlp"}).recompute(), nn::Recompute::mlp);
}

TEST(Recipe, CudaGraphsAreOnByDefaultAndValidated) {
  EXPECT_TRUE(parse(kGood).runtime.cuda_graph);
  EXPECT_FALSE(parse(kGood, {"runtime.cuda_graph=false"}).runtime.cuda_graph);
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"runtime.cuda_graph=often"}); }),
            "runtime.cuda_graph: expected true or false, got \"often\" (from --set)");
}

TEST(Recipe, AutoMicroBatchIsLeftForTheRunToChoose) {
  Recipe r = parse(kGood, {"batch.micro_tokens=auto"});
  EXPECT_TRUE(r.batch.micro_auto());
  EXPECT_NE(r.resolved_yaml.find("micro_tokens: auto"), std::string::npos) << r.resolved_yaml;
  EXPECT_EQ(testing::error_message<ValueError>([&] { r.accumulation(); }),
            "batch.micro_tokens is auto and has not been chosen yet (train::resolve_by_memory does it)");
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"batch.micro_tokens=automatic"}); }),
            "batch.micro_tokens: expected a positive integer or auto, got \"automatic\" (from --set)");
  // whole rows on every rank: 1024 tokens are 16 rows of 64, which 3 ranks cannot share
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"batch.micro_tokens=auto"}, /*world=*/3); }),
            "batch.global_tokens: 1024 is not a multiple of data.seq_len × world size (64 × 3) (line 16)");
}

TEST(Recipe, TheLossSpikeGuardIsOffByDefaultAndValidated) {
  EXPECT_EQ(parse(kGood).train.spike_zscore, 0.0);
  Recipe r = parse(kGood, {"train.spike_zscore=4.5", "train.spike_window=20"});
  EXPECT_EQ(r.train.spike_zscore, 4.5);
  EXPECT_EQ(r.train.spike_window, 20);
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"train.spike_zscore=-1"}); }),
            "train.spike_zscore: expected a non-negative number, got \"-1\" (from --set)");
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"train.spike_window=1"}); }),
            "train.spike_window: expected an integer in [2, 100000], got \"1\" (from --set)");
}

TEST(Recipe, TrainTokensDeriveTheSteps) {
  Recipe r = parse(kGood, {"train.steps=0", "train.tokens=10000"});
  EXPECT_EQ(r.train.steps, 10);  // ceil(10000 / 1024)
}

// Each bad recipe with the one line it must produce.
TEST(Recipe, BadRecipesAreRejectedWithTheKeyAndLine) {
  struct Case {
    std::string from, to, message;
  };
  const Case cases[] = {
      {"  lr: 3.0e-3", "  lr: fast", "optim.lr: expected a positive number, got \"fast\" (line 12)"},
      {"  lr: 3.0e-3", "  lr: -1", "optim.lr: expected a positive number, got \"-1\" (line 12)"},
      {"  lr: 3.0e-3", "  lr: .inf", "optim.lr: expected a positive number, got \".inf\" (line 12)"},
      {"  lr: 3.0e-3", "  lr: ~", "optim.lr: expected a positive number, got nothing (line 12)"},
      {"  heads: 4", "  hedas: 4", "unknown key model.hedas (line 6); did you mean \"heads\"?"},
      {"optim:", "optimizer:", "unknown key optimizer (line 10); did you mean \"optim\"?"},
      {"  family: transformer", "  family: gpt", "model.family: expected one of transformer, hrm_text, attractor, sst, got \"gpt\" (line 2)"},
      {"  heads: 4", "  heads: 5", "model.heads: 5 heads do not divide dim 64 (line 6)"},
      {"  layers: 2", "  layers: two", "model.layers: expected a positive integer, got \"two\" (line 5)"},
      {"  layers: 2", "  layers: [1, 2]", "model.layers: expected a positive integer, got a list (line 5)"},
      {"  micro_tokens: 512", "  micro_tokens: 500", "batch.micro_tokens: 500 is not a multiple of data.seq_len 64 (line 17)"},
      {"  global_tokens: 1024", "  global_tokens: 1280",
       "batch.global_tokens: 1280 is not a multiple of batch.micro_tokens × world size (512 × 1) (line 16)"},
      {"  steps: 100", "  tokens: 100\n  steps: 100", "train.steps: give exactly one of train.steps and train.tokens (line 15)"},
      {"  task: sort", "  task: sort\n  seq_len2: 3", "unknown key data.seq_len2 (line 9); did you mean \"seq_len\"?"},
      {"  name: adamw", "  name: adam", "optim.name: expected one of adamw, adam_atan2, sgd, muon, got \"adam\" (line 11)"},
      {"  vocab_size: 32", "  vocab_size: 32\n  vocab_size: 33", "duplicate key model.vocab_size (line 4)"},
  };
  for (const Case& c : cases) {
    std::string yaml = kGood;
    auto at = yaml.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    yaml.replace(at, c.from.size(), c.to);
    std::string message = testing::error_message<ConfigError>([&] { parse(yaml); });
    EXPECT_EQ(message.substr(0, c.message.size()), c.message) << "full message: " << message;
  }
}

TEST(Recipe, MuonHasItsOwnDefaultsAndKeys) {
  Recipe r = parse(kGood, {"optim.name=muon", "optim.lr=0.03", "optim.adam_lr=1e-3"});
  EXPECT_EQ(r.optim.name, "muon");
  EXPECT_EQ(r.optim.lr, 0.03);
  EXPECT_EQ(r.optim.adam_lr, 1e-3);
  EXPECT_EQ(r.optim.momentum, 0.95);
  EXPECT_TRUE(r.optim.nesterov);
  EXPECT_EQ(r.optim.ns_steps, 5);
  std::string muon = kGood;
  muon.replace(muon.find("  name: adamw\n  lr: 3.0e-3"), 26, "  name: muon");
  Recipe defaults = parse(muon);
  EXPECT_EQ(defaults.optim.lr, 0.02);
  EXPECT_EQ(defaults.optim.adam_lr, 3e-4);
  Recipe sgd = parse(kGood, {"optim.name=sgd"});
  EXPECT_EQ(sgd.optim.momentum, 0.9);  // sgd keeps its own defaults
  EXPECT_FALSE(sgd.optim.nesterov);
  EXPECT_EQ(sgd.resolved_yaml.find("ns_steps"), std::string::npos);
}

TEST(Recipe, BadMuonSettingsNameTheKey) {
  auto message = [](std::vector<std::string> sets) {
    sets.insert(sets.begin(), "optim.name=muon");
    return testing::error_message<ConfigError>([&] { parse(kGood, sets); });
  };
  EXPECT_EQ(message({"optim.momentum=1"}), "optim.momentum: expected a number in [0, 0.999999], got \"1\" (from --set)");
  EXPECT_EQ(message({"optim.momentum=-0.5"}),
            "optim.momentum: expected a number in [0, 0.999999], got \"-0.5\" (from --set)");
  EXPECT_EQ(message({"optim.ns_steps=0"}), "optim.ns_steps: expected a positive integer, got \"0\" (from --set)");
  EXPECT_EQ(message({"optim.adam_lr=0"}), "optim.adam_lr: expected a positive number, got \"0\" (from --set)");
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(kGood, {"optim.ns_steps=3"}); }),
            "optim.ns_steps: only optim.name muon reads it (the name is adamw) (from --set)");
}

TEST(Recipe, MissingRequiredKeysAndSectionsOfTheWrongType) {
  EXPECT_EQ(testing::error_message<ConfigError>([] { parse("model: {family: transformer}"); }),
            "model.vocab_size: required, expected a positive integer (line 1)");
  EXPECT_EQ(testing::error_message<ConfigError>([] { parse("model: 3"); }),
            "model: expected a mapping, got \"3\" (line 1)");
  EXPECT_EQ(testing::error_message<ConfigError>([] { parse("- 1\n- 2"); }),
            "r.yaml: expected a mapping of sections at the top level");
  std::string no_data = kGood;
  no_data.replace(no_data.find("  task: sort\n"), 13, "");
  EXPECT_EQ(testing::error_message<ConfigError>([&] { parse(no_data); }).substr(0, 30), "data.train: give either data.t");
}

TEST(Recipe, WorldSizeEntersTheBatchArithmetic) {
  Recipe r = parse(kGood, {"batch.micro_tokens=256"}, /*world=*/2);
  EXPECT_EQ(r.accumulation(), 2);
  EXPECT_NE(testing::error_message<ConfigError>([&] { parse(kGood, {}, /*world=*/3); }).find("world size"),
            std::string::npos);
}

}  // namespace
}  // namespace ponder::io
