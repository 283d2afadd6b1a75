#include "models/hrm_text/hrm_text.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "data/packing.h"
#include "io/recipe.h"
#include "models/learning.h"
#include "ops/ops.h"
#include "support/test_util.h"
#include "train/family.h"
#include "train/plan.h"

namespace ponder::models {
namespace {

HrmTextConfig tiny() {
  return {.vocab_size = 16, .dim = 32, .layers_per_stack = 2, .heads = 2, .ffn_hidden = 64, .seed = 5};
}

TEST(HrmText, BackpropDepthWarmsUpFromMinToMax) {
  const BackpropSchedule s{};  // 2 → 5 over the first 20% of the steps
  EXPECT_EQ(s.depth(0, 1000), 2);
  EXPECT_EQ(s.depth(66, 1000), 2);   // progress 0.33: 2 + floor(0.99)
  EXPECT_EQ(s.depth(67, 1000), 3);   // progress 0.335: 2 + floor(1.005)
  EXPECT_EQ(s.depth(133, 1000), 3);
  EXPECT_EQ(s.depth(134, 1000), 4);
  EXPECT_EQ(s.depth(199, 1000), 4);
  EXPECT_EQ(s.depth(200, 1000), 5);
  EXPECT_EQ(s.depth(999, 1000), 5);
  EXPECT_EQ((BackpropSchedule{.warmup_ratio = 0.0}.depth(0, 1000)), 5);
  EXPECT_EQ((BackpropSchedule{.fixed = 3}.depth(999, 1000)), 3);
}

TEST(HrmText, GradientCallsAreTheTrailingOnes) {
  // bp = H_bp + L_bp with H_bp = min(H, bp − 1): the last H_bp of 2 H calls, the last L_bp of 6 L calls.
  struct Case {
    int64_t bp, h_bp, l_bp;
  };
  for (const Case& c : {Case{2, 1, 1}, Case{3, 2, 1}, Case{5, 2, 3}, Case{8, 2, 6}}) {
    const GradientCalls calls(2, 3, c.bp);
    EXPECT_EQ(calls.h_bp, c.h_bp) << "bp " << c.bp;
    EXPECT_EQ(calls.l_bp, c.l_bp) << "bp " << c.bp;
    for (int64_t k = 0; k < 6; ++k) EXPECT_EQ(calls.records_l_call(k), k >= 6 - c.l_bp) << "bp " << c.bp << " L call " << k;
    for (int64_t i = 0; i < 2; ++i) EXPECT_EQ(calls.records_h_call(i), i >= 2 - c.h_bp) << "bp " << c.bp << " H call " << i;
  }
  EXPECT_THROW(GradientCalls(2, 3, 1), ValueError);
  EXPECT_THROW(GradientCalls(2, 3, 9), ValueError);
}

TEST(HrmText, ParameterNamesFollowHrmTextForCausalLM) {
  HrmText m(tiny());
  std::vector<std::string> names;
  for (auto& [n, p] : m.named_parameters()) names.push_back(n);
  std::vector<std::string> expected = {"model.embed_tokens.weight", "lm_head.weight"};
  for (const char* stack : {"L_module", "H_module"}) {
    for (int i = 0; i < 2; ++i) {
      const std::string layer = std::string("model.") + stack + ".layers." + std::to_string(i) + ".";
      for (const char* s : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                            "self_attn.o_proj.weight", "self_attn.gate_proj.weight", "mlp.gate_proj.weight",
                            "mlp.up_proj.weight", "mlp.down_proj.weight"})
        expected.push_back(layer + s);
    }
  }
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);  // MagicNorm and the block norms are parameter-free
  std::vector<std::string> buffers;
  for (auto& [n, b] : m.named_buffers()) buffers.push_back(n);
  EXPECT_EQ(buffers, std::vector<std::string>{"model.z_L_init"});
  const nn::NamedTensors state = m.state_dict();
  EXPECT_TRUE(std::any_of(state.begin(), state.end(), [](const auto& e) { return e.first == "model.z_L_init"; }));
}

TEST(HrmText, InitialisationFollowsThePaper) {
  HrmTextConfig c = tiny();
  c.dim = 256;
  c.heads = 2;
  c.ffn_hidden = 512;
  c.vocab_size = 512;
  HrmText m(c);
  const nn::NamedTensors list = m.state_dict();
  const std::map<std::string, Tensor> state(list.begin(), list.end());
  auto std_of = [](const Tensor& t) { return std::sqrt(mean(t * t).item<double>()); };
  // Truncated normal (fmod 3, × 1.0148) keeps the nominal std within about a percent.
  auto expect_std = [&](const std::string& name, double expected) {
    EXPECT_NEAR(std_of(state.at(name)), expected, 0.03 * expected) << name;
  };
  expect_std("model.embed_tokens.weight", 1.0 / 16);                 // 1/sqrt(d)
  expect_std("model.L_module.layers.0.self_attn.q_proj.weight", 1.0 / 16);  // LeCun: 1/sqrt(fan_in)
  expect_std("model.H_module.layers.1.self_attn.o_proj.weight", 1.0 / 16);
  expect_std("model.H_module.layers.0.mlp.down_proj.weight", 1.0 / std::sqrt(512.0));
  expect_std("lm_head.weight", 1.0 / 16);
  expect_std("model.z_L_init", 1.0);
  EXPECT_DOUBLE_EQ(m.model->embed_tokens->scale, 16.0);  // sqrt(d)
}

