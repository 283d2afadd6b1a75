// CUDA rotary position embedding, alone and ahead of attention (rotary_attention), against the CPU twins.
#include <cmath>

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

Tensor i32_on(const std::vector<double>& values, Device device) {
  return tensor(values, {int64_t(values.size())}, {.dtype = DType::i32}).to(device);
}

// rotary_attention (RoPE and attention in one node) on the GPU against the CPU: packed PrefixLM
// samples, GQA, head_dim 128 and 64, bf16 (the flash kernels; the tolerance of the attention twins)
// and f32.
TEST_F(Rope, RotaryAttentionMatchesCpu) {
  const std::vector<int> lengths = {70, 1, 200, 33}, prefixes = {20, 1, 0, 33};
  std::vector<double> cu = {0}, prefix(prefixes.begin(), prefixes.end()), positions;
  for (int len : lengths) {
    cu.push_back(cu.back() + len);
    for (int i = 0; i < len; ++i) positions.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(cu.back());
  for (DType dt : kTypes) {
    for (int64_t d : {128, 64}) {
      auto fn = [&](const TensorList& in) {
        const AttentionSpec spec{.mask = AttentionMask::prefix_lm,
                                 .cu_seqlens = i32_on(cu, in[0].device()),
                                 .prefix_len = i32_on(prefix, in[0].device())};
        return rotary_attention(in[0], in[1], in[2], in[3], 1e4, spec, 1.0 / std::sqrt(double(d)));
      };
      const TensorList in = {random_tensor({n, 8, d}, 1, dt, true), random_tensor({n, 2, d}, 2, dt, true),
                             random_tensor({n, 2, d}, 3, dt, true),
                             tensor(positions, {n}, {.dtype = DType::i64})};
      EXPECT_TRUE(cuda_matches_cpu(fn, in, dt == DType::bf16 ? 2e-2 : twin_tolerance(dt)))
          << dtype_name(dt) << " D " << d;
    }
  }
}

}  // namespace
}  // namespace ponder
