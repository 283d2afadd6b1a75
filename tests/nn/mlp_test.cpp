#include "nn/mlp.h"

#include <gtest/gtest.h>

#include "nn/nn_test_util.h"
#include "ops/ops.h"

namespace ponder::nn {
namespace {
using ponder::testing::all_close;
using ponder::testing::error_message;
using ponder::testing::random_tensor;
using testing::gradcheck_module;
using testing::parameter_names;

using Names = std::vector<std::string>;

Tensor lin(const Tensor& x, const Linear& l) {
  Tensor y = matmul(x, l.weight.t());
  return l.bias.defined() ? y + l.bias : y;
}

TEST(NnMlp, SwigluNamesAndForward) {
  Generator gen(1);
  Mlp mlp({.dim = 6, .hidden = 10}, gen);
  EXPECT_EQ(parameter_names(mlp), Names({"gate_proj.weight", "up_proj.weight", "down_proj.weight"}));
  EXPECT_EQ(mlp.gate_proj->weight.shape(), Shape({10, 6}));
  EXPECT_EQ(mlp.down_proj->weight.shape(), Shape({6, 10}));
  Tensor x = random_tensor({5, 6}, 2, DType::f32);
  Tensor g = lin(x, *mlp.gate_proj);
  Tensor expected = lin(g * sigmoid(g) * lin(x, *mlp.up_proj), *mlp.down_proj);
  EXPECT_TRUE(all_close(mlp.forward(x), expected, 1e-5, 1e-6));
}

TEST(NnMlp, Relu2NamesAndForwardWithBias) {
  Generator gen(3);
  Mlp mlp({.dim = 6, .hidden = 10, .activation = parse_activation("relu2"), .bias = true}, gen);
  EXPECT_EQ(parameter_names(mlp), Names({"up_proj.weight", "up_proj.bias", "down_proj.weight", "down_proj.bias"}));
  {
    NoGrad no_grad;
    normal_(mlp.up_proj->bias, 0.0, 1.0, gen);
    normal_(mlp.down_proj->bias, 0.0, 1.0, gen);
  }
  Tensor x = random_tensor({5, 6}, 4, DType::f32);
  Tensor u = lin(x, *mlp.up_proj);
  Tensor r = maximum(u, zeros_like(u));
  EXPECT_TRUE(all_close(mlp.forward(x), lin(r * r, *mlp.down_proj), 1e-5, 1e-6));
}

TEST(NnMlp, Gradcheck) {
  Generator gen(5);
  for (const char* act : {"swiglu", "relu2"}) {
    Mlp mlp({.dim = 4, .hidden = 6, .activation = parse_activation(act), .bias = true}, gen);
    mlp.to(DType::f64);
    Tensor x = random_tensor({3, 4}, 6, DType::f64, true);
    EXPECT_TRUE(gradcheck_module(mlp, x, [&](const Tensor& in) { return mlp.forward(in); })) << act;
  }
}

TEST(NnMlp, SwigluHiddenWidth) {
  EXPECT_EQ(swiglu_hidden(1536), 4096);
  EXPECT_EQ(swiglu_hidden(4096), 11008);  // Llama-7B
  EXPECT_EQ(swiglu_hidden(512), 1536);    // 1365.33 -> 1365 -> 1536
  EXPECT_EQ(swiglu_hidden(96, 4.0, 1), 256);
  EXPECT_EQ(swiglu_hidden(96, 8.0 / 3.0, 64), 192);
}

TEST(NnMlp, BadConfigs) {
  Generator gen(7);
  EXPECT_EQ(error_message<ValueError>([] { parse_activation("gelu"); }),
            "Mlp: unknown activation \"gelu\" (choices: swiglu, relu2)");
  EXPECT_EQ(error_message<ValueError>([&] { Mlp({.dim = 4, .hidden = 0}, gen); }),
            "Mlp: dim and hidden must be positive, got dim 4, hidden 0");
  EXPECT_EQ(error_message<ValueError>([] { swiglu_hidden(0); }),
            "swiglu_hidden: dim, multiplier and multiple_of must be positive, got 0, 4, 256");
}

}  // namespace
}  // namespace ponder::nn