TEST(HrmText, StatesAreUnitRmsAfterEveryCallAndLogitsFinite) {
  HrmText m(tiny());
  auto batch = data::pack_rows({{{{1, 2, 3}, {4, 5}}, {{6}, {7, 8, 9}}}}, {.row_len = 10});
  NoGrad no_grad;
  Tensor logits = m.logits(batch);
  EXPECT_EQ(logits.shape(), (Shape{10, 16}));
  Tensor z = m.model->H_module->forward(m.model->embed_tokens->forward(batch.tokens), batch.positions, batch.attn);
  Tensor rms = sqrt(mean(z * z, {-1}));
  EXPECT_LT(amax(abs(rms - 1.0)).item<double>(), 1e-4);  // MagicNorm at the module exit
}

TEST(HrmText, EvalDepthsRunFewerAndMoreCyclesThanTrained) {
  HrmText m(tiny());  // trained at H2 L3: 8 stack calls
  std::vector<std::string> labels;
  std::vector<double> compute;
  for (const EvalDepth& d : m.eval_depths()) {
    labels.push_back(d.label);
    compute.push_back(d.compute);
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"H1L1", "H2L2", "H2L3", "H2L6", "H4L3", "H4L6"}));
  EXPECT_EQ(compute, (std::vector<double>{2 / 8.0, 6 / 8.0, 1.0, 14 / 8.0, 16 / 8.0, 28 / 8.0}));

  auto batch = data::pack_rows({{{{1, 2, 3}, {4, 5}}, {{6}, {7, 8, 9}}}}, {.row_len = 10});
  NoGrad no_grad;
  const Tensor trained = m.logits(batch);
  std::map<std::string, Tensor> at;
  for (const std::string& label : labels) {
    m.set_eval_depth(label);
    at[label] = m.logits(batch);
  }
  EXPECT_EQ(amax(abs(at["H2L3"] - trained)).item<double>(), 0.0);  // the trained cycles are the trained model
  for (const char* other : {"H1L1", "H2L2", "H2L6", "H4L3", "H4L6"}) {
    EXPECT_GT(amax(abs(at[other] - trained)).item<double>(), 1e-3) << other;
  }
  m.set_eval_depth("");
  EXPECT_EQ(amax(abs(m.logits(batch) - trained)).item<double>(), 0.0);
  EXPECT_NE(testing::error_message<ValueError>([&] { m.set_eval_depth("H9L9"); })
                .find("no evaluation depth 'H9L9' (known: H1L1, H2L2, H2L3, H2L6, H4L3, H4L6)"),
            std::string::npos);
}

TEST(HrmText, UnrecordedCallsKeepNoActivations) {
  // The autograd graph of a forward at bp holds only the recorded calls: the number of nodes grows
  // with bp by one stack call each.
  HrmText m(tiny());
  auto batch = data::pack_rows({{{{1, 2, 3}, {4, 5}}}}, {.row_len = 5});
  std::vector<int64_t> nodes;
  for (int64_t bp = 2; bp <= 8; ++bp) {
    m.set_backprop_depth(bp);
    nodes.push_back(testing::graph_size(m.loss_sum(batch)));
  }
  // bp 2 -> 3 records the first H call, and with it the embedding lookup that feeds it (unreached
  // at bp 2); every further step records one more L call, a stack call of the same size.
  const int64_t stack_call = nodes[2] - nodes[1];
  EXPECT_GT(stack_call, 0);
  EXPECT_GT(nodes[1] - nodes[0], stack_call);
  for (size_t i = 2; i + 1 < nodes.size(); ++i) EXPECT_EQ(nodes[i] - nodes[i - 1], stack_call) << "bp " << i + 2;
  // bp 8 records the first L call, whose state is z_L_init broadcast over the positions: its
  // addition cannot run fused with the first norm, so it adds one node more.
  EXPECT_EQ(nodes.back() - nodes[nodes.size() - 2], stack_call + 1);
  EXPECT_THROW(m.set_backprop_depth(9), ValueError);
}

