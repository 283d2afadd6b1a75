// Random compositions of ops, gradchecked as a whole: shared subexpressions, broadcasting,
// views and reductions interleaved the way model code mixes them.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {

using Builder = std::function<Tensor(const std::vector<Tensor>&, std::mt19937&)>;

// Each step takes operands from the values built so far (shape [4, 6]) and returns a new one.
Tensor pick(const std::vector<Tensor>& v, std::mt19937& rng) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}

const std::vector<std::pair<const char*, Builder>>& steps() {
  static const std::vector<std::pair<const char*, Builder>> all = {
      {"tanh", [](auto& v, auto& r) { return tanh(pick(v, r)); }},
      {"sigmoid", [](auto& v, auto& r) { return sigmoid(pick(v, r)); }},
      {"silu", [](auto& v, auto& r) { return silu(pick(v, r)); }},
      {"sin", [](auto& v, auto& r) { return sin(pick(v, r)); }},
      {"exp", [](auto& v, auto& r) { return exp(pick(v, r) * 0.3); }},
      {"add", [](auto& v, auto& r) { return pick(v, r) + pick(v, r); }},
      {"sub", [](auto& v, auto& r) { return pick(v, r) - pick(v, r); }},
      {"mul", [](auto& v, auto& r) { return pick(v, r) * pick(v, r); }},
      {"div", [](auto& v, auto& r) { return pick(v, r) / (square(pick(v, r)) + 1.0); }},
      {"matmul", [](auto& v, auto& r) { return matmul(pick(v, r), pick(v, r).t()).slice(1, 0, 4).expand({4, 4}).contiguous().reshape({4, 4}).matmul(pick(v, r)); }},
      {"row sum", [](auto& v, auto& r) { return pick(v, r) + pick(v, r).sum({1}, true); }},
      {"col mean", [](auto& v, auto& r) { return pick(v, r) * pick(v, r).mean({0}); }},
      {"transpose", [](auto& v, auto& r) { return pick(v, r).t().contiguous().reshape({4, 6}); }},
      {"slice cat", [](auto& v, auto& r) { Tensor a = pick(v, r); return a.slice(1, 3, 6).expand({2, 4, 3}).sum({0}).reshape({4, 3}).matmul(pick(v, r).slice(0, 0, 3)); }},
      {"norm", [](auto& v, auto& r) { return pick(v, r) / (norm(pick(v, r), {1}, true) + 1.0); }},
      {"max", [](auto& v, auto& r) { return pick(v, r) - amax(pick(v, r), {0}, true); }},
  };
  return all;
}

TEST(Composition, RandomGraphsPassGradcheck) {
  for (uint32_t seed = 0; seed < 25; ++seed) {
    std::mt19937 rng(seed);
    TensorList inputs = {testing::random_tensor({4, 6}, 3 * seed + 1, DType::f64, true),
                         testing::random_tensor({4, 6}, 3 * seed + 2, DType::f64, true)};
    std::vector<size_t> plan;
    std::string names;
    for (int i = 0; i < 6; ++i) {
      plan.push_back(std::uniform_int_distribution<size_t>(0, steps().size() - 1)(rng));
      names += std::string(steps()[plan.back()].first) + " ";
    }
    auto f = [&](const TensorList& in) {
      std::mt19937 local(seed);  // the same operand choices on every evaluation
      std::vector<Tensor> values(in.begin(), in.end());
      for (size_t s : plan) values.push_back(steps()[s].second(values, local));
      return values.back() + values[values.size() / 2];
    };
    EXPECT_TRUE(testing::gradcheck(f, inputs, {.atol = 1e-5, .rtol = 1e-4})) << "seed " << seed << ": " << names;
  }
}

}  // namespace
}  // namespace ponder
