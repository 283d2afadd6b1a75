#include "train/plan.h"

#include <gtest/gtest.h>

#include "models/transformer/transformer.h"

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
  EXPECT_DOUBLE_EQ(p.memory.total(), 2 * n + n + 4 * n + 3 * n + p.memory.activations + 2 * n);
  EXPECT_EQ(p.tokens, 1000 * 4096);
  EXPECT_DOUBLE_EQ(p.hours, 4096000.0 / (50000.0 * 4) / 3600.0);
  EXPECT_DOUBLE_EQ(p.price, p.hours * 4 * 2.0);
  std::string text = format_plan(r, o, p);
  EXPECT_NE(text.find("hours on 4 GPU(s)"), std::string::npos) << text;
}

TEST(Plan, RecomputationLeavesOnlyTheNormsActivations) {
  // per token and layer, bf16: norm inputs/outputs 4d, attention internals 8d, MLP internals 4 ffn;
  // plus the LM head's logits chunk, the same in all three.
  const double d = 64, ffn = 160, micro = 1024, layers = 3;
  auto activations = [&](const char* recompute) {
    io::Recipe r = io::parse_recipe(kRecipe, "r.yaml", {std::string("runtime.recompute=") + recompute});
    return make_plan(r, PlanOptions{}).memory.activations;
  };
  const double none = activations("none"), mlp = activations("mlp"), both = activations("attention_mlp");
  EXPECT_DOUBLE_EQ(none - mlp, micro * layers * 2 * 4 * ffn);
  EXPECT_DOUBLE_EQ(mlp - both, micro * layers * 2 * 8 * d);
  io::Recipe r = io::parse_recipe(kRecipe, "r.yaml", {"runtime.recompute=mlp"});
  const std::string text = format_plan(r, PlanOptions{}, make_plan(r, PlanOptions{}));
  EXPECT_NE(text.find("recompute mlp"), std::string::npos) << text;
}

}  // namespace
}  // namespace ponder::train
