#include "nn/attention.h"

#include <gtest/gtest.h>

#include <cmath>

#include "nn/nn_test_util.h"
#include "ops/ops.h"

namespace ponder::nn {
namespace {
using ponder::testing::all_close;
using ponder::testing::error_message;
using ponder::testing::random_tensor;
using testing::gradcheck_module;
using testing::packed;
using testing::parameter_names;

using Names = std::vector<std::string>;

Tensor lin(const Tensor& x, const Linear& l) {
  Tensor y = matmul(x, l.weight.t());
  return l.bias.defined() ? y + l.bias : y;
}

Tensor head_rms(const Tensor& x, const RMSNorm& norm) {
  Tensor y = x * rsqrt((x * x).mean({-1}, true) + norm.eps);
  return norm.weight.defined() ? y * norm.weight : y;
}

// The layer spelled out with ops and the layer's own parameter tensors.
Tensor reference(const Attention& a, const Tensor& x, const Tensor& positions, const AttentionSpec& spec) {
  const AttentionConfig& c = a.config();
  const int64_t n = x.size(0);
  Tensor q = lin(x, *a.q_proj).reshape({n, c.heads, c.head_dim});
  Tensor k = lin(x, *a.k_proj).reshape({n, c.kv_heads, c.head_dim});
  Tensor v = lin(x, *a.v_proj).reshape({n, c.kv_heads, c.head_dim});
  if (c.qk_norm) {
    q = head_rms(q, *a.q_norm);
    k = head_rms(k, *a.k_norm);
  }
  if (c.rope_theta > 0) {
    q = rope(q, positions, c.rope_theta);
    k = rope(k, positions, c.rope_theta);
  }
  Tensor o = attention(q, k, v, spec, 1.0 / std::sqrt(double(c.head_dim))).reshape({n, c.heads * c.head_dim});
  if (c.output_gate) o = sigmoid(lin(x, *a.gate_proj)) * o;
  return lin(o, *a.o_proj);
}

const AttentionConfig kFull{.dim = 16, .heads = 4, .kv_heads = 2, .rope_theta = 10000.0, .output_gate = true,
                            .qk_norm = true};

// Moves the norm weights off their initial ones so they show in the output.
void perturb_norms(Attention& a, Generator& gen) {
  NoGrad no_grad;
  for (auto& [name, p] : a.named_parameters())
    if (name.ends_with("norm.weight")) normal_(p, 1.0, 0.2, gen);
}

TEST(NnAttention, NamesAndShapes) {
  Generator gen(1);
  Attention full(kFull, gen);
  EXPECT_EQ(parameter_names(full), Names({"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight",
                                          "gate_proj.weight", "q_norm.weight", "k_norm.weight"}));
  EXPECT_EQ(full.config().head_dim, 4);
  EXPECT_EQ(full.config().kv_heads, 2);
  EXPECT_EQ(full.k_proj->weight.shape(), Shape({8, 16}));
  EXPECT_EQ(full.gate_proj->weight.shape(), Shape({16, 16}));
  EXPECT_EQ(full.q_norm->weight.shape(), Shape({4}));

  Attention plain({.dim = 8, .heads = 2, .head_dim = 5, .bias = true}, gen);
  EXPECT_EQ(parameter_names(plain), Names({"q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias",
                                           "v_proj.weight", "v_proj.bias", "o_proj.weight", "o_proj.bias"}));
  EXPECT_EQ(plain.config().kv_heads, 2);
  EXPECT_EQ(plain.q_proj->weight.shape(), Shape({10, 8}));
  EXPECT_EQ(plain.o_proj->weight.shape(), Shape({8, 10}));

  Attention bare_qk({.dim = 8, .heads = 2, .qk_norm = true, .qk_norm_weighted = false}, gen);
  EXPECT_EQ(parameter_names(bare_qk), Names({"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"}));
}

TEST(NnAttention, ForwardMatchesACompositionOfOps) {
  Generator gen(2);
  const AttentionConfig with_rope_even = {.dim = 16, .heads = 4, .kv_heads = 2, .rope_theta = 500.0,
                                          .output_gate = true, .qk_norm = true};
  const AttentionConfig plain = {.dim = 16, .heads = 2, .head_dim = 6, .bias = true};
  auto p = packed({5, 1, 7}, AttentionMask::prefix_lm, {2, 1, 3});
  for (const AttentionConfig& c : {with_rope_even, plain}) {
    Attention a(c, gen);
    perturb_norms(a, gen);
    Tensor x = random_tensor({p.tokens, c.dim}, 3, DType::f32);
    EXPECT_TRUE(all_close(a.forward(x, p.positions, p.spec), reference(a, x, p.positions, p.spec), 1e-5, 1e-6));
  }
}

TEST(NnAttention, PackedSamplesAreIndependentAndPositionsRestart) {
  Generator gen(4);
  Attention a({.dim = 16, .heads = 4, .kv_heads = 1, .rope_theta = 10000.0, .qk_norm = true}, gen);
  auto both = packed({6, 4});
  auto second = packed({4});
  Tensor x = random_tensor({10, 16}, 5, DType::f32);
  Tensor packed_out = a.forward(x, both.positions, both.spec).slice(0, 6, 10);
  Tensor alone = a.forward(x.slice(0, 6, 10), second.positions, second.spec);
  EXPECT_TRUE(all_close(packed_out, alone, 1e-5, 1e-6));
}

TEST(NnAttention, Gradcheck) {
  Generator gen(6);
  AttentionConfig c = kFull;
  c.dim = 8;
  c.heads = 2;
  c.kv_heads = 1;
  c.head_dim = 4;
  c.bias = true;
  Attention a(c, gen);
  perturb_norms(a, gen);
  a.to(DType::f64);
  auto p = packed({3, 2}, AttentionMask::prefix_lm, {2, 0});
  Tensor x = random_tensor({p.tokens, c.dim}, 7, DType::f64, true);
  EXPECT_TRUE(gradcheck_module(a, x, [&](const Tensor& in) { return a.forward(in, p.positions, p.spec); }));
}

TEST(NnAttention, BadConfigsAndInputs) {
  Generator gen(8);
  auto message = [&](AttentionConfig c) { return error_message<ValueError>([&] { Attention(c, gen); }); };
  EXPECT_EQ(message({.dim = 10, .heads = 4}),
            "Attention: heads 4 do not divide dim 10 (set head_dim explicitly otherwise)");
  EXPECT_EQ(message({.dim = 12, .heads = 4, .kv_heads = 3}), "Attention: kv_heads 3 do not divide heads 4");
  EXPECT_EQ(message({.dim = 0, .heads = 4}), "Attention: dim and heads must be positive, got dim 0, heads 4");
  EXPECT_EQ(message({.dim = 12, .heads = 4, .rope_theta = 1e4}), "Attention: RoPE needs an even head_dim, got 3");
  EXPECT_EQ(message({.dim = 12, .heads = 4, .rope_theta = -1}),
            "Attention: rope_theta must be non-negative (0 = no RoPE), got -1");
  EXPECT_EQ(message({.dim = 12, .heads = 4, .kv_heads = -2}),
            "Attention: head_dim and kv_heads must be positive, got 3 and -2");
  Attention a({.dim = 8, .heads = 2}, gen);
  auto p = packed({3});
  EXPECT_EQ(error_message<ShapeError>([&] { a.forward(zeros({3, 6}), p.positions, p.spec); }),
            "Attention: x must be [N, 8], got [3, 6] f32 cpu");
}

}  // namespace
}  // namespace ponder::nn
