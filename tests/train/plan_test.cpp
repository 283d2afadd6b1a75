#include "train/plan.h"

#include <gtest/gtest.h>

#include <functional>

#include "data/packing.h"
#include "models/transformer/transformer.h"
#include "tensor/allocator.h"
#include "support/test_util.h"

namespace ponder::train {
namespace {

const char* kRecipe = R"(model: {family: transformer, vocab_size: 1000, dim: 64, layers: 3, heads: 4, kv_heads: 2, ffn_hidden: 160}
data: {task: sort, seq_len: 256}
optim: {name: adamw, ema: 0.999}
train: {steps: 1000}
batch: {global_tokens: 4096, micro_tokens: 1024}
distributed: {zero: 1}
)";

TEST(Plan, ParametersMatchTheBuiltModel) {
  io::Recipe r = io::parse_recipe(kRecipe, "r.yaml");
  auto m = std::make_shared<models::Transformer>(std::get<models::TransformerConfig>(r.model));
  EXPECT_EQ(model_cost(r.model, 256).parameters, m->num_parameters());
}

TEST(Plan, NumbersAgreeWithAHandCalculation) {
  io::Recipe r = io::parse_recipe(kRecipe, "r.yaml", {}, 4);
  PlanOptions o{.gpus = 4, .tokens_per_s_per_gpu = 50000, .gpu_hour_price = 2.0};
  Plan p = make_plan(r, o);
  // per layer: q 64x64, k/v 64x32 each, o 64x64 -> 12288; MLP 3*64*160 = 30720; 2 norms 128.
  const double layer = 12288 + 30720 + 128;
  EXPECT_EQ(p.cost.parameters, int64_t(3 * layer + 64 + 2 * 1000 * 64));
  // forward: 2 * (matmul params incl. LM head) + attention 4*T*d per layer
  const double fwd = 2 * (3 * (12288 + 30720) + 1000 * 64) + 3 * 4.0 * 256 * 64;
  EXPECT_DOUBLE_EQ(p.cost.forward_flops_per_token, fwd);
  EXPECT_DOUBLE_EQ(p.cost.train_flops_per_token, 3 * fwd);
  const double n = double(p.cost.parameters);
  EXPECT_DOUBLE_EQ(p.memory.weights, 2 * n);
  EXPECT_DOUBLE_EQ(p.memory.master, 4 * n / 4);            // ZeRO-1 over 4 GPUs
  EXPECT_DOUBLE_EQ(p.memory.optimizer, (8 * n + 4 * n) / 4);  // m, v and the EMA, sharded
  EXPECT_DOUBLE_EQ(p.memory.gradients, 4 * n);
  EXPECT_DOUBLE_EQ(p.memory.gather, 2 * n);  // the bf16 copy ZeRO-1 all-gathers every parameter into
  EXPECT_DOUBLE_EQ(p.memory.shards, (4 + 2) * n / 4);  // the reduce-scatter's fp32 output, the owned bf16 parameters
  // the loss: a chunk of 1024 tokens' bf16 logits, bf16 dh and f32 losses and scales per token, f32 dW
  EXPECT_DOUBLE_EQ(p.memory.loss, 2 * 1024 * 1000 + (2 * 64 + 8) * 1024 + 4 * 1000 * 64);
  EXPECT_DOUBLE_EQ(p.memory.total(),
                   2 * n + n + 4 * n + 3 * n + p.memory.activations + p.memory.loss + 2 * n + 1.5 * n);
  EXPECT_EQ(p.tokens, 1000 * 4096);
  EXPECT_DOUBLE_EQ(p.hours, 4096000.0 / (50000.0 * 4) / 3600.0);
  EXPECT_DOUBLE_EQ(p.price, p.hours * 4 * 2.0);
  std::string text = format_plan(r, o, p);
  EXPECT_NE(text.find("hours on 4 GPU(s)"), std::string::npos) << text;
}

const char* kHrmText = R"(model: {family: hrm_text, vocab_size: 1000, dim: 64, layers_per_stack: 3, heads: 4, ffn_hidden: 160, bp: 2}
data: {task: sort, seq_len: 256}
train: {steps: 10}
batch: {global_tokens: 256})";

// One 256-token row of four samples.
models::PackedBatch one_row() {
  std::vector<data::Sample> row(4);
  for (data::Sample& sample : row) {
    sample.instruction.assign(16, 7);
    sample.response.assign(48, 9);
  }
  return data::pack_rows({row}, {.row_len = 256});
}

// Bytes that `forward` of `recipe`'s model (bf16) leaves held for backward.
double kept_bytes(const io::Recipe& recipe, const std::function<Tensor(models::LanguageModel&)>& forward) {
  auto model = build_training_model(recipe);
  model->to(DType::bf16);
  const int64_t before = memory_stats(Device::cpu()).current_bytes;
  Tensor out = forward(*model);
  return double(memory_stats(Device::cpu()).current_bytes - before);
}

