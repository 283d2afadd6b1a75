#include "models/transformer/transformer.h"

#include <gtest/gtest.h>


#include "data/packing.h"
#include "models/learning.h"
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

// The training loss fuses a plain head into the loss; a head that is not one (here: a model that
// says so) goes through the logits. Both give the loss and gradients of the logits' cross-entropy.
TEST(Transformer, LossSumFusesAPlainHeadAndEqualsTheLogitsCrossEntropy) {
  struct UnfusedHead : Transformer {
    using Transformer::Transformer;
    Tensor head_weight() const override { return {}; }
  };
  const PackedBatch batch = data::pack_rows({{{{1, 2, 3}, {4, 5}}, {{6}, {7, 8, 9}}}}, {.row_len = 10});
  for (bool tied : {false, true}) {
    const TransformerConfig c{.vocab_size = 16, .dim = 32, .layers = 1, .heads = 4, .tie_embeddings = tied};
    Transformer fused(c);
    UnfusedHead unfused(c);
    fused.to(DType::f64);
    unfused.to(DType::f64);
    ASSERT_TRUE(fused.head_weight().defined());
    auto loss_and_grads = [&](Transformer& m, bool through_logits) {
      for (Tensor p : m.parameters()) p.set_grad({});
      Tensor loss = through_logits ? cross_entropy(m.logits(batch), batch.labels, kIgnoreIndex, Reduction::sum)
                                   : m.loss_sum(batch);
      loss.backward();
      TensorList out = {loss.detach()};
      for (const Tensor& p : m.parameters()) out.push_back(p.grad().clone());
      return out;
    };
    const TensorList want = loss_and_grads(fused, true), got = loss_and_grads(fused, false);
    const TensorList fallback = loss_and_grads(unfused, false);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_TRUE(ponder::testing::all_close(got[i], want[i], 1e-12, 1e-12)) << "fused, tied " << tied << ", " << i;
      EXPECT_TRUE(ponder::testing::all_close(fallback[i], want[i], 0, 0)) << "unfused, tied " << tied << ", " << i;
    }
  }
}

TEST(Transformer, LearnsToReverseASequenceOnTheCpu) {
  Transformer model({.vocab_size = 12, .dim = 64, .layers = 2, .heads = 4, .ffn_hidden = 128, .seed = 1});
  optim::AdamW opt(optim::decay_groups(model.named_parameters(), 0.01), {.lr = 6e-3});
  EXPECT_LT(ponder::testing::train_reversal(model, opt, {.steps = 1000, .peak_lr = 6e-3}), 0.05);
}

}  // namespace
}  // namespace ponder::models
