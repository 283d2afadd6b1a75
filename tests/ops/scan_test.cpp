#include "ops/scan.h"

#include <gtest/gtest.h>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {

using testing::gradcheck;
using testing::random_tensor;

const Tensor kStarts = tensor({1, 0, 0, 1, 0}, {5}, {.dtype = DType::u8});

TEST(LinearScan, MatchesTheRecurrenceAndRestartsAtSampleStarts) {
  const Tensor x = random_tensor({5, 3}, 1);
  const Tensor alpha = tensor({0.1, 0.5, 0.9}, {3}, {.dtype = DType::f64});
  const std::vector<double> xs = x.to_vector<double>(), a = alpha.to_vector<double>(),
                            got = linear_scan(x, alpha, kStarts).to_vector<double>();
  const std::vector<int> starts = {1, 0, 0, 1, 0};
  for (int c = 0; c < 3; ++c) {
    double y = 0;
    for (int t = 0; t < 5; ++t) {
      y = (1 - a[c]) * xs[t * 3 + c] + (starts[t] ? 0.0 : a[c] * y);
      EXPECT_DOUBLE_EQ(got[t * 3 + c], y) << "t " << t << ", channel " << c;
    }
  }
}

TEST(LinearScan, Gradcheck) {
  const Tensor x = random_tensor({5, 3}, 2, DType::f64, true);
  Tensor alpha = tensor({0.2, 0.6, 0.8}, {3}, {.dtype = DType::f64});
  alpha.set_requires_grad(true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return linear_scan(in[0], in[1], kStarts); }, {x, alpha}));
  const Tensor i64_starts = tensor({1, 0, 1, 0, 0}, {5}, {.dtype = DType::i64});
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return linear_scan(in[0], in[1], i64_starts); }, {x, alpha}));
}

TEST(LinearScan, RejectsMismatchedShapes) {
  const Tensor x = random_tensor({5, 3}, 3);
  EXPECT_THROW(linear_scan(x, zeros({2}, {.dtype = DType::f64}), kStarts), ShapeError);
  EXPECT_THROW(linear_scan(x, zeros({3}, {.dtype = DType::f64}), zeros({4}, {.dtype = DType::u8})), ShapeError);
}

}  // namespace
}  // namespace ponder
