// CUDA rotary position embedding against its CPU twin.
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using Rope = testing::CudaTwin;

const DType kTypes[] = {DType::f32, DType::bf16};

// [samples, length] positions 0..length-1 restarting per sample, shifted by `start` (large
// positions stress the angles).
Tensor packed_positions(int64_t samples, int64_t length, int64_t start, DType dtype) {
  std::vector<double> values;
  for (int64_t s = 0; s < samples; ++s)
    for (int64_t i = 0; i < length; ++i) values.push_back(double(start + i));
  return tensor(values, {samples, length}, {.dtype = dtype});
}

TEST_F(Rope, MatchesCpuForHeadDimsAndPositionTypes) {
  for (DType dt : kTypes) {
    for (int64_t d : {128, 64, 6, 2}) {
      for (DType pt : {DType::i64, DType::i32}) {
        Tensor x = random_tensor({3, 19, 5, d}, 1, dt, true);
        Tensor pos = packed_positions(3, 19, d == 64 ? 16000 : 0, pt);
        for (double theta : {1e4, 5e5}) {
          EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return rope(in[0], in[1], theta); }, {x, pos},
                                       twin_tolerance(dt)))
              << dtype_name(dt) << " D " << d << " theta " << theta;
        }
      }
    }
  }
}

TEST_F(Rope, StridedInputs) {
  for (DType dt : kTypes) {
    Tensor x = random_tensor({4, 37, 64}, 1, dt, true);  // [H, N, D], rotated as [N, H, D]
    Tensor pos = packed_positions(1, 37, 5, DType::i64).reshape({37});
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return rope(in[0].transpose(0, 1), in[1], 1e4); }, {x, pos},
                                 twin_tolerance(dt)))
        << dtype_name(dt);
  }
}

TEST_F(Rope, RepeatedCallsGiveIdenticalBits) {
  Tensor x = random_tensor({64, 8, 128}, 1, DType::bf16).to(Device::cuda(0));
  Tensor pos = packed_positions(4, 16, 0, DType::i64).reshape({64}).to(Device::cuda(0));
  EXPECT_EQ(rope(x, pos, 1e4).to_vector<float>(), rope(x, pos, 1e4).to_vector<float>());
}

TEST_F(Rope, HeadDimsBeyondTheKernelAreRefused) {
  Tensor x = zeros({2, 1, 2048}, {.device = Device::cuda(0)});
  Tensor pos = zeros({2}, {.dtype = DType::i64, .device = Device::cuda(0)});
  EXPECT_EQ(testing::error_message<ShapeError>([&] { rope(x, pos, 1e4); }),
            "rope: the CUDA kernel takes head dims up to 1024, got 2048");
}

}  // namespace
}  // namespace ponder