// Bytes per token that the training loss of `recipe`'s model keeps, on one row.
double kept_bytes_per_token(const io::Recipe& recipe) {
  return kept_bytes(recipe, [](models::LanguageModel& m) { return m.loss_sum(one_row()); }) / 256;
}

// The training loss fuses the LM head: beyond what the model's features keep, it holds dh, the
// head's f32 dW and per-token f32 losses (a chunk of logits comes and goes), never the [tokens,
// vocabulary] logits and their gradient — ModelCost::loss_bytes less that chunk, up to the
// features tensor itself (which the features' measurement holds, and the loss frees where no op
// keeps it: the baseline's weighted final norm keeps its input) and the 0-d loss.
TEST(Plan, LossEstimateIsWhatTheFusedHeadHolds) {
  for (const char* yaml : {kRecipe, kHrmText}) {
    const io::Recipe r = io::parse_recipe(yaml, "r.yaml");
    const double loss = kept_bytes(r, [](models::LanguageModel& m) { return m.loss_sum(one_row()); });
    const double features = kept_bytes(r, [](models::LanguageModel& m) { return m.features(one_row()); });
    const ModelCost cost = model_cost(r.model, 256);
    EXPECT_NEAR(loss - features, cost.loss_bytes(256) - 2.0 * 256 * 1000, 256 * 64 * 2 + 16) << yaml;
    EXPECT_LT(loss - features, 256 * 1000 * 2) << yaml;  // less than the bf16 logits alone
  }
}

// One block's share of the activations (3 layers less 1, halved), measured and estimated: for the
// baseline (weighted norms) with and without the attention's output gate, and for HRM-Text
// (unweighted norms, which keep their outputs; 2 stack calls with backward).
TEST(Plan, ActivationEstimateIsWhatTheBlocksKeep) {
  const std::vector<std::pair<const char*, std::vector<std::string>>> models = {
      {kRecipe, {"model.attention_output_gate=false"}},
      {kRecipe, {"model.attention_output_gate=true"}},
      {kHrmText, {}}};
  for (const auto& [yaml, settings] : models) {
    const std::string layers_key = yaml == kHrmText ? "model.layers_per_stack=" : "model.layers=";
    for (const char* recompute : {"none", "elementwise", "mlp", "attention_mlp"}) {
      auto recipe = [&](int layers) {
        std::vector<std::string> overrides = settings;
        overrides.push_back("runtime.recompute=" + std::string(recompute));
        overrides.push_back(layers_key + std::to_string(layers));
        return io::parse_recipe(yaml, "r.yaml", overrides);
      };
      auto estimated = [&](int layers) {
        return model_cost(recipe(layers).model, 256, nn::parse_recompute(recompute)).activation_bytes_per_token;
      };
      const double measured_block = (kept_bytes_per_token(recipe(3)) - kept_bytes_per_token(recipe(1))) / 2;
      EXPECT_DOUBLE_EQ(measured_block, (estimated(3) - estimated(1)) / 2) << layers_key << recompute;
    }
  }
}

TEST(Plan, RecomputationLeavesOnlyTheNormsActivations) {
  // per token and layer, bf16: norm inputs/outputs 4d; the attention's rotated q, k (4 heads x 16),
  // v (2 kv heads x 16) and output; the MLP's gate, up and SwiGLU (3 ffn); plus fp32 statistics
  // and the LM head's logits chunk.
  const double d = 64, ffn = 160, micro = 1024, layers = 3;
  auto activations = [&](const char* recompute) {
    io::Recipe r = io::parse_recipe(kRecipe, "r.yaml", {std::string("runtime.recompute=") + recompute});
    return make_plan(r, PlanOptions{}).memory.activations;
  };
  const double none = activations("none"), products = activations("elementwise"), mlp = activations("mlp"),
               both = activations("attention_mlp");
  EXPECT_DOUBLE_EQ(none - products, micro * layers * 2 * ffn);  // the SwiGLU output (no attention gate here)
  EXPECT_DOUBLE_EQ(none - mlp, micro * layers * 2 * 3 * ffn);
  EXPECT_DOUBLE_EQ(mlp - both, micro * layers * (2 * (2 * d + 2 * d / 2) + 4 * 4));  // + the 4 heads' fp32 log-sum-exp
  io::Recipe r = io::parse_recipe(kRecipe, "r.yaml", {"runtime.recompute=mlp"});
  const std::string text = format_plan(r, PlanOptions{}, make_plan(r, PlanOptions{}));
  EXPECT_NE(text.find("recompute mlp"), std::string::npos) << text;
}

// The estimated total of `recipe` with a micro-batch of `rows` rows of 256 and `recompute`.
double estimate(io::Recipe recipe, const PlanOptions& o, int64_t rows, const std::string& recompute) {
  recipe.batch.micro_tokens = rows * 256;
  recipe.runtime.recompute = recompute;
  return make_plan(recipe, o).memory.total();
}

