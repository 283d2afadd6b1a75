// CUDA gated linear scan against its CPU twin.
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using LinearScanTwin = testing::CudaTwin;

TEST_F(LinearScanTwin, MatchesCpuWithSampleStarts) {
  for (DType dt : {DType::f32, DType::bf16}) {
    for (int64_t d : {1, 7, 300}) {
      const Tensor x = random_tensor({37, d}, 1, dt, true);
      Tensor alpha = to_dtype(0.05 + 0.9 * sigmoid(random_tensor({d}, 2)), dt);
      alpha.set_requires_grad(true);
      std::vector<double> flags(37, 0.0);
      for (int t : {0, 5, 6, 20}) flags[size_t(t)] = 1;
      const Tensor starts = tensor(flags, {37}, {.dtype = DType::u8});
      EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return linear_scan(in[0], in[1], in[2]); },
                                   {x, alpha, starts}, twin_tolerance(dt)))
          << dtype_name(dt) << " D " << d;
    }
  }
}

}  // namespace
}  // namespace ponder
