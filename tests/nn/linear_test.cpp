#include "nn/linear.h"

#include <gtest/gtest.h>

#include <cmath>

#include "nn/init.h"
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

TEST(NnLinear, ParametersAndDefaultInit) {
  Generator gen(1), replay(1);
  Linear plain(6, 4, gen), biased(6, 4, gen, /*bias=*/true);
  EXPECT_EQ(parameter_names(plain), Names({"weight"}));
  EXPECT_EQ(parameter_names(biased), Names({"weight", "bias"}));
  EXPECT_EQ(plain.weight.shape(), Shape({4, 6}));
  EXPECT_EQ(biased.bias.to_vector<float>(), std::vector<float>(4, 0.0f));
  Tensor expected = zeros({4, 6});
  lecun_normal_(expected, replay);  // the default init, drawn in construction order
  EXPECT_EQ(plain.weight.to_vector<float>(), expected.to_vector<float>());
}

TEST(NnLinear, ForwardIsXTimesWeightTransposedPlusBias) {
  Generator gen(2);
  Linear l(6, 4, gen, true);
  {
    NoGrad no_grad;
    normal_(l.bias, 0.0, 1.0, gen);
  }
  Tensor x = random_tensor({2, 3, 6}, 3, DType::f32);
  EXPECT_TRUE(all_close(l.forward(x), matmul(x, l.weight.t()) + l.bias, 1e-6, 1e-6));
}

TEST(NnLinear, Gradcheck) {
  Generator gen(3);
  Linear l(5, 3, gen, true);
  l.to(DType::f64);
  Tensor x = random_tensor({4, 5}, 4, DType::f64, true);
  EXPECT_TRUE(gradcheck_module(l, x, [&](const Tensor& in) { return l.forward(in); }));
}

TEST(NnLinear, BadSizes) {
  Generator gen(4);
  EXPECT_EQ(error_message<ValueError>([&] { Linear(0, 4, gen); }),
            "Linear: in and out features must be positive, got in 0, out 4");
}

// A layer with an adapter whose B is non-zero, so the adapter path shows in the output.
std::shared_ptr<Linear> with_trained_lora(LoraConfig config, bool bias = false,
                                          std::shared_ptr<Generator> dropout_gen = nullptr) {
  Generator gen(5);
  auto l = std::make_shared<Linear>(12, 10, gen, bias);
  l->add_lora(config, gen, std::move(dropout_gen));
  NoGrad no_grad;
  normal_(l->lora_B->weight, 0.0, 0.5, gen);
  if (bias) normal_(l->bias, 0.0, 1.0, gen);
  return l;
}

TEST(NnLora, AdaptersAreNamedShapedAndInitialisedAsPeft) {
  Generator gen(6);
  Linear l(12, 10, gen, true);
  Tensor base = l.weight.clone();
  l.add_lora({.rank = 4, .alpha = 8}, gen);
  EXPECT_EQ(parameter_names(l), Names({"weight", "bias", "lora_A.weight", "lora_B.weight"}));
  EXPECT_EQ(l.lora_A->weight.shape(), Shape({4, 12}));
  EXPECT_EQ(l.lora_B->weight.shape(), Shape({10, 4}));
  EXPECT_EQ(l.lora_B->weight.to_vector<float>(), std::vector<float>(40, 0.0f));
  const double bound = 1.0 / std::sqrt(12.0);
  double largest = 0;
  for (float a : l.lora_A->weight.to_vector<float>()) largest = std::max(largest, double(std::abs(a)));
  EXPECT_LE(largest, bound);
  EXPECT_GT(largest, 0.5 * bound);
  EXPECT_EQ(l.weight.to_vector<float>(), base.to_vector<float>());
  EXPECT_DOUBLE_EQ(l.lora_scale(), 2.0);
}

TEST(NnLora, OnlyTheAdaptersAreTrainable) {
  auto l = with_trained_lora({.rank = 2}, /*bias=*/true);
  for (const auto& [name, p] : l->named_parameters())
    EXPECT_EQ(p.requires_grad(), name.starts_with("lora_")) << name;
  Tensor x = random_tensor({3, 12}, 7, DType::f32);
  l->forward(x).sum().backward();
  EXPECT_FALSE(l->weight.grad().defined());
  EXPECT_TRUE(l->lora_A->weight.grad().defined());
  EXPECT_TRUE(l->lora_B->weight.grad().defined());
}

TEST(NnLora, ZeroBStartsAtTheBaseOutput) {
  Generator gen(8);
  Linear l(12, 10, gen, false);
  Tensor x = random_tensor({5, 12}, 9, DType::f32);
  Tensor before = l.forward(x);
  l.add_lora({.rank = 3, .alpha = 6}, gen);
  EXPECT_EQ(l.forward(x).to_vector<float>(), before.to_vector<float>());
}

