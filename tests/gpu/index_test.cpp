// CUDA index_select (and index_add, its backward) against the CPU twins.
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using Index = testing::CudaTwin;

Tensor index_of(const std::vector<double>& values, DType dtype = DType::i64) {
  return tensor(values, {int64_t(values.size())}, {.dtype = dtype});
}

TEST_F(Index, SelectAlongEachDimWithRepeats) {
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor x = random_tensor({5, 37, 9}, 1, dt, true);
    for (int dim : {0, 1, 2}) {
      const int64_t size = x.size(dim);
      for (DType it : {DType::i64, DType::i32}) {
        Tensor idx = index_of({double(size - 1), 0, 2, 2, 1, 0, double(size - 1), 2}, it);
        auto select = [dim](const TensorList& in) { return index_select(in[0], dim, in[1]); };
        EXPECT_TRUE(cuda_matches_cpu(select, {x, idx}, twin_tolerance(dt))) << dtype_name(dt) << " dim " << dim;
        // strided x: the element gather
        auto strided = [dim](const TensorList& in) { return index_select(in[0].transpose(0, 2), 2 - dim, in[1]); };
        EXPECT_TRUE(cuda_matches_cpu(strided, {x, idx}, twin_tolerance(dt))) << dtype_name(dt) << " dim " << dim;
      }
    }
  }
}

TEST_F(Index, SelectIsExactForEveryDtype) {
  Tensor base = random_tensor({6, 11, 3}, 1, DType::f64) * 50.0;
  Tensor idx = index_of({4, 0, 4, 5});
  for (DType dt : {DType::f64, DType::f32, DType::bf16, DType::i64, DType::i32, DType::u8}) {
    Tensor x = abs(base).to(dt);
    for (int dim : {0, 1}) {
      Tensor gpu = index_select(x.to(Device::cuda(0)), dim, idx.to(Device::cuda(0)));
      EXPECT_EQ(gpu.to(Device::cpu()).to_vector<double>(), index_select(x, dim, idx).to_vector<double>())
          << dtype_name(dt) << " dim " << dim;
      Tensor gpu_t = index_select(x.to(Device::cuda(0)).transpose(0, 1), 1 - dim, idx.to(Device::cuda(0)));
      EXPECT_EQ(gpu_t.to(Device::cpu()).to_vector<double>(),
                index_select(x.transpose(0, 1), 1 - dim, idx).to_vector<double>())
          << dtype_name(dt) << " dim " << dim;
    }
  }
}

TEST_F(Index, IndexAddIsBitIdenticalAcrossCalls) {
  const Device gpu = Device::cuda(0);
  Tensor x = random_tensor({300, 129}, 1, DType::f32).to(gpu).set_requires_grad(true);
  std::vector<double> values;
  for (int i = 0; i < 5000; ++i) values.push_back(double((i * 7919) % 13));
  Tensor idx = index_of(values).to(gpu);
  Tensor g = random_tensor({300, 5000}, 2, DType::f32).to(gpu);
  auto grad = [&] { return autograd::grad({index_select(x, 1, idx)}, {x}, {g})[0].to_vector<float>(); };
  EXPECT_EQ(grad(), grad());
}

TEST_F(Index, BadIndicesGiveTheCpuMessage) {
  Tensor x = zeros({3, 4});
  auto same_message = [&](int dim, const Tensor& idx) {
    std::string cpu = testing::error_message<ValueError>([&] { index_select(x, dim, idx); });
    std::string gpu =
        testing::error_message<ValueError>([&] { index_select(x.to(Device::cuda(0)), dim, idx.to(Device::cuda(0))); });
    EXPECT_FALSE(cpu.empty());
    EXPECT_EQ(gpu, cpu);
  };
  same_message(0, index_of({0, 5, 1}));
  same_message(1, index_of({2, -1}, DType::i32));
}

}  // namespace
}  // namespace ponder
