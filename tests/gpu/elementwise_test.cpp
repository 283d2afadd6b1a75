// CUDA elementwise kernels against their CPU twins.
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using Elementwise = testing::CudaTwin;

const DType kFloating[] = {DType::f32, DType::bf16, DType::f64};

TEST_F(Elementwise, UnaryOpsForwardAndBackward) {
  using UnaryFn = Tensor (*)(const Tensor&);
  const UnaryFn ops[] = {neg, exp, tanh, sigmoid, silu, gelu, relu, relu2, square, sin, cos, abs};
  for (DType dt : kFloating) {
    for (UnaryFn op : ops) {
      // odd sizes exercise the vector tail; the slice exercises strided operands
      Tensor x = random_tensor({37, 129}, 1, dt, true);
      EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return op(in[0]); }, {x}, twin_tolerance(dt)));
      EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return op(in[0].t().slice(0, 1, 100, 3)); }, {x},
                                   twin_tolerance(dt)));
    }
    Tensor pos = (abs(random_tensor({1000}, 2, dt)) + 0.5).detach().set_requires_grad(true);
    for (UnaryFn op : {log, sqrt, rsqrt}) {
      EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return op(in[0]); }, {pos}, twin_tolerance(dt)));
    }
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return pow(in[0], 1.7); }, {pos}, twin_tolerance(dt)));
  }
}

TEST_F(Elementwise, BinaryOpsWithBroadcasting) {
  for (DType dt : kFloating) {
    Tensor a = random_tensor({5, 33, 17}, 1, dt, true), b = random_tensor({33, 1}, 2, dt, true);
    Tensor d = (abs(random_tensor({17}, 3, dt)) + 0.5).detach().set_requires_grad(true);
    double tol = twin_tolerance(dt);
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return in[0] + in[1]; }, {a, b}, tol));
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return in[0] - in[1]; }, {a, b}, tol));
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return in[0] * in[1]; }, {a, b}, tol));
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return in[0] / in[1]; }, {a, d}, tol));
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return maximum(in[0], in[1]); }, {a, b}, tol));
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return minimum(in[0], in[1]); }, {a, b}, tol));
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return where(gt(in[0], in[1]), in[0], in[1] * 2.0); },
                                 {a, b}, tol));
  }
}

TEST_F(Elementwise, ComparisonsAndCopiesAreExact) {
  Tensor a = random_tensor({1000}, 1, DType::f32), b = random_tensor({1000}, 2, DType::f32);
  Tensor da = a.to(Device::cuda(0)), db = b.to(Device::cuda(0));
  EXPECT_EQ(lt(da, db).to(Device::cpu()).to_vector<uint8_t>(), lt(a, b).to_vector<uint8_t>());
  EXPECT_EQ(eq(da, da).to(Device::cpu()).to_vector<uint8_t>(), std::vector<uint8_t>(1000, 1));
  // dtype conversions on the device round like the CPU
  for (DType to : {DType::bf16, DType::f64, DType::i32, DType::i64, DType::u8}) {
    EXPECT_EQ(da.to(to).to(Device::cpu()).to_vector<double>(), a.to(to).to_vector<double>()) << dtype_name(to);
  }
  // strided device-to-device copies
  Tensor m = random_tensor({64, 48}, 3, DType::f32).to(Device::cuda(0));
  EXPECT_EQ(m.t().contiguous().to(Device::cpu()).to_vector<float>(),
            m.to(Device::cpu()).t().contiguous().to_vector<float>());
  EXPECT_EQ(full({7, 3}, 2.5, {.device = Device::cuda(0)}).to(Device::cpu()).to_vector<float>(),
            std::vector<float>(21, 2.5f));
}

}  // namespace
}  // namespace ponder
