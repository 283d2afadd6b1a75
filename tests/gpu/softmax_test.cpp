// CUDA softmax and log_softmax against their CPU twins.
#include <cmath>
#include <limits>

#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using Softmax = testing::CudaTwin;

constexpr double kInf = std::numeric_limits<double>::infinity();

// softmax and log_softmax of view(x) along dim, forward and backward, on both devices.
void expect_softmaxes_match(const Tensor& x, int64_t dim, const std::function<Tensor(const Tensor&)>& view) {
  const double tol = twin_tolerance(x.dtype());
  EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return softmax(view(in[0]), dim); }, {x}, tol))
      << "softmax " << describe(x) << " dim " << dim;
  EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return log_softmax(view(in[0]), dim); }, {x}, tol))
      << "log_softmax " << describe(x) << " dim " << dim;
}

Tensor itself(const Tensor& t) { return t; }

TEST_F(Softmax, RowsOfEveryLength) {
  // a warp per row up to 1024, a block per row beyond; 1000 and 4099 leave vector tails
  for (DType dt : {DType::f32, DType::bf16}) {
    for (int64_t n : {1, 7, 128, 1000, 1024, 1025, 4099, 65536}) {
      Tensor x = random_tensor({n >= 4096 ? 3 : 19, n}, n, dt, true);
      expect_softmaxes_match(x, -1, itself);
    }
  }
  expect_softmaxes_match(random_tensor({5, 300}, 1, DType::f64, true), -1, itself);
}

TEST_F(Softmax, OtherDimsAndStridedInputs) {
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor x = random_tensor({37, 5, 9}, 2, dt, true);
    for (int64_t dim : {0, 1, 2}) {
      expect_softmaxes_match(x, dim, itself);
      expect_softmaxes_match(x, dim, [](const Tensor& t) { return t.transpose(0, 2).slice(1, 1, 5); });
    }
    expect_softmaxes_match(random_tensor({}, 3, dt, true), -1, itself);  // 0-d: one row of one
  }
}

TEST_F(Softmax, LargeMagnitudeLogits) {
  for (DType dt : {DType::f32, DType::bf16}) {
    for (int64_t n : {7, 1000, 5000}) {
      Tensor x = random_tensor({6, n}, 4, dt, true);
      expect_softmaxes_match(x, -1, [](const Tensor& t) { return t * 1000.0; });
      expect_softmaxes_match(x, -1, [](const Tensor& t) { return t + 30000.0; });
    }
  }
}

TEST_F(Softmax, MinusInfinityEntriesGetZeroProbability) {
  for (int64_t n : {300, 3000}) {
    // ~30% of entries masked at random, and the first two thirds of row 0 (whole thread slices)
    Tensor values = random_tensor({5, n}, 5);
    std::vector<double> v = values.to_vector<double>();
    std::vector<double> mask(v.size());
    for (size_t i = 0; i < v.size(); ++i) mask[i] = v[i] > 0.5 || int64_t(i) < 2 * n / 3;
    Tensor masked = tensor(mask, {5, n}, {.dtype = DType::u8});
    for (DType dt : {DType::f32, DType::bf16}) {
      Tensor x = values.to(dt).detach().set_requires_grad(true);
      auto masked_out = [&](const Tensor& t) { return masked.to(t.device()); };
      const double tol = twin_tolerance(dt);
      EXPECT_TRUE(cuda_matches_cpu(
          [&](const TensorList& in) { return softmax(where(masked_out(in[0]), scalar_like(-kInf, in[0]), in[0])); },
          {x}, tol));
      // log_softmax is -inf at the masked entries, which a relative error cannot compare: zero them
      EXPECT_TRUE(cuda_matches_cpu(
          [&](const TensorList& in) {
            Tensor m = masked_out(in[0]);
            Tensor y = log_softmax(where(m, scalar_like(-kInf, in[0]), in[0]));
            return where(m, scalar_like(0.0, y), y);
          },
          {x}, tol));
    }
  }
  // a row of only -inf has no distribution: NaN, as on the CPU
  for (int64_t n : {40, 3000}) {
    for (float y : softmax(full({1, n}, -kInf, {.device = Device::cuda(0)})).to(Device::cpu()).to_vector<float>()) {
      EXPECT_TRUE(std::isnan(y));
    }
  }
}

}  // namespace
}  // namespace ponder
