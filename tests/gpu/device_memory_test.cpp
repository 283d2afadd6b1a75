// Device memory basics; skipped where no CUDA device is visible.
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "support/test_util.h"
#include "tensor/allocator.h"
#include "tensor/cuda_graph.h"

namespace ponder {
namespace {

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(Cuda, RoundTripThroughDeviceMemory) {
  Tensor host = testing::random_tensor({3, 5}, 1, DType::f32);
  MemoryStats before = memory_stats(Device::cuda(0));
  Tensor dev = host.to(Device::cuda(0));
  EXPECT_TRUE(dev.is_cuda());
  // The caching allocator hands out 512-byte-aligned blocks.
  EXPECT_EQ(memory_stats(Device::cuda(0)).current_bytes, before.current_bytes + 512);
  EXPECT_EQ(dev.to(Device::cpu()).to_vector<float>(), host.to_vector<float>());
  // Converting and strided copies stage through the host.
  EXPECT_EQ(host.t().to(Device::cuda(0)).to(Device::cpu()).to_vector<float>(), host.t().contiguous().to_vector<float>());
  EXPECT_EQ(dev.to(Device::cpu()).to(DType::f64).to_vector<double>(), host.to(DType::f64).to_vector<double>());
}

TEST_F(Cuda, GradientsFlowBackAcrossDevices) {
  Tensor x = testing::random_tensor({4}, 2, DType::f32, true);
  (x.to(Device::cuda(0)).to(Device::cpu()) * 3.0).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>(4, 3.0f));
}

// Five 9 MiB requests in fresh memory (a new private pool has no cached blocks) share one 64 MiB
// segment, each block exactly its size; one segment each would round every block up to 10 MiB.
TEST_F(Cuda, MediumRequestsShareSegments) {
  const Device gpu = Device::cuda(0);
  cuda::MemoryPool pool(0);
  cuda::MemoryPool::Use use(pool);
  const MemoryStats before = memory_stats(gpu);
  TensorList held;
  for (int i = 0; i < 5; ++i) held.push_back(Tensor::empty({9 << 18}, {.device = gpu}));  // 9 MiB of f32
  const MemoryStats after = memory_stats(gpu);
  EXPECT_EQ(after.current_bytes - before.current_bytes, 5 * (9 << 20));
  EXPECT_EQ(after.reserved_bytes - before.reserved_bytes, 64 << 20);
}

TEST_F(Cuda, MissingDeviceIndexIsReported) {
  EXPECT_THROW(zeros({1}).to(Device::cuda(cuda_device_count())), DeviceError);
}

}  // namespace
}  // namespace ponder
