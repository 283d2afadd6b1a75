// CUDA fused kernels against their CPU twins.
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using Fused = testing::CudaTwin;

const DType kTypes[] = {DType::f32, DType::bf16};

TEST_F(Fused, GatedProductsMatchCpu) {
  for (DType dt : kTypes) {
    for (const Shape& shape : {Shape{37, 1000}, Shape{5, 7}, Shape{1}}) {
      Tensor gate = random_tensor(shape, 1, dt, true), value = random_tensor(shape, 2, dt, true);
      const double tol = twin_tolerance(dt);
      EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return swiglu(in[0], in[1]); }, {gate, value}, tol))
          << dtype_name(dt) << " " << shape;
      EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return gated_output(in[0], in[1]); }, {gate, value}, tol))
          << dtype_name(dt) << " " << shape;
    }
    // Misaligned (one element into the buffer) and strided operands.
    Tensor a = random_tensor({1001}, 3, dt, true), b = random_tensor({40, 25}, 4, dt, true);
    auto shifted = [](const TensorList& in) { return swiglu(in[0].slice(0, 1, 1001), in[1].t().reshape({1000})); };
    EXPECT_TRUE(cuda_matches_cpu(shifted, {a, b}, twin_tolerance(dt))) << dtype_name(dt);
  }
}

TEST_F(Fused, AddRmsNormMatchesCpu) {
  for (DType dt : kTypes) {
    // A warp per row (1536 bf16, 1000 bf16, 64, 7), several warps (1536 f32), a block (8200), and
    // rows reread from the stored sum in each pass, packed (16400 f32) and not (4099).
    for (int64_t d : {1536, 1000, 64, 7, 8200, 16400, 4099}) {
      Tensor x = random_tensor({37, d}, 1, dt, true), r = random_tensor({37, d}, 2, dt, true);
      Tensor w = random_tensor({d}, 3, dt, true);
      const double tol = twin_tolerance(dt);
      auto both = [](const TensorList& in) {
        AddRmsNorm out = add_rms_norm(in[0], in[1], in[2], 1e-6);
        return cat({out.sum, out.normed}, 0);
      };
      EXPECT_TRUE(cuda_matches_cpu(both, {x, r, w}, tol)) << dtype_name(dt) << " D " << d;
      auto normed = [](const TensorList& in) { return add_rms_norm(in[0], in[1], Tensor(), 1e-6).normed; };
      EXPECT_TRUE(cuda_matches_cpu(normed, {x, r}, tol)) << dtype_name(dt) << " D " << d;
      // HRM-Text's: unweighted, and the sum carries on down the residual stream (its gradient joins dx)
      auto unweighted_both = [](const TensorList& in) {
        AddRmsNorm out = add_rms_norm(in[0], in[1], Tensor(), 1e-6);
        return cat({out.sum, out.normed}, 0);
      };
      EXPECT_TRUE(cuda_matches_cpu(unweighted_both, {x, r}, tol)) << dtype_name(dt) << " D " << d;
      // a transposed residual (copied by the op); only the sum used (normed's gradient is zeros)
      Tensor rt = random_tensor({d, 37}, 4, dt, true);
      auto sum = [](const TensorList& in) { return add_rms_norm(in[0], in[1].t(), in[2], 1e-6).sum; };
      EXPECT_TRUE(cuda_matches_cpu(sum, {x, rt, w}, tol)) << dtype_name(dt) << " D " << d;
    }
  }
}

TEST_F(Fused, AddRmsNormSumIsExact) {
  Tensor x = random_tensor({33, 1536}, 1, DType::bf16), r = random_tensor({33, 1536}, 2, DType::bf16);
  AddRmsNorm out = add_rms_norm(x.to(Device::cuda(0)), r.to(Device::cuda(0)), Tensor(), 1e-6);
  EXPECT_EQ(out.sum.to(Device::cpu()).to_vector<float>(), (x + r).to_vector<float>());
}

TEST_F(Fused, RopeQKMatchesCpu) {
  for (DType dt : kTypes) {
    for (int64_t d : {128, 64, 6}) {
      Tensor q = random_tensor({2, 19, 8, d}, 1, dt, true), k = random_tensor({2, 19, 2, d}, 2, dt, true);
      std::vector<double> p;
      for (int s = 0; s < 2; ++s)
        for (int i = 0; i < 19; ++i) p.push_back(i + 1000 * s);
      Tensor pos = tensor(p, {2, 19}, {.dtype = DType::i64});
      auto both = [](const TensorList& in) {
        RopeQK out = rope_qk(in[0], in[1], in[2], 1e4);
        return cat({out.q, out.k}, 2);
      };
      EXPECT_TRUE(cuda_matches_cpu(both, {q, k, pos}, twin_tolerance(dt))) << dtype_name(dt) << " D " << d;
      // q strided ([19, 2, ...] transposed); only k's output is used, so q's gradient is all zeros
      Tensor qt = random_tensor({19, 2, 8, d}, 3, dt, true);
      auto only_k = [](const TensorList& in) { return rope_qk(in[0].transpose(0, 1), in[1], in[2], 5e5).k; };
      EXPECT_TRUE(cuda_matches_cpu(only_k, {qt, k, pos}, twin_tolerance(dt))) << dtype_name(dt) << " D " << d;
    }
  }
}

TEST_F(Fused, RepeatedCallsGiveIdenticalBits) {
  const Device gpu = Device::cuda(0);
  Tensor x = random_tensor({257, 1536}, 1, DType::bf16).to(gpu).set_requires_grad(true);
  Tensor r = random_tensor({257, 1536}, 2, DType::bf16).to(gpu).set_requires_grad(true);
  Tensor w = random_tensor({1536}, 3, DType::bf16).to(gpu).set_requires_grad(true);
  Tensor g = random_tensor({257, 1536}, 4, DType::bf16).to(gpu);
  auto run = [&] {
    AddRmsNorm out = add_rms_norm(x, r, w, 1e-6);
    Tensor y = swiglu(out.normed, out.sum);
    TensorList grads = autograd::grad({y}, {x, r, w}, {g});
    std::vector<std::vector<float>> bits{y.to_vector<float>()};
    for (const Tensor& t : grads) bits.push_back(t.to_vector<float>());
    return bits;
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace ponder
