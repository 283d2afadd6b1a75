#include <gtest/gtest.h>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::gradcheck;
using testing::random_tensor;

TEST(ViewGrad, EveryViewOpPassesGradcheck) {
  Tensor x = random_tensor({2, 3, 4}, 1, DType::f64, true);
  // Each view is followed by a product with a fixed tensor so the gradient is not uniform.
  Tensor w = random_tensor({24}, 2);
  auto weigh = [&](const Tensor& t) { return t.contiguous().reshape({-1}) * w.slice(0, 0, t.numel()); };
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].reshape({4, 6})); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].view({6, 4})); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].permute({2, 0, 1})); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].transpose(0, 2)); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].slice(2, 1, 4, 2)); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].narrow(1, 1, 2)); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].unsqueeze(1).squeeze(1)); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].flatten(0, 1)); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].transpose(1, 2).contiguous()); }, {x}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].clone()); }, {x}));
  Tensor small = random_tensor({3, 1}, 3, DType::f64, true);
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return weigh(in[0].expand({2, 3, 4})); }, {small}));
}

TEST(ViewGrad, DtypeAndDeviceCastsPassGradientsBack) {
  Tensor x = random_tensor({5}, 1, DType::f64, true);
  Tensor y = x.to(DType::bf16);
  EXPECT_TRUE(y.requires_grad());
  (y.to(DType::f32) * 2.0).sum().backward();
  EXPECT_EQ(x.grad().dtype(), DType::f64);
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>(5, 2.0));
}

TEST(ViewGrad, TransposedGradientsAccumulateIntoDenseLeafGradients) {
  Tensor x = random_tensor({3, 4}, 1, DType::f64, true);
  x.t().sum().backward();
  EXPECT_TRUE(x.grad().is_contiguous());
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>(12, 1.0));
}

}  // namespace
}  // namespace ponder
