// SST v2's training forward against the same recurrence written in PyTorch (tests/parity/sst.py):
// logits, summed loss and every parameter's gradient, f32, on a packed PrefixLM batch — two-pass and
// sequential mode, either state, and co-training (frozen backbone, LoRA adapters).
#include <gtest/gtest.h>

#include <algorithm>

#include "data/packing.h"
#include "models/sst/sst.h"
#include "ops/ops.h"
#include "support/model_parity.h"
#include "support/test_util.h"

namespace ponder {
namespace {

data::Sample sample(std::vector<int32_t> inst, std::vector<int32_t> resp) { return {std::move(inst), std::move(resp)}; }

models::SstConfig tiny_config() {
  models::SstConfig c;
  c.vocab_size = 32;
  c.dim = 32;
  c.layers = 2;
  c.heads = 2;
  c.ffn_hidden = 48;
  c.seed = 5;
  // Wide blends, so that the streamed states weigh in the outputs well above f32 rounding.
  c.alpha_min = 0.1;
  c.alpha_max = 0.6;
  return c;
}

// Sets blend_theta (zeros at initialisation: one α for every channel) and every lora_B (zeros: the
// adapters would start as no-ops and lora_A would learn nothing) to random values. The adapters
// stay small next to their projections, as trained ones are: larger ones sharpen the attention
// until f32 rounding alone moves some gradients by 1e-5.
void randomise_blends_and_adapters(models::Sst& model) {
  NoGrad no_grad;
  uint64_t seed = 40;
  for (auto& [name, p] : model.named_parameters()) {
    if (name == "blend_theta") copy_(p, testing::random_tensor(p.shape(), ++seed, DType::f32));
    if (name.find(".lora_B.") != std::string::npos) copy_(p, testing::random_tensor(p.shape(), ++seed, DType::f32) * 0.2);
  }
}

// Returns the parameters the reference gives no gradient.
std::vector<std::string> expect_parity(const models::SstConfig& c, const std::string& name) {
  models::Sst model(c);
  randomise_blends_and_adapters(model);
  auto batch = data::pack_rows({{sample({1, 2, 3, 4}, {5, 6, 7}), sample({8, 9}, {10, 11, 12, 13})},
                                {sample({}, {3, 1, 4, 1, 5, 9, 2, 6}), sample({7}, {7, 7})}},
                               {.row_len = 12});
  const nn::AttentionConfig& attn = (*model.model->layers)[0].self_attn->config();
  const bool two_pass = c.mode == models::SstMode::two_pass;
  return testing::expect_model_parity(
      model, batch,
      {.script = "sst.py",
       .name = name,
       .metadata = {{"heads", std::to_string(c.heads)}, {"kv_heads", std::to_string(attn.kv_heads)},
                    {"head_dim", std::to_string(attn.head_dim)}, {"eps", std::to_string(c.norm_eps)},
                    {"theta", std::to_string(c.rope_theta)}, {"output_gate", c.attention_output_gate ? "1" : "0"},
                    {"layers", std::to_string(c.layers)}, {"tie_embeddings", c.tie_embeddings ? "1" : "0"},
                    {"alpha_min", std::to_string(c.alpha_min)}, {"alpha_max", std::to_string(c.alpha_max)},
                    {"mode", two_pass ? "two_pass" : "sequential"},
                    {"state_is_output", c.state_is_output ? "1" : "0"},
                    {"freeze_backbone", c.freeze_backbone ? "1" : "0"},
                    {"lora_scale", std::to_string(c.lora_rank > 0 ? c.lora_alpha / double(c.lora_rank) : 0.0)}},
       .extra_inputs = {}});
}

TEST(Parity, SstTwoPassTrainingMatchesPyTorch) {
  models::SstConfig c = tiny_config();
  EXPECT_TRUE(expect_parity(c, "sst_two_pass").empty());
  // The state is the layer output h' rather than the FFN branch m; GQA, gated attention output.
  c.state_is_output = true;
  c.kv_heads = 1;
  c.attention_output_gate = true;
  EXPECT_TRUE(expect_parity(c, "sst_two_pass_output_state").empty());
}

TEST(Parity, SstSequentialTrainingMatchesPyTorch) {
  models::SstConfig c = tiny_config();
  c.mode = models::SstMode::sequential;
  c.tie_embeddings = true;
  EXPECT_TRUE(expect_parity(c, "sst_sequential").empty());
}

TEST(Parity, SstCoTrainingWithLoraMatchesPyTorchAndLeavesFrozenWeightsWithoutGradient) {
  models::SstConfig c = tiny_config();
  c.freeze_backbone = true;
  c.lora_rank = 2;
  c.lora_alpha = 6.0;
  c.lora_layers = {1};
  std::vector<std::string> frozen = expect_parity(c, "sst_cotraining");
  std::vector<std::string> backbone;
  for (auto& [n, p] : models::Sst(c).named_parameters()) {
    if (!models::Sst::is_sst_parameter(n)) backbone.push_back(n);
  }
  std::sort(frozen.begin(), frozen.end());
  std::sort(backbone.begin(), backbone.end());
  EXPECT_EQ(frozen, backbone);

  // Adapters on every layer's q, v, gate and down projections over a trainable backbone: only the
  // adapted projections' own weights are frozen.
  c.freeze_backbone = false;
  c.lora_layers = {};
  c.lora_targets = {"q_proj", "v_proj", "gate_proj", "down_proj"};
  frozen = expect_parity(c, "sst_lora");
  std::sort(frozen.begin(), frozen.end());
  std::vector<std::string> adapted;
  for (int l = 0; l < c.layers; ++l) {
    for (const char* proj : {"self_attn.q_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.down_proj"}) {
      adapted.push_back("model.layers." + std::to_string(l) + "." + proj + ".weight");
    }
  }
  std::sort(adapted.begin(), adapted.end());
  EXPECT_EQ(frozen, adapted);
}

}  // namespace
}  // namespace ponder
