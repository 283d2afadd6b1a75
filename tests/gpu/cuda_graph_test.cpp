// CUDA graphs (tensor/cuda_graph.h): a recording runs nothing, a replay repeats the recorded
// kernels on new input values, what the recording allocated from its private pool goes to no
// request outside the pool, and a recording that synchronises fails cleanly and leaves the
// device usable. Skipped without a device.
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "support/test_util.h"
#include "tensor/allocator.h"
#include "tensor/cuda_graph.h"

namespace ponder {
namespace {

class CudaGraph : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

std::vector<float> host(const Tensor& t) { return t.to(Device::cpu()).to_vector<float>(); }

TEST_F(CudaGraph, ReplaysRepeatTheKernelsOnNewInputs) {
  const Device gpu = Device::cuda(0);
  Tensor x = full({3000}, 1.0, {.device = gpu});
  Tensor y = full({3000}, -7.0, {.device = gpu});
  const void* temporary = nullptr;
  cuda::MemoryPool pool(0);
  std::unique_ptr<cuda::Graph> graph;
  {
    cuda::MemoryPool::Use use(pool);
    graph = cuda::Graph::record(0, [&] {
      Tensor doubled = x * 2.0;  // freed inside the recording: its block stays the pool's
      temporary = doubled.data_ptr();
      copy_(y, doubled + 1.0);
    });
  }
  EXPECT_EQ(host(y), std::vector<float>(3000, -7.0f));  // recorded, not run
  for (float v : {3.0f, 5.0f}) {
    fill_(x, v);
    graph->replay();
    EXPECT_EQ(host(y), std::vector<float>(3000, 2 * v + 1));
  }
  Tensor other = Tensor::empty({3000}, {.device = gpu});
  EXPECT_NE(other.data_ptr(), temporary);  // a request outside the pool never gets its memory
}

TEST_F(CudaGraph, ARecordingThatWaitsForTheDeviceFailsAndLeavesItUsable) {
  const Device gpu = Device::cuda(0);
  Tensor x = full({16}, 2.0, {.device = gpu});
  EXPECT_THROW(cuda::Graph::record(0, [&] { (void)(x * 3.0).sum().item<float>(); }), DeviceError);
  EXPECT_EQ(host(x * 3.0), std::vector<float>(16, 6.0f));
}

}  // namespace
}  // namespace ponder
