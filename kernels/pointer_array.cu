// Device arrays of pointers written by one small kernel (backend/cuda/pointer_array.h).
#include "backend/cuda/pointer_array.h"
#include "kernels/common.cuh"

namespace ponder::kernels {
namespace {

struct Pointers {
  const void* at[backend::cuda::kMaxArrayPointers];
};

__global__ void write_pointers(const Pointers pointers, int count, const void** out) {
  if (static_cast<int>(threadIdx.x) < count) out[threadIdx.x] = pointers.at[threadIdx.x];
}

}  // namespace
}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void write_pointer_array(const Tensor& out, const std::vector<const void*>& pointers) {
  const auto count = static_cast<int64_t>(pointers.size());
  PONDER_CHECK(count <= kMaxArrayPointers, ValueError, "write_pointer_array: ", count, " pointers exceed ",
               kMaxArrayPointers);
  PONDER_CHECK(out.is_cuda() && out.dtype() == DType::i64 && out.is_contiguous() && out.numel() == count, ValueError,
               "write_pointer_array: expected a contiguous i64 device tensor of ", count, " elements, got ",
               describe(out));
  if (count == 0) return;
  kernels::Pointers array{};
  for (int64_t i = 0; i < count; ++i) array.at[i] = pointers[i];
  kernels::write_pointers<<<1, kMaxArrayPointers, 0, kernels::stream_of(out)>>>(
      array, static_cast<int>(count), static_cast<const void**>(out.data_ptr()));
  kernels::check_launch("write_pointer_array");
}

}  // namespace ponder::backend::cuda
