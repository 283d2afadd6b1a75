// ponder::nn::TransformerBlock against the same block written in PyTorch (tests/parity/nn_block.py):
// forward output and the gradients of every parameter and of the input, in f32.
#include <gtest/gtest.h>

#include <iomanip>
#include <sstream>

#include "io/safetensors.h"
#include "nn/layers.h"
#include "ops/ops.h"
#include "support/python.h"
#include "support/test_util.h"

namespace ponder::nn {
namespace {

struct Case {
  BlockConfig config;
  std::vector<int> lengths, prefixes;
  std::string name;
};

std::string flag(bool on) { return on ? "1" : "0"; }
std::string number(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

void expect_parity(const Case& c) {
  Generator gen(2024);
  TransformerBlock block(c.config, gen);
  // Norm weights and biases away from their ones/zeros init so that their use shows.
  init_matching(block, "input_layernorm.weight", [&](const Tensor& t) { normal_(t, 1.0, 0.1, gen); });
  init_matching(block, "post_attention_layernorm.weight", [&](const Tensor& t) { normal_(t, 1.0, 0.1, gen); });
  init_matching(block, "q_norm.weight", [&](const Tensor& t) { normal_(t, 1.0, 0.1, gen); });
  init_matching(block, "k_norm.weight", [&](const Tensor& t) { normal_(t, 1.0, 0.1, gen); });
  init_matching(block, "bias", [&](const Tensor& t) { normal_(t, 0.0, 0.1, gen); });

  std::vector<double> cu = {0}, pos;
  for (int len : c.lengths) {
    cu.push_back(cu.back() + len);
    for (int i = 0; i < len; ++i) pos.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(cu.back()), dim = c.config.attn.dim;
  AttentionSpec spec{AttentionMask::prefix_lm, tensor(cu, {int64_t(cu.size())}, {.dtype = DType::i32}),
                     tensor(std::vector<double>(c.prefixes.begin(), c.prefixes.end()), {int64_t(c.prefixes.size())},
                            {.dtype = DType::i32})};
  Tensor positions = tensor(pos, {n}, {.dtype = DType::i64});
  Tensor x = randn({n, dim}, gen).set_requires_grad(true);
  Tensor r = randn({n, dim}, gen);

  Tensor out = block.forward(x, positions, spec);
  (out * r).sum().backward();

  const AttentionConfig& a = block.self_attn->config();
  auto dir = ponder::testing::scratch_dir(c.name);
  io::NamedTensors inputs = {{"x", x}, {"r", r}, {"positions", positions},
                             {"cu_seqlens", spec.cu_seqlens}, {"prefix_len", spec.prefix_len}};
  for (auto& [k, v] : block.state_dict()) inputs.emplace_back(k, v);
  io::save_safetensors(dir / "inputs.safetensors", inputs,
                       {{"heads", std::to_string(a.heads)},
                        {"kv_heads", std::to_string(a.kv_heads)},
                        {"head_dim", std::to_string(a.head_dim)},
                        {"eps", number(c.config.norm.eps)},
                        {"qk_eps", number(a.qk_norm_eps)},
                        {"theta", number(a.rope_theta)},
                        {"qk_norm", flag(a.qk_norm)},
                        {"output_gate", flag(a.output_gate)},
                        {"post_norm", flag(c.config.post_norm)},
                        {"norm", c.config.norm.kind == NormKind::rms ? "rms" : "layer"},
                        {"activation", c.config.mlp.activation == Activation::swiglu ? "swiglu" : "relu2"}});
  std::string log;
  int status = ponder::testing::run_python("nn_block.py", (dir / "inputs.safetensors").string() + " " +
                                                              (dir / "reference.safetensors").string(), log);
  ASSERT_EQ(status, 0) << log;
  auto ref = io::load_safetensors(dir / "reference.safetensors").tensors;

  constexpr double kTolerance = 1e-5;  // norm-relative, f32
  double worst = ponder::testing::relative_error(out, ref.at("out"));
  EXPECT_LT(worst, kTolerance) << "block output";
  EXPECT_LT(ponder::testing::relative_error(x.grad(), ref.at("grad.x")), kTolerance) << "grad of x";
  const NamedTensors params = block.named_parameters();
  for (const auto& [k, v] : params) {
    ASSERT_TRUE(v.grad().defined()) << k;
    ASSERT_TRUE(ref.count("grad." + k)) << k;
    double err = ponder::testing::relative_error(v.grad(), ref.at("grad." + k));
    EXPECT_LT(err, kTolerance) << "grad of " << k;
    worst = std::max(worst, err);
  }
  std::printf("%s: largest relative error over the output and %zu gradients: %.2e\n", c.name.c_str(),
              params.size() + 1, worst);
  std::filesystem::remove_all(dir);
}

TEST(Parity, NnBlockWithGqaRopeGateQkNormSwigluPrefixLmMatchesPyTorch) {
  BlockConfig config{.attn = {.dim = 64, .heads = 4, .kv_heads = 2, .rope_theta = 10000.0, .output_gate = true,
                              .qk_norm = true},
                     .mlp = {.dim = 64, .hidden = 96},
                     .norm = {.kind = NormKind::rms, .eps = 1e-6, .weighted = true}};
  expect_parity({config, {13, 9, 1}, {5, 0, 1}, "nn_block_prenorm"});
}

TEST(Parity, NnPostNormBlockWithBareNormsRelu2AndBiasMatchesPyTorch) {
  BlockConfig config{.attn = {.dim = 48, .heads = 3, .head_dim = 8, .rope_theta = 500.0, .qk_norm = true,
                              .qk_norm_weighted = false, .qk_norm_eps = 1e-5, .bias = true},
                     .mlp = {.dim = 48, .hidden = 80, .activation = Activation::relu2, .bias = true},
                     .norm = {.kind = NormKind::rms, .eps = 1e-5, .weighted = false},
                     .post_norm = true};
  expect_parity({config, {7, 12}, {3, 12}, "nn_block_postnorm"});
}

TEST(Parity, NnLayerNormBlockMatchesPyTorch) {
  BlockConfig config{.attn = {.dim = 32, .heads = 4, .kv_heads = 1},
                     .mlp = {.dim = 32, .hidden = 64},
                     .norm = {.kind = NormKind::layer, .eps = 1e-5}};
  expect_parity({config, {6, 10}, {2, 4}, "nn_block_layernorm"});
}

}  // namespace
}  // namespace ponder::nn
