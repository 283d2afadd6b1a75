// CUDA dropout against the CPU: the same mask and values, bit for bit.
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::random_tensor;

using Dropout = testing::CudaTwin;

const Device kGpu = Device::cuda(0);

std::vector<double> host_values(const Tensor& t) { return t.to(Device::cpu()).to_vector<double>(); }

TEST_F(Dropout, DropoutMaskAndValuesAreBitIdentical) {
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (int64_t n : {1000003, 4, 3}) {
      Tensor x = random_tensor({n}, 1, dt);
      for (double p : {0.1, 0.5}) {
        Generator cpu_gen(7), gpu_gen(7);
        cpu_gen.take(3);  // a stream that does not start at block 0
        gpu_gen.take(3);
        EXPECT_EQ(host_values(dropout(x.to(kGpu), p, gpu_gen)), host_values(dropout(x, p, cpu_gen)))
            << dtype_name(dt) << " n " << n << " p " << p;
      }
    }
  }
}

TEST_F(Dropout, DropoutGradientAndMisalignedInputs) {
  for (DType dt : {DType::f32, DType::bf16}) {
    // One element into its buffer: contiguous but not 16-byte aligned, so the unpacked path runs.
    Tensor x = random_tensor({1031}, 1, dt, true), g = random_tensor({1030}, 2, dt);
    auto run = [&](const Tensor& input, const Tensor& grad) {
      Generator gen(11);
      Tensor leaf = input.detach().set_requires_grad(true);
      Tensor y = dropout(leaf.slice(0, 1, 1031), 0.3, gen);
      Tensor dx = autograd::grad({y}, {leaf}, {grad})[0];
      return std::pair{host_values(y), host_values(dx)};
    };
    EXPECT_EQ(run(x.to(kGpu), g.to(kGpu)), run(x, g)) << dtype_name(dt);
  }
}

}  // namespace
}  // namespace ponder
