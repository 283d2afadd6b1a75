#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;

TEST(Reduce, SumAndMeanOverAnyDims) {
  Tensor x = arange(0, 24, 1, {.dtype = DType::f64}).reshape({2, 3, 4});
  EXPECT_EQ(x.sum().item<double>(), 276.0);
  EXPECT_EQ(x.sum({0}).shape(), Shape({3, 4}));
  EXPECT_EQ(x.sum({0}).to_vector<double>()[0], 12.0);
  EXPECT_EQ(x.sum({1}, true).shape(), Shape({2, 1, 4}));
  EXPECT_EQ(x.sum({1}).to_vector<double>()[0], 12.0);
  EXPECT_EQ(x.sum({-1}).to_vector<double>(), (std::vector<double>{6, 22, 38, 54, 70, 86}));
  EXPECT_EQ(x.sum({0, 2}).to_vector<double>(), (std::vector<double>{60, 92, 124}));
  EXPECT_EQ(x.mean({2}).to_vector<double>()[1], 5.5);
  EXPECT_EQ(x.transpose(0, 2).sum({0}).to_vector<double>()[0], 6.0);
  EXPECT_THROW(x.sum({0, 0}), ShapeError);
  EXPECT_THROW(x.sum({3}), ShapeError);
}

TEST(Reduce, AmaxNormArgmax) {
  Tensor x = tensor({1, 5, 3, -7, 2, 2}, {2, 3}, {.dtype = DType::f64});
  EXPECT_EQ(amax(x, {1}).to_vector<double>(), (std::vector<double>{5, 2}));
  EXPECT_EQ(amax(x).item<double>(), 5.0);
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
  EXPECT_NEAR(norm(x).item<double>(), std::sqrt(1 + 25 + 9 + 49 + 4 + 4), 1e-12);
  EXPECT_NEAR(norm(x, {0}).to_vector<double>()[0], std::sqrt(50.0), 1e-12);
}

TEST(Reduce, F32SumsAccumulateWidely) {
  // 2^24 + 1 + 1 + ... is lossy in float accumulation; the wide accumulator is exact here.
  Tensor x = ones({1 << 20});
  EXPECT_EQ(x.sum().item<float>(), float(1 << 20));
  Tensor z = tensor({16777216.0, 1.0, 1.0}, {3});
  EXPECT_EQ(z.sum().item<float>(), 16777218.0f);
}

TEST(Reduce, Gradcheck) {
  Tensor x = random_tensor({3, 4, 5}, 1, DType::f64, true);
  for (IntVec dims : {IntVec{}, IntVec{0}, IntVec{1, 2}, IntVec{-1}}) {
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return in[0].sum(dims); }, {x}));
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return in[0].mean(dims, true); }, {x}));
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return amax(in[0], dims); }, {x}));
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return norm(in[0], dims); }, {x}));
  }
}

TEST(Reduce, TiedMaximaShareTheGradient) {
  Tensor x = tensor({2, 2, 1}, {3}, {.dtype = DType::f64, .requires_grad = true});
  amax(x).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0.5, 0.5, 0}));
  Tensor z = zeros({3}, {.dtype = DType::f64, .requires_grad = true});
  norm(z).backward();
  EXPECT_EQ(z.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

}  // namespace
}  // namespace ponder
