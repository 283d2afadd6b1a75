#include "models/transformer/transformer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "data/packing.h"
#include "ops/ops.h"
#include "optim/optim.h"
#include "support/test_util.h"

namespace ponder::models {
namespace {

TEST(Transformer, ParameterNamesFollowLlamaForCausalLM) {
  Transformer m({.vocab_size = 16, .dim = 32, .layers = 2, .heads = 4, .kv_heads = 2, .ffn_hidden = 64});
  std::vector<std::string> names;
  for (auto& [n, p] : m.named_parameters()) names.push_back(n);
  std::vector<std::string> expected;
  for (int i = 0; i < 2; ++i) {
    std::string l = "model.layers." + std::to_string(i) + ".";
    for (const char* s : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                          "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                          "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"})
      expected.push_back(l + s);
  }
  expected.push_back("model.norm.weight");
  expected.push_back("model.embed_tokens.weight");
  expected.push_back("lm_head.weight");
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);
  Transformer tied({.vocab_size = 16, .dim = 32, .layers = 1, .heads = 4, .tie_embeddings = true});
  EXPECT_FALSE(tied.lm_head);
  EXPECT_EQ(tied.named_parameters().back().first, "model.embed_tokens.weight");
}

TEST(Transformer, SameSeedSameModelAndBadConfigs) {
  Transformer a({.vocab_size = 16, .dim = 32, .layers = 1, .heads = 4, .seed = 7});
  Transformer b({.vocab_size = 16, .dim = 32, .layers = 1, .heads = 4, .seed = 7});
  EXPECT_EQ(a.parameters()[0].to_vector<float>(), b.parameters()[0].to_vector<float>());
  EXPECT_THROW(Transformer({.dim = 30, .heads = 4}), ValueError);
  EXPECT_THROW(Transformer({.layers = 0}), ValueError);
}

// Reversal: the instruction is 6 random digits, the response the same digits reversed.
std::vector<std::vector<data::Sample>> reversal_rows(std::mt19937& rng, int rows, int per_row) {
  std::uniform_int_distribution<int32_t> digit(2, 11);
  std::vector<std::vector<data::Sample>> out(rows);
  for (auto& row : out) {
    for (int s = 0; s < per_row; ++s) {
      data::Sample smp;
      for (int i = 0; i < 6; ++i) smp.instruction.push_back(digit(rng));
      smp.response.assign(smp.instruction.rbegin(), smp.instruction.rend());
      row.push_back(smp);
    }
  }
  return out;
}

TEST(Transformer, LearnsToReverseASequenceOnTheCpu) {
  auto start = std::chrono::steady_clock::now();
  Transformer model({.vocab_size = 12, .dim = 64, .layers = 2, .heads = 4, .ffn_hidden = 128, .seed = 1});
  const int steps = 1000;
  const double peak_lr = 6e-3;
  optim::AdamW opt(optim::decay_groups(model.named_parameters(), 0.01), {.lr = peak_lr});
  optim::Schedule schedule("cosine", {.warmup_steps = 50, .total_steps = steps, .min_ratio = 0.05});
  std::mt19937 rng(5);
  double loss = 0;
  for (int step = 0; step < steps; ++step) {
    opt.set_lr(peak_lr * schedule(step));
    PackedBatch batch = data::pack_rows(reversal_rows(rng, 8, 4), {.row_len = 44});
    Tensor l = model.loss_sum(batch) / double(batch.loss_tokens);
    l.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    opt.zero_grad();
    loss = l.item<float>();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("final loss %.4f after %d steps in %.1f s\n", loss, steps, seconds);
  EXPECT_LT(loss, 0.05);  // chance level is log(10) = 2.3
}

}  // namespace
}  // namespace ponder::models
