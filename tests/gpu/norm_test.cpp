// CUDA RMSNorm and LayerNorm against their CPU twins.
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using Norms = testing::CudaTwin;

// Row lengths (kernels/norm.cu plans them; "packed" is 16-byte packs, else element by element):
// a warp per row, packed (1536 bf16, 1000 bf16, 64) and not (7); several warps per row and rows per
// block, packed (1536 f32, 1000 f32); one row per block, packed (8200) and not (1001); rows reread
// from memory in each pass (two segments), packed (16400 f32) and not (4099). The weight and bias
// gradients of LayerNorm at 8200 and 16400 need over 48 KiB of shared memory, and at 16400 they
// accumulate in global memory.
const int64_t kDims[] = {1536, 1000, 1001, 64, 7, 8200, 16400, 4099};
const DType kTypes[] = {DType::f32, DType::bf16};

TEST_F(Norms, RmsNormMatchesCpu) {
  for (DType dt : kTypes) {
    for (int64_t d : kDims) {
      // 37 rows: the last block is partly empty; 300 rows: many chunks for dweight.
      for (int64_t rows : {37, 300}) {
        Tensor x = random_tensor({rows, d}, 1, dt, true), w = random_tensor({d}, 2, dt, true);
        const double tol = twin_tolerance(dt);
        EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return rms_norm(in[0], in[1], 1e-6); }, {x, w}, tol))
            << dtype_name(dt) << " " << rows << "x" << d;
        EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return rms_norm(in[0], Tensor(), 1e-5); }, {x}, tol))
            << dtype_name(dt) << " " << rows << "x" << d;
      }
    }
  }
}

TEST_F(Norms, LayerNormMatchesCpuWithAndWithoutParameters) {
  for (DType dt : kTypes) {
    for (int64_t d : kDims) {
      Tensor x = random_tensor({3, 13, d}, 1, dt, true);
      Tensor w = random_tensor({d}, 2, dt, true), b = random_tensor({d}, 3, dt, true);
      const double tol = twin_tolerance(dt);
      EXPECT_TRUE(
          cuda_matches_cpu([](const TensorList& in) { return layer_norm(in[0], in[1], in[2], 1e-5); }, {x, w, b}, tol))
          << dtype_name(dt) << " " << d;
      EXPECT_TRUE(
          cuda_matches_cpu([](const TensorList& in) { return layer_norm(in[0], in[1], Tensor(), 1e-5); }, {x, w}, tol))
          << dtype_name(dt) << " " << d;
      EXPECT_TRUE(
          cuda_matches_cpu([](const TensorList& in) { return layer_norm(in[0], Tensor(), in[1], 1e-5); }, {x, b}, tol))
          << dtype_name(dt) << " " << d;
      EXPECT_TRUE(
          cuda_matches_cpu([](const TensorList& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-5); }, {x}, tol))
          << dtype_name(dt) << " " << d;
    }
  }
}

TEST_F(Norms, StridedAndMisalignedOperands) {
  for (DType dt : kTypes) {
    const double tol = twin_tolerance(dt);
    // x transposed (the op copies it); a weight one element into its buffer (the unpacked path).
    Tensor xt = random_tensor({1000, 21}, 1, dt, true), w = random_tensor({1001}, 2, dt, true);
    auto rms = [](const TensorList& in) { return rms_norm(in[0].t(), in[1].slice(0, 1, 1001), 1e-6); };
    EXPECT_TRUE(cuda_matches_cpu(rms, {xt, w}, tol)) << dtype_name(dt);
    auto ln = [](const TensorList& in) {
      return layer_norm(in[0].t(), in[1].slice(0, 1, 1001), in[1].slice(0, 0, 1000), 1e-5);
    };
    EXPECT_TRUE(cuda_matches_cpu(ln, {xt, w}, tol)) << dtype_name(dt);
  }
}

TEST_F(Norms, OnlyParametersNeedGradAndEdgeShapes) {
  Tensor x = random_tensor({50, 64}, 1, DType::f32), w = random_tensor({64}, 2, DType::f32, true);
  Tensor b = random_tensor({64}, 3, DType::f32, true);
  auto ln = [](const TensorList& in) { return layer_norm(in[0], in[1], in[2], 1e-5); };
  EXPECT_TRUE(cuda_matches_cpu(ln, {x, w, b}, twin_tolerance(DType::f32)));
  auto rms = [](const TensorList& in) { return rms_norm(in[0], in[1], 1e-6); };
  EXPECT_TRUE(cuda_matches_cpu(rms, {x, w}, twin_tolerance(DType::f32)));  // the weight's gradient alone
  // One row, one column, and no rows (the parameter gradients are zeros). With one column the
  // input gradient is rstd·g·eps/(x²+eps), a cancellation the GPU's f32 statistics resolve to
  // about 1e-3 relative (the CPU keeps f64 statistics).
  for (const Shape& shape : {Shape{1, 1536}, Shape{9, 1}, Shape{0, 64}}) {
    Tensor xs = random_tensor(shape, 4, DType::f32, true), ws = random_tensor({shape.back()}, 5, DType::f32, true);
    const double tol = shape.back() == 1 ? 2e-3 : twin_tolerance(DType::f32);
    EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return rms_norm(in[0], in[1], 1e-6); }, {xs, ws}, tol))
        << shape;
  }
}

// Enough rows that each team takes three in turn before its block adds the teams' sums.
TEST_F(Norms, ManyRowsPerTeam) {
  for (DType dt : kTypes) {
    Tensor x = random_tensor({4100, 64}, 1, dt, true), w = random_tensor({64}, 2, dt, true);
    auto rms = [](const TensorList& in) { return rms_norm(in[0], in[1], 1e-6); };
    EXPECT_TRUE(cuda_matches_cpu(rms, {x, w}, twin_tolerance(dt))) << dtype_name(dt);
  }
}

TEST_F(Norms, RepeatedCallsGiveIdenticalBits) {
  const Device gpu = Device::cuda(0);
  Tensor x = random_tensor({513, 1536}, 1, DType::f32).to(gpu).set_requires_grad(true);
  Tensor w = random_tensor({1536}, 2, DType::f32).to(gpu).set_requires_grad(true);
  Tensor b = random_tensor({1536}, 3, DType::f32).to(gpu).set_requires_grad(true);
  Tensor g = random_tensor({513, 1536}, 4, DType::f32).to(gpu);
  auto run = [&] {
    Tensor y = layer_norm(x, w, b, 1e-5);
    TensorList grads = autograd::grad({y}, {x, w, b}, {g});
    std::vector<std::vector<float>> bits{y.to_vector<float>()};
    for (const Tensor& t : grads) bits.push_back(t.to_vector<float>());
    return bits;
  };
  EXPECT_EQ(run(), run());
}

TEST_F(Norms, F64IsRefusedClearly) {
  Tensor x = random_tensor({2, 4}, 1).to(Device::cuda(0));
  EXPECT_EQ(testing::error_message<DTypeError>([&] { rms_norm(x, Tensor(), 1e-6); }),
            "rms_norm: the CUDA kernels take f32 or bf16, got f64");
}

}  // namespace
}  // namespace ponder