TEST(Plan, AutoMicroBatchTakesTheLargestShareThatFits) {
  // 4096 tokens on 2 ranks: 8 rows of 256 each, so the candidates are 8, 4, 2 and 1 rows
  io::Recipe r = io::parse_recipe(kRecipe, "r.yaml", {"batch.micro_tokens=auto"}, 2);
  const PlanOptions o{.gpus = 2};
  auto rows_for = [&](double available) { return choose_by_memory(r, o, available).micro_tokens / 256; };
  EXPECT_EQ(rows_for(estimate(r, o, 8, "none") / kUsableMemory), 8);
  // just short of four rows' estimate: two rows, the next divisor down (three do not divide 8)
  const double below_four = (estimate(r, o, 3, "none") + 1) / kUsableMemory;
  ASSERT_LT(below_four * kUsableMemory, estimate(r, o, 4, "none"));
  const MemoryChoice two = choose_by_memory(r, o, below_four);
  EXPECT_EQ(two.micro_tokens, 2 * 256);
  EXPECT_EQ(two.recompute, "none");
  EXPECT_DOUBLE_EQ(two.estimated_bytes, estimate(r, o, 2, "none"));
  EXPECT_EQ(describe(two, r).find("batch.micro_tokens auto: 512 tokens (2 rows) of 2048 per rank, estimated"), 0u);
  EXPECT_NE(testing::error_message<io::ConfigError>([&] { choose_by_memory(r, o, estimate(r, o, 1, "none")); })
                .find("batch.micro_tokens: auto, but one row of 256 tokens needs an estimated"),
            std::string::npos);
}

// runtime.recompute: auto takes the least recomputation with which the micro-batch reaches the
// rank's whole share here (2048 tokens, under kFillTokens), else the least with which one row fits.
TEST(Plan, AutoRecomputeIsTheLeastThatFillsTheMicroBatch) {
  io::Recipe r = io::parse_recipe(kRecipe, "r.yaml", {"batch.micro_tokens=auto", "runtime.recompute=auto"}, 2);
  const PlanOptions o{.gpus = 2};
  auto choice = [&](double fitted_bytes) {
    const MemoryChoice c = choose_by_memory(r, o, fitted_bytes / kUsableMemory);
    return std::pair{c.recompute, c.micro_tokens / 256};
  };
  using Choice = std::pair<std::string, int64_t>;
  EXPECT_EQ(choice(estimate(r, o, 8, "none")), Choice("none", 8));
  EXPECT_EQ(choice(estimate(r, o, 8, "none") - 1), Choice("elementwise", 8));
  EXPECT_EQ(choice(estimate(r, o, 8, "elementwise") - 1), Choice("mlp", 8));
  EXPECT_EQ(choice(estimate(r, o, 8, "mlp") - 1), Choice("attention_mlp", 8));
  // no level fills the share: no recomputation, with the largest micro-batch it fits (2 rows here,
  // where attention_mlp would fit 4)
  const double short_of_eight = estimate(r, o, 8, "attention_mlp") - 1;
  ASSERT_GE(short_of_eight, estimate(r, o, 4, "attention_mlp"));
  ASSERT_GE(short_of_eight, estimate(r, o, 2, "none"));
  ASSERT_LT(short_of_eight, estimate(r, o, 4, "none"));
  EXPECT_EQ(choice(short_of_eight), Choice("none", 2));
  ASSERT_LT(estimate(r, o, 1, "mlp"), estimate(r, o, 1, "none"));
  EXPECT_EQ(choice(estimate(r, o, 1, "mlp")), Choice("mlp", 1));
  EXPECT_NE(testing::error_message<io::ConfigError>([&] { choice(estimate(r, o, 1, "attention_mlp") - 1); })
                .find("one row of 256 tokens even with runtime.recompute attention_mlp needs an estimated"),
            std::string::npos);
  const MemoryChoice c = choose_by_memory(r, o, estimate(r, o, 8, "none") / kUsableMemory);
  EXPECT_NE(describe(c, r).find("rank, runtime.recompute auto: none, estimated"), std::string::npos) << describe(c, r);

  // a fixed micro-batch: the least recomputation that fits it
  io::Recipe fixed = io::parse_recipe(kRecipe, "r.yaml", {"batch.micro_tokens=1024", "runtime.recompute=auto"}, 2);
  const MemoryChoice mlp = choose_by_memory(fixed, o, (estimate(r, o, 4, "elementwise") - 1) / kUsableMemory);
  EXPECT_EQ(std::pair(mlp.recompute, mlp.micro_tokens), std::pair(std::string("mlp"), int64_t(1024)));
  EXPECT_EQ(describe(mlp, fixed).substr(0, 38), "runtime.recompute auto: mlp, estimated");
}

}  // namespace
}  // namespace ponder::train
