#include <gtest/gtest.h>

#include "ops/ops.h"

namespace ponder {
namespace {

TEST(InPlace, CopyBroadcastsConvertsAndBumpsTheVersion) {
  Tensor dst = zeros({2, 3}, {.dtype = DType::f64});
  uint32_t v = dst.version();
  copy_(dst, tensor({1, 2, 3}, {3}));
  EXPECT_EQ(dst.to_vector<double>(), (std::vector<double>{1, 2, 3, 1, 2, 3}));
  EXPECT_GT(dst.version(), v);
  copy_(dst.slice(1, 0, 1), tensor({7, 8}, {2, 1}));
  EXPECT_EQ(dst.to_vector<double>(), (std::vector<double>{7, 2, 3, 8, 2, 3}));
  fill_(dst.transpose(0, 1).slice(0, 2, 3), -1.0);
  EXPECT_EQ(dst.to_vector<double>(), (std::vector<double>{7, 2, -1, 8, 2, -1}));
  EXPECT_THROW(copy_(dst, zeros({4})), ShapeError);
}

TEST(InPlace, RefusesParametersWhileRecording) {
  Tensor w = ones({2}, {.requires_grad = true});
  EXPECT_THROW(fill_(w, 0.0), AutogradError);
  NoGrad no_grad;
  fill_(w, 0.0);
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{0, 0}));
}

}  // namespace
}  // namespace ponder
