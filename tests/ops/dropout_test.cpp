#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"
#include "tensor/philox.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::error_message;
using testing::gradcheck;
using testing::random_tensor;

using Values = std::vector<double>;

// 1 where the element survived (x has no zeros, so a zero output means dropped), else 0.
std::vector<int> kept_of(const Tensor& y) {
  std::vector<int> kept;
  for (double v : y.to_vector<double>()) kept.push_back(v != 0.0);
  return kept;
}

TEST(Dropout, KeepsAboutOneMinusPAndScalesKeptValues) {
  const int64_t n = 100000;
  Tensor x = random_tensor({n}, 1);
  for (double p : {0.1, 0.3, 0.9}) {
    Generator gen(42);
    Tensor y = dropout(x, p, gen);
    std::vector<int> kept = kept_of(y);
    double fraction = 0;
    for (int k : kept) fraction += k;
    fraction /= n;
    EXPECT_NEAR(fraction, 1 - p, 0.01) << "p " << p;  // binomial sd is below 0.0016
    Values xs = x.to_vector<double>(), ys = y.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      if (kept[i]) {
        EXPECT_NEAR(ys[i], xs[i] / (1 - p), 1e-15 * std::abs(ys[i])) << i;
      }
    }
  }
}

TEST(Dropout, MaskFollowsThePhiloxRuleAndAdvancesTheGenerator) {
  const int64_t n = 1003;
  const double p = 0.3;  // p * 2^24 = 5033164.8 is not an integer
  Generator gen(9);
  gen.take(5);
  Tensor y = dropout(random_tensor({n}, 1), p, gen);
  EXPECT_EQ(gen.state().offset, 5 + philox::blocks_for(n));
  std::vector<int> kept = kept_of(y);
  for (int64_t i = 0; i < n; ++i) {
    bool expected = static_cast<double>(philox::word(9, 5, i) >> 8) >= p * 16777216.0;
    ASSERT_EQ(kept[i], expected) << i;
  }
}

TEST(Dropout, SameGeneratorStateGivesTheSameMask) {
  Tensor x = random_tensor({64, 33}, 1);
  Generator gen(5);
  GeneratorState start = gen.state();
  Tensor first = dropout(x, 0.5, gen);
  Tensor next = dropout(x, 0.5, gen);
  gen.set_state(start);
  Tensor again = dropout(x, 0.5, gen);
  EXPECT_EQ(first.to_vector<double>(), again.to_vector<double>());
  EXPECT_NE(first.to_vector<double>(), next.to_vector<double>());

  // The mask depends on the element's position only, not on dtype or layout.
  gen.set_state(start);
  Tensor f32 = dropout(x.to(DType::f32), 0.5, gen);
  gen.set_state(start);
  Tensor bf16 = dropout(x.to(DType::bf16), 0.5, gen);
  EXPECT_EQ(kept_of(f32), kept_of(first));
  EXPECT_EQ(kept_of(bf16), kept_of(first));
  EXPECT_TRUE(all_close(f32, first, 1e-6, 1e-7));
  EXPECT_TRUE(all_close(bf16, first, 1e-2, 1e-2));
  Tensor xt = random_tensor({33, 64}, 2).t();
  gen.set_state(start);
  Tensor strided = dropout(xt, 0.5, gen);
  gen.set_state(start);
  EXPECT_EQ(strided.to_vector<double>(), dropout(xt.contiguous(), 0.5, gen).to_vector<double>());
}

TEST(Dropout, BackwardRegeneratesTheForwardMask) {
  const double p = 0.25;
  Tensor x = random_tensor({100, 70}, 1, DType::f64, true);
  Generator gen(3);
  Tensor y = dropout(x, p, gen);
  y.backward(ones({100, 70}, {.dtype = DType::f64}));
  std::vector<int> kept = kept_of(y);
  Values grad = x.grad().to_vector<double>();
  const double scale = 1.0 / (1.0 - p);
  for (size_t i = 0; i < kept.size(); ++i) ASSERT_EQ(grad[i], kept[i] ? scale : 0.0) << i;
}

TEST(Dropout, Gradcheck) {
  Generator gen(11);
  for (Shape shape : {Shape{4, 5}, Shape{3, 2, 7}, Shape{1}}) {
    Tensor x = random_tensor(shape, 1, DType::f64, true);
    GeneratorState start = gen.state();
    // Re-seeding inside f makes every evaluation use the same mask.
    auto f = [&](const TensorList& in) {
      gen.set_state(start);
      return dropout(in[0], 0.4, gen);
    };
    EXPECT_TRUE(gradcheck(f, {x})) << shape;
  }
}

TEST(Dropout, ZeroProbabilityAndEvaluationAreIdentity) {
  Tensor x = random_tensor({8}, 1, DType::f64, true);
  Generator gen(1);
  EXPECT_TRUE(dropout(x, 0.0, gen).is_same(x));
  EXPECT_TRUE(dropout(x, 0.5, gen, /*training=*/false).is_same(x));
  EXPECT_EQ(gen.state().offset, 0u);
}

TEST(Dropout, BadInputsNameTheProblem) {
  Generator gen(1);
  Tensor x = zeros({3});
  EXPECT_EQ(error_message<ValueError>([&] { dropout(x, 1.0, gen); }), "dropout: p must be in [0, 1), got 1");
  EXPECT_EQ(error_message<ValueError>([&] { dropout(x, -0.1, gen, false); }),
            "dropout: p must be in [0, 1), got -0.1");
  EXPECT_THROW(dropout(x, std::nan(""), gen), ValueError);
  EXPECT_EQ(error_message<DTypeError>([&] { dropout(arange(0, 3), 0.5, gen); }),
            "dropout: expected a floating tensor, got [3] i64 cpu");
}

}  // namespace
}  // namespace ponder
