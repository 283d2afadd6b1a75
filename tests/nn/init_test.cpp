#include "nn/init.h"

#include <gtest/gtest.h>

#include <cmath>

#include "nn/layers.h"
#include "nn/nn_test_util.h"
#include "ops/ops.h"

namespace ponder::nn {
namespace {
using ponder::testing::error_message;

struct Moments {
  double mean = 0, std = 0, max_abs = 0;
};

Moments moments(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  Moments m;
  for (double x : v) m.mean += x / double(v.size());
  for (double x : v) {
    m.std += (x - m.mean) * (x - m.mean) / double(v.size());
    m.max_abs = std::max(m.max_abs, std::abs(x));
  }
  m.std = std::sqrt(m.std);
  return m;
}

TEST(NnInit, LecunNormalIsTheWrappedTruncatedNormalWithStdOneOverRootFanIn) {
  Generator gen(1);
  Tensor w = zeros({256, 400});
  lecun_normal_(w, gen);
  Moments m = moments(w);
  const double std = 1.0 / std::sqrt(400.0);
  EXPECT_NEAR(m.mean, 0.0, 0.01 * std);
  EXPECT_NEAR(m.std, std, 0.02 * std);
  EXPECT_LE(m.max_abs, 3 * 1.0148 * std + 1e-7);  // fmod(N(0,1), 3) never leaves (-3, 3)
  Generator again(1);
  Tensor same = zeros({256, 400});
  trunc_normal_(same, std, again);
  EXPECT_EQ(w.to_vector<float>(), same.to_vector<float>());
}

TEST(NnInit, KaimingUniformWithASqrt5IsUniformOnOneOverRootFanIn) {
  Generator gen(2);
  Tensor w = zeros({64, 300});
  kaiming_uniform_(w, std::sqrt(5.0), gen);
  Moments m = moments(w);
  const double bound = 1.0 / std::sqrt(300.0);
  EXPECT_LE(m.max_abs, bound);
  EXPECT_GT(m.max_abs, 0.99 * bound);
  EXPECT_NEAR(m.std, bound / std::sqrt(3.0), 0.02 * bound);
}

TEST(NnInit, ZerosOnesAndBadTensors) {
  Generator gen(3);
  Tensor p = randn({3, 2}, gen).set_requires_grad(true);
  ones_(p);
  EXPECT_EQ(p.to_vector<float>(), std::vector<float>(6, 1.0f));
  zeros_(p);
  EXPECT_EQ(p.to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(error_message<ValueError>([&] { lecun_normal_(zeros({}), gen); }),
            "lecun_normal_: needs a tensor with a non-empty last dimension (fan_in), got [] f32 cpu");
}

TEST(NnInit, InitMatchingSelectsWholeNameComponents) {
  Generator gen(5);
  BlockConfig c{.attn = {.dim = 8, .heads = 2}, .mlp = {.dim = 8, .hidden = 16}};
  Stack stack(c, 2, NormConfig{}, gen);
  EXPECT_EQ(init_matching(stack, "down_proj.weight", [](const Tensor& t) { zeros_(t); }), 2);
  EXPECT_EQ((*stack.layers)[1].mlp->down_proj->weight.to_vector<float>(), std::vector<float>(8 * 16, 0.0f));
  EXPECT_NE((*stack.layers)[1].mlp->up_proj->weight.to_vector<float>(), std::vector<float>(8 * 16, 0.0f));
  EXPECT_EQ(init_matching(stack, "proj.weight", [](const Tensor& t) { zeros_(t); }), 0);
  EXPECT_EQ(init_matching(stack, "layers.0.mlp.down_proj.weight", [](const Tensor&) {}), 1);
  EXPECT_EQ(init_matching(stack, "norm.weight", [](const Tensor&) {}), 1);  // not input_layernorm.weight
  EXPECT_EQ(init_matching(stack, "weight", [](const Tensor&) {}), int64_t(stack.parameters().size()));
  // "down_proj std 1/sqrt(intermediate)": a trunc-normal with another std, still through the generator.
  int64_t n = init_matching(stack, "down_proj.weight", [&](const Tensor& t) { trunc_normal_(t, 0.25, gen); });
  EXPECT_EQ(n, 2);
  EXPECT_LE(moments((*stack.layers)[0].mlp->down_proj->weight).max_abs, 3 * 1.0148 * 0.25 + 1e-7);
  EXPECT_TRUE((*stack.layers)[0].mlp->down_proj->weight.requires_grad());
  EXPECT_TRUE((*stack.layers)[0].mlp->down_proj->weight.is_leaf());
}

TEST(NnInit, TheSameSeedGivesTheSameModel) {
  BlockConfig c{.attn = {.dim = 16, .heads = 4, .kv_heads = 2, .rope_theta = 1e4, .output_gate = true,
                         .qk_norm = true},
                .mlp = {.dim = 16, .hidden = 32}};
  auto build = [&](uint64_t seed) {
    Generator gen(seed);
    return std::make_shared<Stack>(c, 3, NormConfig{}, gen);
  };
  auto a = build(9), b = build(9), other = build(10);
  auto pa = a->named_parameters(), pb = b->named_parameters(), po = other->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  bool any_differs = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_EQ(pa[i].second.to_vector<float>(), pb[i].second.to_vector<float>()) << pa[i].first;
    any_differs = any_differs || pa[i].second.to_vector<float>() != po[i].second.to_vector<float>();
  }
  EXPECT_TRUE(any_differs);
  // Every projection draws its own numbers: no two layers share a weight.
  EXPECT_NE((*a->layers)[0].self_attn->q_proj->weight.to_vector<float>(),
            (*a->layers)[1].self_attn->q_proj->weight.to_vector<float>());
}

TEST(NnInit, InitializersByName) {
  Generator g(1);
  Tensor t = empty({64, 32});
  initializer("zeros")(t, g);
  EXPECT_EQ(t.sum().item<float>(), 0.0f);
  initializer("ones")(t, g);
  EXPECT_EQ(t.sum().item<float>(), 64.0f * 32.0f);
  initializer("trunc_normal", 0.5)(t, g);
  EXPECT_LE(amax(abs(t)).item<float>(), 3 * 0.5 * 1.0148 + 1e-6);
  initializer("lecun_normal")(t, g);
  initializer("normal", 0.1)(t, g);
  try {
    initializer("xavier");
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown initialiser \"xavier\""), std::string::npos);
  }
}

}  // namespace
}  // namespace ponder::nn
