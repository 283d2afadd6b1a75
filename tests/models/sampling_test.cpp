#include "models/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "ops/ops.h"

namespace ponder::models {
namespace {

Tensor logits_of(const std::vector<double>& probabilities) {
  std::vector<double> logits;
  for (double p : probabilities) logits.push_back(std::log(p));
  return tensor(logits, {int64_t(logits.size())});
}

// How often each token comes up in `draws` samples.
std::map<int32_t, double> frequencies(const SamplingOptions& options, const Tensor& logits, int draws = 20000) {
  Sampler sampler(options);
  std::map<int32_t, double> f;
  for (int i = 0; i < draws; ++i) f[sampler.next(logits)] += 1.0 / draws;
  return f;
}

const std::vector<double> kProbabilities = {0.05, 0.5, 0.15, 0.3};

TEST(Sampling, GreedyTakesTheFirstLargestLogit) {
  Sampler greedy({});
  EXPECT_EQ(greedy.next(logits_of(kProbabilities)), 1);
  EXPECT_EQ(greedy.next(tensor({1, 3, 3, 2}, {1, 4})), 1);
  EXPECT_THROW(greedy.next(tensor({1, 3, 3, 2}, {2, 2})), ShapeError);
}

TEST(Sampling, FrequenciesFollowTheSoftmaxAtTheTemperature) {
  const Tensor logits = logits_of(kProbabilities);
  auto f = frequencies({.temperature = 1.0, .seed = 1}, logits);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(f[i], kProbabilities[i], 0.012) << "token " << i;
  // Temperature 2 flattens: probabilities proportional to sqrt(p).
  double total = 0;
  for (double p : kProbabilities) total += std::sqrt(p);
  f = frequencies({.temperature = 2.0, .seed = 2}, logits);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(f[i], std::sqrt(kProbabilities[i]) / total, 0.012) << "token " << i;
}

TEST(Sampling, TopKAndTopPKeepOnlyTheMostLikelyTokens) {
  const Tensor logits = logits_of(kProbabilities);
  auto f = frequencies({.temperature = 1.0, .top_k = 2, .seed = 3}, logits);
  EXPECT_EQ(f.size(), 2u);
  EXPECT_NEAR(f[1], 0.5 / 0.8, 0.012);
  EXPECT_NEAR(f[3], 0.3 / 0.8, 0.012);
  // 0.5 + 0.3 reaches 0.7; 0.5 alone reaches 0.5.
  f = frequencies({.temperature = 1.0, .top_p = 0.7, .seed = 4}, logits);
  EXPECT_EQ(f.size(), 2u);
  EXPECT_NEAR(f[1], 0.5 / 0.8, 0.012);
  EXPECT_EQ(frequencies({.temperature = 1.0, .top_p = 0.5, .seed = 5}, logits, 200).size(), 1u);
  // top-k = 1 is greedy at any temperature.
  f = frequencies({.temperature = 5.0, .top_k = 1, .seed = 6}, logits, 200);
  EXPECT_EQ(f.size(), 1u);
  EXPECT_EQ(f.begin()->first, 1);
}

TEST(Sampling, ASeedReplaysTheSameDraws) {
  const Tensor logits = logits_of({0.25, 0.25, 0.25, 0.25});
  auto draws = [&](uint64_t seed) {
    Sampler s({.temperature = 1.0, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.next(logits));
    return out;
  };
  EXPECT_EQ(draws(7), draws(7));
  EXPECT_NE(draws(7), draws(8));
}

TEST(Sampling, OptionsOutOfRangeAreRefused) {
  EXPECT_THROW(validate({.temperature = -1}), ValueError);
  EXPECT_THROW(validate({.temperature = NAN}), ValueError);
  EXPECT_THROW(validate({.top_k = -1}), ValueError);
  EXPECT_THROW(validate({.top_p = 0}), ValueError);
  EXPECT_THROW(validate({.top_p = 1.5}), ValueError);
  EXPECT_THROW(Sampler({.top_p = 0}), ValueError);
  EXPECT_NO_THROW(validate({.temperature = 0.7, .top_k = 50, .top_p = 0.9}));
}

}  // namespace
}  // namespace ponder::models
