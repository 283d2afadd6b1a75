// CUDA random fills against the CPU: the same values, element by element.
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {

using RandomFill = testing::CudaTwin;

const Device kGpu = Device::cuda(0);

std::vector<double> host_values(const Tensor& t) { return t.to(Device::cpu()).to_vector<double>(); }

TEST_F(RandomFill, FillsAreBitIdentical) {
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Shape& shape : {Shape{1001, 37}, Shape{3}}) {
      Tensor cpu = zeros(shape, {.dtype = dt}), gpu = zeros(shape, {.dtype = dt, .device = kGpu});
      Generator cpu_gen(5), gpu_gen(5);
      uniform_(cpu, -0.5, 2.0, cpu_gen);
      uniform_(gpu, -0.5, 2.0, gpu_gen);
      EXPECT_EQ(host_values(gpu), host_values(cpu)) << "uniform " << dtype_name(dt);
      if (dt == DType::f64) continue;  // normals: the device's double libm may round the last bit differently
      normal_(cpu, 0.25, 3.0, cpu_gen);
      normal_(gpu, 0.25, 3.0, gpu_gen);
      EXPECT_EQ(host_values(gpu), host_values(cpu)) << "normal " << dtype_name(dt);
      trunc_normal_(cpu, 0.02, cpu_gen);
      trunc_normal_(gpu, 0.02, gpu_gen);
      EXPECT_EQ(host_values(gpu), host_values(cpu)) << "trunc_normal " << dtype_name(dt);
    }
  }
}

TEST_F(RandomFill, F64NormalsAgreeToTheLastBits) {
  Tensor cpu = zeros({999}, {.dtype = DType::f64}), gpu = zeros({999}, {.dtype = DType::f64, .device = kGpu});
  Generator cpu_gen(9), gpu_gen(9);
  normal_(cpu, 0.0, 1.0, cpu_gen);
  normal_(gpu, 0.0, 1.0, gpu_gen);
  EXPECT_TRUE(testing::all_close(gpu.to(Device::cpu()), cpu, 1e-14, 1e-15));
}

TEST_F(RandomFill, NonContiguousTargetsFillInContiguousOrder) {
  Tensor cpu = zeros({40, 30}), gpu = zeros({40, 30}, {.device = kGpu});
  Generator cpu_gen(3), gpu_gen(3);
  normal_(cpu.t(), 0.0, 1.0, cpu_gen);
  normal_(gpu.t(), 0.0, 1.0, gpu_gen);
  EXPECT_EQ(host_values(gpu), host_values(cpu));
}

}  // namespace
}  // namespace ponder
