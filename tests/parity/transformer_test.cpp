// The Llama-style baseline against the same model written in PyTorch: logits, summed loss and the
// gradient of every parameter, f32, on a packed PrefixLM batch.
#include <gtest/gtest.h>

#include "data/packing.h"
#include "models/transformer/transformer.h"
#include "support/model_parity.h"

namespace ponder {
namespace {

data::Sample sample(std::vector<int32_t> inst, std::vector<int32_t> resp) { return {std::move(inst), std::move(resp)}; }

void expect_parity(const models::TransformerConfig& c, const std::string& name) {
  models::Transformer model(c);
  auto batch = data::pack_rows({{sample({1, 2, 3, 4}, {5, 6, 7}), sample({8, 9}, {10, 11, 12, 13})},
                                {sample({}, {3, 1, 4, 1, 5, 9, 2, 6}), sample({7}, {7, 7})}},
                               {.row_len = 12});
  const nn::AttentionConfig& attn = model.model->layers->operator[](0).self_attn->config();
  const std::vector<std::string> without_gradient = testing::expect_model_parity(
      model, batch,
      {.script = "transformer.py",
       .name = name,
       .metadata = {{"heads", std::to_string(c.heads)}, {"kv_heads", std::to_string(attn.kv_heads)},
                    {"head_dim", std::to_string(attn.head_dim)}, {"eps", std::to_string(c.norm_eps)},
                    {"theta", std::to_string(c.rope_theta)}, {"output_gate", c.attention_output_gate ? "1" : "0"},
                    {"layers", std::to_string(c.layers)}, {"tie_embeddings", c.tie_embeddings ? "1" : "0"}},
       .extra_inputs = {}});
  EXPECT_TRUE(without_gradient.empty());
}

TEST(Parity, LlamaBaselineMatchesPyTorch) {
  models::TransformerConfig c{.vocab_size = 32, .dim = 48, .layers = 2, .heads = 4, .kv_heads = 2, .ffn_hidden = 80, .seed = 3};
  expect_parity(c, "baseline");
}

TEST(Parity, TiedAndGatedBaselineMatchesPyTorch) {
  models::TransformerConfig c{.vocab_size = 32, .dim = 32, .layers = 2, .heads = 2, .ffn_hidden = 64,
                              .tie_embeddings = true, .attention_output_gate = true, .seed = 4};
  expect_parity(c, "baseline_tied");
}

}  // namespace
}  // namespace ponder
