// The Llama-style baseline against the same model written in PyTorch: logits, summed loss and the
// gradient of every parameter, f32, on a packed PrefixLM batch.
#include <gtest/gtest.h>

#include "data/packing.h"
#include "io/safetensors.h"
#include "models/transformer/transformer.h"
#include "ops/ops.h"
#include "support/python.h"
#include "support/test_util.h"

namespace ponder {
namespace {

data::Sample sample(std::vector<int32_t> inst, std::vector<int32_t> resp) { return {std::move(inst), std::move(resp)}; }

void expect_parity(const models::TransformerConfig& c, const std::string& name) {
  models::Transformer model(c);
  auto batch = data::pack_rows({{sample({1, 2, 3, 4}, {5, 6, 7}), sample({8, 9}, {10, 11, 12, 13})},
                                {sample({}, {3, 1, 4, 1, 5, 9, 2, 6}), sample({7}, {7, 7})}},
                               {.row_len = 12});
  Tensor loss = model.loss_sum(batch);
  loss.backward();

  auto dir = testing::scratch_dir(name);
  io::NamedTensors inputs = {{"tokens", batch.tokens}, {"positions", batch.positions}, {"labels", batch.labels},
                             {"cu_seqlens", batch.attn.cu_seqlens}, {"prefix_len", batch.attn.prefix_len}};
  for (auto& [n, p] : model.named_parameters()) inputs.emplace_back(n, p);
  io::save_safetensors(dir / "inputs.safetensors", inputs,
                       {{"heads", std::to_string(c.heads)},
                        {"kv_heads", std::to_string(model.model->layers->operator[](0).self_attn->config().kv_heads)},
                        {"head_dim", std::to_string(model.model->layers->operator[](0).self_attn->config().head_dim)},
                        {"eps", std::to_string(c.norm_eps)}, {"theta", std::to_string(c.rope_theta)},
                        {"output_gate", c.attention_output_gate ? "1" : "0"},
                        {"layers", std::to_string(c.layers)}, {"tie_embeddings", c.tie_embeddings ? "1" : "0"}});
  std::string log;
  ASSERT_EQ(testing::run_python("transformer.py", (dir / "inputs.safetensors").string() + " " +
                                                      (dir / "reference.safetensors").string(), log), 0) << log;
  auto ref = io::load_safetensors(dir / "reference.safetensors").tensors;
  constexpr double kTolerance = 1e-5;
  double worst = testing::relative_error(model.logits(batch), ref.at("logits"));
  EXPECT_LT(worst, kTolerance) << "logits";
  EXPECT_LT(testing::relative_error(loss.reshape({1}), ref.at("loss")), kTolerance) << "loss";
  for (auto& [n, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << n;
    double err = testing::relative_error(p.grad(), ref.at("grad." + n));
    EXPECT_LT(err, kTolerance) << "grad of " << n;
    worst = std::max(worst, err);
  }
  std::printf("%s: largest relative error over logits and %zu gradients: %.2e\n", name.c_str(),
              model.named_parameters().size(), worst);
  std::filesystem::remove_all(dir);
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
