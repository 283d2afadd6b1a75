#include <gtest/gtest.h>

#include <cmath>

#include "nn/embedding.h"
#include "nn/norm.h"
#include "nn/nn_test_util.h"
#include "ops/ops.h"

namespace ponder::nn {
namespace {
using ponder::testing::all_close;
using ponder::testing::error_message;
using ponder::testing::gradcheck;
using ponder::testing::random_tensor;
using testing::gradcheck_module;
using testing::parameter_names;

using Names = std::vector<std::string>;

TEST(NnEmbedding, RowsOfTheTableTimesTheScale) {
  Generator gen(1);
  Embedding plain(11, 6, gen), scaled(11, 6, gen, std::sqrt(6.0));
  EXPECT_EQ(parameter_names(plain), Names({"weight"}));
  EXPECT_EQ(plain.weight.shape(), Shape({11, 6}));
  Tensor ids = tensor({3, 0, 10, 3, 7, 1}, {2, 3}, {.dtype = DType::i64});
  Tensor out = scaled.forward(ids);
  EXPECT_EQ(out.shape(), Shape({2, 3, 6}));
  std::vector<float> w = scaled.weight.to_vector<float>(), o = out.to_vector<float>();
  const std::vector<int> id = {3, 0, 10, 3, 7, 1};
  for (int t = 0; t < 6; ++t)
    for (int d = 0; d < 6; ++d) EXPECT_FLOAT_EQ(o[t * 6 + d], w[id[t] * 6 + d] * float(std::sqrt(6.0)));
  EXPECT_TRUE(plain.forward(ids).grad_fn() != nullptr);
}

TEST(NnEmbedding, DefaultStdIsOneOverRootDimAndCanBeGiven) {
  Generator gen(2);
  Embedding e(512, 64, gen), wide(512, 64, gen, 1.0, 0.02);
  auto spread = [](const Tensor& t) {
    double s = 0;
    std::vector<float> v = t.to_vector<float>();
    for (float x : v) s += double(x) * x;
    return std::sqrt(s / double(v.size()));
  };
  EXPECT_NEAR(spread(e.weight), 1.0 / 8.0, 0.02 / 8.0);
  EXPECT_NEAR(spread(wide.weight), 0.02, 0.02 * 0.02);
}

TEST(NnEmbedding, GradcheckAndBadConfigs) {
  Generator gen(3);
  Embedding e(5, 3, gen, 2.5);
  e.to(DType::f64);
  Tensor ids = tensor({4, 1, 4, 0}, {4}, {.dtype = DType::i32});
  EXPECT_TRUE(gradcheck([&](const TensorList&) { return e.forward(ids); }, {e.weight}));
  EXPECT_EQ(error_message<ValueError>([&] { Embedding(0, 3, gen); }),
            "Embedding: vocab and dim must be positive, got vocab 0, dim 3");
  EXPECT_EQ(error_message<ValueError>([&] { Embedding(4, 3, gen, 1.0, -1.0); }),
            "Embedding: init_std must be non-negative, got -1");
}

// x * (mean(x^2) + eps)^-1/2 from elementary ops.
Tensor rms_reference(const Tensor& x, double eps) { return x * rsqrt((x * x).mean({-1}, true) + eps); }

TEST(NnNorm, RmsNormWeightedAndParameterFree) {
  RMSNorm weighted(6, 1e-5), bare(6, 1e-5, /*weighted=*/false);
  EXPECT_EQ(parameter_names(weighted), Names({"weight"}));
  EXPECT_EQ(parameter_names(bare), Names({}));
  EXPECT_EQ(weighted.weight.to_vector<float>(), std::vector<float>(6, 1.0f));
  Generator gen(4);
  {
    NoGrad no_grad;
    normal_(weighted.weight, 1.0, 0.3, gen);
  }
  Tensor x = random_tensor({4, 6}, 5, DType::f32);
  EXPECT_TRUE(all_close(weighted.forward(x), rms_reference(x, 1e-5) * weighted.weight, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(bare.forward(x), rms_reference(x, 1e-5), 1e-5, 1e-6));
}

TEST(NnNorm, LayerNormAffineAndParameterFree) {
  LayerNorm affine(6, 1e-5), bare(6, 1e-5, /*affine=*/false);
  EXPECT_EQ(parameter_names(affine), Names({"weight", "bias"}));
  EXPECT_EQ(parameter_names(bare), Names({}));
  Generator gen(6);
  {
    NoGrad no_grad;
    normal_(affine.weight, 1.0, 0.3, gen);
    normal_(affine.bias, 0.0, 0.3, gen);
  }
  Tensor x = random_tensor({4, 6}, 7, DType::f32) + 2.0;
  Tensor centred = x - x.mean({-1}, true);
  Tensor normed = centred * rsqrt((centred * centred).mean({-1}, true) + 1e-5);
  EXPECT_TRUE(all_close(affine.forward(x), normed * affine.weight + affine.bias, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(bare.forward(x), normed, 1e-5, 1e-5));
}

TEST(NnNorm, Gradcheck) {
  RMSNorm rms(5, 1e-6);
  LayerNorm ln(5, 1e-6);
  rms.to(DType::f64);
  ln.to(DType::f64);
  Tensor x = random_tensor({3, 5}, 8, DType::f64, true);
  EXPECT_TRUE(gradcheck_module(rms, x, [&](const Tensor& in) { return rms.forward(in); }));
  EXPECT_TRUE(gradcheck_module(ln, x, [&](const Tensor& in) { return ln.forward(in); }));
}

TEST(NnNorm, ConfigsAndNames) {
  EXPECT_EQ(parse_norm_kind("rms"), NormKind::rms);
  EXPECT_EQ(parse_norm_kind("layer"), NormKind::layer);
  EXPECT_EQ(error_message<ValueError>([] { parse_norm_kind("batch"); }),
            "norm: unknown kind \"batch\" (choices: rms, layer)");
  EXPECT_NE(dynamic_cast<LayerNorm*>(make_norm({.kind = NormKind::layer}, 4).get()), nullptr);
  EXPECT_EQ(parameter_names(*make_norm({.kind = NormKind::rms, .weighted = false}, 4)), Names({}));
  EXPECT_EQ(error_message<ValueError>([] { RMSNorm(0); }), "RMSNorm: dim must be positive, got 0");
  EXPECT_EQ(error_message<ValueError>([] { LayerNorm(3, -1e-5); }),
            "LayerNorm: eps must be non-negative, got -1e-05");
}

}  // namespace
}  // namespace ponder::nn
