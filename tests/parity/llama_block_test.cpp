// A Llama-style block built from ponder's ops against the same block in PyTorch: forward output
// and the gradients of every parameter and of the input, in f32.
#include <gtest/gtest.h>

#include <cmath>

#include "io/safetensors.h"
#include "ops/ops.h"
#include "support/python.h"
#include "support/test_util.h"

namespace ponder {
namespace {

struct BlockConfig {
  int64_t dim = 64, heads = 4, kv_heads = 4, ffn = 96;
  double eps = 1e-6, theta = 10000.0;
};

// x [N, dim] -> [N, dim], composed directly from ops; `p` holds the parameters by their HF names.
Tensor block(const Tensor& x, std::map<std::string, Tensor>& p, const Tensor& positions,
             const AttentionSpec& spec, const BlockConfig& c) {
  const int64_t n = x.size(0), head_dim = c.dim / c.heads;
  Tensor h = rms_norm(x, p["input_layernorm.weight"], c.eps);
  Tensor q = rope(linear(h, p["self_attn.q_proj.weight"]).view({n, c.heads, head_dim}), positions, c.theta);
  Tensor k = rope(linear(h, p["self_attn.k_proj.weight"]).view({n, c.kv_heads, head_dim}), positions, c.theta);
  Tensor v = linear(h, p["self_attn.v_proj.weight"]).view({n, c.kv_heads, head_dim});
  Tensor a = attention(q, k, v, spec, 1.0 / std::sqrt(double(head_dim))).reshape({n, c.dim});
  Tensor x1 = x + linear(sigmoid(linear(h, p["self_attn.gate_proj.weight"])) * a, p["self_attn.o_proj.weight"]);
  Tensor h2 = rms_norm(x1, p["post_attention_layernorm.weight"], c.eps);
  Tensor mlp = linear(silu(linear(h2, p["mlp.gate_proj.weight"])) * linear(h2, p["mlp.up_proj.weight"]),
                      p["mlp.down_proj.weight"]);
  return x1 + mlp;
}

std::map<std::string, Tensor> make_params(const BlockConfig& c, Generator& g) {
  const int64_t kv = c.kv_heads * (c.dim / c.heads);
  const double s = 1.0 / std::sqrt(double(c.dim));
  auto w = [&](int64_t out, int64_t in, double std) { return (randn({out, in}, g) * std).detach().set_requires_grad(true); };
  return {{"input_layernorm.weight", (1.0 + randn({c.dim}, g) * 0.1).detach().set_requires_grad(true)},
          {"self_attn.q_proj.weight", w(c.dim, c.dim, s)},
          {"self_attn.k_proj.weight", w(kv, c.dim, s)},
          {"self_attn.v_proj.weight", w(kv, c.dim, s)},
          {"self_attn.gate_proj.weight", w(c.dim, c.dim, s)},
          {"self_attn.o_proj.weight", w(c.dim, c.dim, s)},
          {"post_attention_layernorm.weight", (1.0 + randn({c.dim}, g) * 0.1).detach().set_requires_grad(true)},
          {"mlp.gate_proj.weight", w(c.ffn, c.dim, s)},
          {"mlp.up_proj.weight", w(c.ffn, c.dim, s)},
          {"mlp.down_proj.weight", w(c.dim, c.ffn, 1.0 / std::sqrt(double(c.ffn)))}};
}

// Runs the block here and in PyTorch on the same inputs and compares everything.
void expect_parity(const BlockConfig& c, const std::vector<int>& lengths, const std::vector<int>& prefixes,
                   const std::string& name) {
  Generator g(2024);
  auto params = make_params(c, g);
  std::vector<double> cu = {0}, pos;
  for (int len : lengths) {
    cu.push_back(cu.back() + len);
    for (int i = 0; i < len; ++i) pos.push_back(i);  // positions restart in every sample
  }
  const int64_t n = static_cast<int64_t>(cu.back());
  AttentionSpec spec{AttentionMask::prefix_lm, tensor(cu, {int64_t(cu.size())}, {.dtype = DType::i32}),
                     tensor(std::vector<double>(prefixes.begin(), prefixes.end()), {int64_t(prefixes.size())},
                            {.dtype = DType::i32})};
  Tensor positions = tensor(pos, {n}, {.dtype = DType::i64});
  Tensor x = randn({n, c.dim}, g).detach().set_requires_grad(true);
  Tensor r = randn({n, c.dim}, g);

  Tensor out = block(x, params, positions, spec, c);
  (out * r).sum().backward();

  auto dir = testing::scratch_dir(name);
  io::NamedTensors inputs = {{"x", x}, {"r", r}, {"positions", positions},
                             {"cu_seqlens", spec.cu_seqlens}, {"prefix_len", spec.prefix_len}};
  for (auto& [k, v] : params) inputs.emplace_back(k, v);
  io::save_safetensors(dir / "inputs.safetensors", inputs,
                       {{"heads", std::to_string(c.heads)}, {"kv_heads", std::to_string(c.kv_heads)},
                        {"head_dim", std::to_string(c.dim / c.heads)}, {"eps", std::to_string(c.eps)},
                        {"theta", std::to_string(c.theta)}, {"output_gate", "1"}});
  std::string log;
  int status = testing::run_python("nn_block.py", (dir / "inputs.safetensors").string() + " " +
                                                         (dir / "reference.safetensors").string(), log);
  ASSERT_EQ(status, 0) << log;
  auto ref = io::load_safetensors(dir / "reference.safetensors").tensors;

  constexpr double kTolerance = 1e-5;  // norm-relative, f32
  double worst = testing::relative_error(out, ref.at("out"));
  EXPECT_LT(worst, kTolerance) << "block output";
  EXPECT_LT(testing::relative_error(x.grad(), ref.at("grad.x")), kTolerance) << "grad of x";
  for (auto& [k, v] : params) {
    ASSERT_TRUE(v.grad().defined()) << k;
    double err = testing::relative_error(v.grad(), ref.at("grad." + k));
    EXPECT_LT(err, kTolerance) << "grad of " << k;
    worst = std::max(worst, err);
  }
  std::printf("largest relative error over the output and %zu gradients: %.2e\n", params.size() + 1, worst);
  std::filesystem::remove_all(dir);
}

TEST(Parity, LlamaBlockWithGatedPrefixLmAttentionMatchesPyTorch) {
  expect_parity(BlockConfig{}, {13, 11}, {5, 4}, "block_mha");
}

TEST(Parity, GroupedQueryBlockWithEmptyAndFullPrefixesMatchesPyTorch) {
  BlockConfig c;
  c.kv_heads = 2;
  expect_parity(c, {9, 7, 1}, {0, 7, 1}, "block_gqa");
}

}  // namespace
}  // namespace ponder