TEST(NnLora, ForwardIsBasePlusScaledLowRankUpdate) {
  auto l = with_trained_lora({.rank = 3, .alpha = 12}, /*bias=*/true);
  Tensor x = random_tensor({2, 5, 12}, 10, DType::f32);
  Tensor base = matmul(x, l->weight.t()) + l->bias;
  Tensor update = matmul(matmul(x, l->lora_A->weight.t()), l->lora_B->weight.t()) * 4.0;  // alpha/rank
  EXPECT_TRUE(all_close(l->forward(x), base + update, 1e-5, 1e-6));
}

TEST(NnLora, MergingKeepsTheFunctionAndRemovesTheAdapters) {
  auto l = with_trained_lora({.rank = 4, .alpha = 3}, /*bias=*/true);
  Tensor x = random_tensor({7, 12}, 11, DType::f32);
  Tensor unmerged = l->forward(x);
  l->merge_lora();
  EXPECT_FALSE(l->has_lora());
  EXPECT_EQ(parameter_names(*l), Names({"weight", "bias"}));
  EXPECT_EQ(l->named_modules().size(), 1u);
  EXPECT_TRUE(all_close(l->forward(x), unmerged, 1e-6, 1e-6));
  EXPECT_FALSE(l->weight.requires_grad());  // still frozen, as after add_lora
  EXPECT_EQ(error_message<ValueError>([&] { l->merge_lora(); }), "Linear.merge_lora: the layer has no LoRA adapter");
}

TEST(NnLora, DropoutOnlyInTrainingAndDrivenByTheGivenGenerator) {
  auto dropout_gen = std::make_shared<Generator>(12);
  auto l = with_trained_lora({.rank = 3, .alpha = 3, .dropout = 0.5}, false, dropout_gen);
  Tensor x = random_tensor({6, 12}, 13, DType::f32);
  Tensor base = matmul(x, l->weight.t());
  auto expected = [&](const Tensor& adapter_input) {
    return base + matmul(matmul(adapter_input, l->lora_A->weight.t()), l->lora_B->weight.t());
  };
  Generator replay;
  replay.set_state(dropout_gen->state());
  Tensor trained = l->forward(x);
  EXPECT_TRUE(all_close(trained, expected(dropout(x, 0.5, replay)), 1e-5, 1e-6));
  EXPECT_FALSE(all_close(trained, expected(x), 1e-5, 1e-6));
  l->train(false);
  const GeneratorState untouched = dropout_gen->state();
  EXPECT_TRUE(all_close(l->forward(x), expected(x), 1e-5, 1e-6));
  EXPECT_EQ(dropout_gen->state(), untouched);
}

TEST(NnLora, GradcheckThroughTheAdapters) {
  auto l = with_trained_lora({.rank = 2, .alpha = 5}, true);
  l->to(DType::f64);
  EXPECT_EQ(l->lora_A->weight.dtype(), DType::f64);
  Tensor x = random_tensor({3, 12}, 14, DType::f64, true);
  EXPECT_TRUE(gradcheck_module(*l, x, [&](const Tensor& in) { return l->forward(in); }));
}

TEST(NnLora, AdaptersFollowTheBaseDtype) {
  Generator gen(15);
  Linear l(8, 8, gen);
  l.to(DType::f64);
  l.add_lora({.rank = 2}, gen);
  EXPECT_EQ(l.lora_A->weight.dtype(), DType::f64);
  EXPECT_EQ(l.lora_B->weight.dtype(), DType::f64);
}

TEST(NnLora, BadConfigsAreRejected) {
  Generator gen(16);
  Linear l(12, 10, gen);
  EXPECT_EQ(error_message<ValueError>([&] { l.add_lora({.rank = 0}, gen); }),
            "Linear.add_lora: rank 0 must be in [1, min(in 12, out 10)]");
  EXPECT_EQ(error_message<ValueError>([&] { l.add_lora({.rank = 11}, gen); }),
            "Linear.add_lora: rank 11 must be in [1, min(in 12, out 10)]");
  EXPECT_EQ(error_message<ValueError>([&] { l.add_lora({.rank = 2, .alpha = -1}, gen); }),
            "Linear.add_lora: alpha must be positive, got -1");
  EXPECT_EQ(error_message<ValueError>([&] { l.add_lora({.rank = 2, .dropout = 1.0}, gen); }),
            "Linear.add_lora: dropout must be in [0, 1), got 1");
  EXPECT_EQ(error_message<ValueError>([&] { l.add_lora({.rank = 2, .dropout = 0.1}, gen); }),
            "Linear.add_lora: dropout 0.1 needs a generator (dropout_gen)");
  EXPECT_EQ(parameter_names(l), Names({"weight"}));  // failed calls change nothing
  EXPECT_TRUE(l.weight.requires_grad());
  l.add_lora({.rank = 10}, gen);
  EXPECT_EQ(error_message<ValueError>([&] { l.add_lora({.rank = 2}, gen); }),
            "Linear.add_lora: the layer already has a LoRA adapter");
}

}  // namespace
}  // namespace ponder::nn
