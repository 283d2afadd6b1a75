#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "tensor/philox.h"

namespace ponder {
namespace {

// Known-answer vectors of Random123 (kat_vectors: counter[4] key[2] -> output[4]).
TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Case {
    uint32_t c[4], k[2], out[4];
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Case& c : cases) {
    philox::Words w = philox::philox4x32_10(c.c[0], c.c[1], c.c[2], c.c[3], c.k[0], c.k[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(w.w[i], c.out[i]) << "word " << i;
  }
}

TEST(Generator, SameSeedSameStreamAndOffsetsAdvance) {
  Generator a(42), b(42);
  Tensor x = rand({1000}, a), y = rand({1000}, b);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  EXPECT_EQ(a.state().offset, 250u);  // four values per Philox block
  Tensor x2 = rand({1000}, a);
  EXPECT_NE(x.to_vector<float>(), x2.to_vector<float>());
}

TEST(Generator, ReplaysFromSavedState) {
  Generator g(3);
  rand({17}, g);
  GeneratorState saved = g.state();
  std::vector<float> first = randn({64}, g).to_vector<float>();
  g.set_state(saved);
  EXPECT_EQ(randn({64}, g).to_vector<float>(), first);
}

TEST(Generator, UniformAndNormalHaveTheRightMoments) {
  Generator g(1);
  const int n = 200000;
  std::vector<double> u = rand({n}, g, {.dtype = DType::f64}).to_vector<double>();
  std::vector<double> z = randn({n}, g, {.dtype = DType::f64}).to_vector<double>();
  double mu = 0, mz = 0, vz = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_GE(u[i], 0.0);
    ASSERT_LT(u[i], 1.0);
    mu += u[i] / n;
    mz += z[i] / n;
  }
  for (int i = 0; i < n; ++i) vz += (z[i] - mz) * (z[i] - mz) / n;
  EXPECT_NEAR(mu, 0.5, 0.005);
  EXPECT_NEAR(mz, 0.0, 0.01);
  EXPECT_NEAR(vz, 1.0, 0.01);
}

TEST(Generator, TruncatedNormalStaysWithinThreeStdAndKeepsUnitVariance) {
  Generator g(5);
  Tensor t = empty({100000}, {.dtype = DType::f64});
  trunc_normal_(t, 2.0, g);
  std::vector<double> v = t.to_vector<double>();
  double var = 0;
  for (double x : v) {
    ASSERT_LE(std::abs(x), 3.0 * 2.0 * 1.0148 + 1e-12);
    var += x * x / v.size();
  }
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.03);
}

TEST(Generator, ElementDependsOnlyOnItsIndex) {
  // Filling a strided view writes the same values as filling contiguous memory.
  Generator a(9), b(9);
  Tensor base = zeros({4, 6});
  uniform_(base.transpose(0, 1), 0.0, 1.0, a);
  Tensor ref = rand({6, 4}, b);
  EXPECT_EQ(base.transpose(0, 1).contiguous().to_vector<float>(), ref.to_vector<float>());
}

}  // namespace
}  // namespace ponder