TEST(HrmText, CostMatchesTheModelAndThePublishedXl) {
  HrmTextConfig c = tiny();
  int64_t counted = 0;
  for (auto& [n, p] : HrmText(c).named_parameters()) counted += p.numel();
  EXPECT_EQ(train::model_cost(io::ModelConfig(c), 64).parameters, counted);

  const HrmTextConfig xl{.vocab_size = 65536, .dim = 1536, .layers_per_stack = 16, .heads = 12};
  const train::ModelCost cost = train::model_cost(io::ModelConfig(xl), 4096);
  EXPECT_EQ(cost.parameters, 1182793728);  // the published count
  // By hand: 30,670,848 matmul weights per block, 16 blocks: 2·W + 4·T·d attention per call;
  // 8 calls forward, 5 backward (×2), the 65536×1536 LM head ×3 → 25.5 GFLOP per token.
  const double block_call = 16 * (2 * 30670848.0 + 4 * 4096.0 * 1536);
  const double head = 2 * 65536.0 * 1536;
  EXPECT_DOUBLE_EQ(cost.forward_flops_per_token, 8 * block_call + head);
  EXPECT_DOUBLE_EQ(cost.train_flops_per_token, 8 * block_call + 10 * block_call + 3 * head);
  EXPECT_NEAR(cost.train_flops_per_token / 1e9, 25.5, 0.05);
}

std::string recipe_text(const std::string& name) {
  std::ifstream f(std::string(PONDER_SOURCE_DIR) + "/recipes/hrm_text/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(HrmText, RecipesValidateAndBadOnesNameTheKey) {
  for (const char* r : {"tiny.yaml", "b.yaml", "l.yaml", "xl_1b_16gpu.yaml"}) {
    EXPECT_NO_THROW(io::parse_recipe(recipe_text(r), r)) << r;
  }
  const io::Recipe xl = io::parse_recipe(recipe_text("xl_1b_16gpu.yaml"), "xl");
  EXPECT_EQ(xl.batch.global_tokens, 196608);
  // the published 3 rows per GPU on 16 H100s, as they are, and so on a single one (3 of its 48 rows
  // per step at a time); on a card of 70 GiB, with the elementwise products recomputed
  for (auto [gpus, gib, rows, recompute] :
       {std::tuple{16, 79.0, 3, "none"}, std::tuple{1, 79.0, 3, "none"}, std::tuple{1, 70.0, 3, "elementwise"}}) {
    const io::Recipe r = io::parse_recipe(recipe_text("xl_1b_16gpu.yaml"), "xl", {}, gpus);
    const train::MemoryChoice c = train::choose_by_memory(r, {.gpus = gpus}, gib * (1 << 30));
    EXPECT_EQ(c.micro_tokens, rows * 4096) << gpus << " GPUs of " << gib << " GiB";
    EXPECT_EQ(c.recompute, recompute) << gpus << " GPUs of " << gib << " GiB";
  }
  EXPECT_EQ(xl.data.seq_len, 4096);
  struct Case {
    std::vector<std::string> sets;
    std::string message;
  };
  const Case cases[] = {
      {{"model.H_cycles=0"}, "model.H_cycles: must be at least 1, got 0"},
      {{"model.L_cycles=0"}, "model.L_cycles: must be at least 1, got 0"},
      {{"model.bp_min=4", "model.bp_max=3"}, "model.bp_min: 4 is larger than bp_max 3"},
      {{"model.bp_max=9"}, "model.bp_max: 9 exceeds the 8 recurrent calls"},
      {{"model.bp=1"}, "model.bp: 1 is outside 2..8"},
      {{"model.heads=5"}, "model.heads: 5 heads do not divide dim 128"},
      {{"data.mask=causal"}, "data.mask: causal does not match model.prefix_lm"},
      {{"model.prefix_lm=false", "data.mask=prefix_lm"}, "data.mask: prefix_lm does not match model.prefix_lm"},
  };
  for (const Case& c : cases) {
    const std::string message =
        testing::error_message<io::ConfigError>([&] { io::parse_recipe(recipe_text("tiny.yaml"), "tiny", c.sets); });
    EXPECT_EQ(message.substr(0, c.message.size()), c.message) << "full message: " << message;
  }
  EXPECT_EQ(io::parse_recipe(recipe_text("tiny.yaml"), "tiny", {"model.prefix_lm=false"}).data.mask, "causal");
}

// The recurrence trains as the paper does it: AdamATan2, the backprop depth warming up from 2 to 4
// calls while the model learns.
TEST(HrmText, LearnsToReverseASequenceOnTheCpu) {
  HrmText model({.vocab_size = 12, .dim = 64, .layers_per_stack = 1, .heads = 2, .ffn_hidden = 128, .h_cycles = 2,
                 .l_cycles = 2, .bp = {.bp_min = 2, .bp_max = 4, .warmup_ratio = 0.2}, .seed = 1});
  optim::AdamATan2 opt(optim::decay_groups(model.named_parameters(), 0.01), {.lr = 5e-3, .beta2 = 0.95});
  const double loss = ponder::testing::train_reversal(
      model, opt, {.steps = 300, .peak_lr = 5e-3, .warmup_steps = 20, .samples_per_row = 2});
  EXPECT_LT(loss, 1.0);  // chance level is log(10) = 2.3; 0.60 measured (a 2-layer baseline: 1.10)
  EXPECT_EQ(model.backprop_depth(), 4);
}

}  // namespace
}  // namespace ponder::models
