#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;

struct UnaryCase {
  const char* name;
  Tensor (*op)(const Tensor&);
  double (*reference)(double);
  bool positive_domain;
};

const UnaryCase kUnary[] = {
    {"neg", neg, [](double x) { return -x; }, false},
    {"exp", exp, [](double x) { return std::exp(x); }, false},
    {"log", log, [](double x) { return std::log(x); }, true},
    {"sqrt", sqrt, [](double x) { return std::sqrt(x); }, true},
    {"rsqrt", rsqrt, [](double x) { return 1 / std::sqrt(x); }, true},
    {"abs", abs, [](double x) { return std::abs(x); }, false},
    {"tanh", tanh, [](double x) { return std::tanh(x); }, false},
    {"sigmoid", sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }, false},
    {"silu", silu, [](double x) { return x / (1 + std::exp(-x)); }, false},
    {"gelu", gelu, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, false},
    {"relu", relu, [](double x) { return x > 0 ? x : 0; }, false},
    {"relu2", relu2, [](double x) { return x > 0 ? x * x : 0; }, false},
    {"square", square, [](double x) { return x * x; }, false},
    {"sin", sin, [](double x) { return std::sin(x); }, false},
    {"cos", cos, [](double x) { return std::cos(x); }, false},
};

// Inputs away from the kinks of abs/relu so central differences are valid.
Tensor smooth_input(bool positive, uint64_t seed) {
  Tensor x = random_tensor({3, 5}, seed);
  Tensor away = where(lt(abs(x), scalar_like(0.1, x)), x + 0.3, x);
  return (positive ? abs(away) + 0.2 : away).detach().set_requires_grad(true);
}

TEST(Unary, ValuesMatchTheLibmReference) {
  for (const UnaryCase& c : kUnary) {
    Tensor x = smooth_input(c.positive_domain, 1).detach();
    std::vector<double> in = x.to_vector<double>(), out = c.op(x).to_vector<double>();
    for (size_t i = 0; i < in.size(); ++i) EXPECT_NEAR(out[i], c.reference(in[i]), 1e-14) << c.name;
  }
}

TEST(Unary, Gradcheck) {
  for (const UnaryCase& c : kUnary) {
    Tensor x = smooth_input(c.positive_domain, 2);
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return c.op(in[0]); }, {x})) << c.name;
  }
  Tensor x = smooth_input(true, 3);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return pow(in[0], 2.5); }, {x}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return pow(in[0], -1.0); }, {x}));
}

TEST(Unary, Bf16ComputesInFloatAndRounds) {
  Tensor x = tensor({0.5, 1.0, 2.0}, {3}, {.dtype = DType::bf16});
  std::vector<float> y = exp(x).to_vector<float>();
  EXPECT_EQ(y[1], float(bf16(std::exp(1.0f))));
}

TEST(Unary, IntegerInputIsRefused) {
  EXPECT_THROW(exp(arange(0, 3)), DTypeError);
}

TEST(Binary, BroadcastingShapesAndValues) {
  Tensor a = arange(0, 6, 1, {.dtype = DType::f64}).reshape({2, 3});
  Tensor b = tensor({10, 20, 30}, {3}, {.dtype = DType::f64});
  Tensor c = tensor({1, 2}, {2, 1}, {.dtype = DType::f64});
  EXPECT_EQ((a + b).to_vector<double>(), (std::vector<double>{10, 21, 32, 13, 24, 35}));
  EXPECT_EQ((a * c).to_vector<double>(), (std::vector<double>{0, 1, 2, 6, 8, 10}));
  EXPECT_EQ((b - c).shape(), Shape({2, 3}));
  EXPECT_EQ((a / 2.0).to_vector<double>()[5], 2.5);
  EXPECT_EQ((1.0 - a).to_vector<double>()[1], 0.0);
  EXPECT_EQ(maximum(a, c).to_vector<double>(), (std::vector<double>{1, 1, 2, 3, 4, 5}));
  EXPECT_EQ(minimum(a, c).to_vector<double>(), (std::vector<double>{0, 1, 1, 2, 2, 2}));
}

TEST(Binary, MismatchesNameTheOpAndShapes) {
  try {
    zeros({2, 3}) + zeros({4, 3});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "add: shapes [2, 3] and [4, 3] cannot be broadcast together");
  }
  try {
    zeros({2}) * zeros({2}, {.dtype = DType::f64});
    FAIL();
  } catch (const DTypeError& e) {
    EXPECT_STREQ(e.what(), "mul: operands differ in dtype: [2] f32 cpu and [2] f64 cpu");
  }
  EXPECT_THROW(div(arange(1, 3), arange(1, 3)), DTypeError);
}

TEST(Binary, GradcheckWithBroadcasting) {
  Tensor a = random_tensor({2, 3, 4}, 1, DType::f64, true);
  Tensor b = random_tensor({3, 1}, 2, DType::f64, true);
  Tensor pos = (abs(random_tensor({4}, 3)) + 0.5).detach().set_requires_grad(true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return in[0] + in[1]; }, {a, b}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return in[0] - in[1]; }, {a, b}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return in[0] * in[1]; }, {a, b}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return in[0] / in[1]; }, {a, pos}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return maximum(in[0], in[1]); }, {a, b}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return minimum(in[0], in[1]); }, {a, b}));
}

TEST(Binary, MaximumAndMinimumSendTiedGradientsToTheFirstOperand) {
  for (bool is_max : {true, false}) {
    Tensor a = tensor({1, 2, 3}, {3}, {.dtype = DType::f64, .requires_grad = true});
    Tensor b = tensor({1, 5, 0}, {3}, {.dtype = DType::f64, .requires_grad = true});
    (is_max ? maximum(a, b) : minimum(a, b)).sum().backward();
    // element 0 ties; the maximum picks b in element 1 and a in element 2, the minimum the reverse
    const double a1 = is_max ? 0 : 1, a2 = is_max ? 1 : 0;
    EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1, a1, a2})) << is_max;
    EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{0, 1 - a1, 1 - a2})) << is_max;
  }
}

TEST(Compare, GiveU8AndNoGradient) {
  Tensor a = tensor({1, 2, 3}, {3}, {.requires_grad = true});
  Tensor b = tensor({2, 2, 2}, {3});
  EXPECT_EQ(lt(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 0}));
  EXPECT_EQ(le(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 1, 0}));
  EXPECT_EQ(eq(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 0}));
  EXPECT_EQ(ne(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(gt(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 1}));
  EXPECT_EQ(ge(a, b).dtype(), DType::u8);
  EXPECT_FALSE(ge(a, b).requires_grad());
}

TEST(Where, SelectsAndRoutesGradients) {
  Tensor cond = tensor({1, 0, 1}, {3}, {.dtype = DType::u8});
  Tensor a = random_tensor({2, 3}, 1, DType::f64, true);
  Tensor b = random_tensor({3}, 2, DType::f64, true);
  Tensor y = where(cond, a, b);
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), yv = y.to_vector<double>();
  EXPECT_EQ(yv[0], av[0]);
  EXPECT_EQ(yv[1], bv[1]);
  EXPECT_EQ(yv[5], av[5]);
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return where(cond, in[0], in[1]); }, {a, b}));
  EXPECT_THROW(where(a, a, b), DTypeError);
}

}  // namespace
}  // namespace ponder
