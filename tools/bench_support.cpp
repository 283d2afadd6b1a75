#include "bench_support.h"

#include <algorithm>
#include <vector>

#include "backend/kernels.h"
#include "ops/ops.h"
#include "tensor/cuda_context.h"

namespace ponder::bench {

namespace {
constexpr int64_t kRotationBytes = 256ll << 20;
}

void check(cudaError_t status, const char* what) { cuda::check(status, what); }

double median_ms(const std::function<void(int)>& launch, int warmup, int reps) {
  cudaStream_t stream = cuda::compute_stream(0);
  for (int i = 0; i < warmup; ++i) launch(i);
  std::vector<cudaEvent_t> start(reps), stop(reps);
  for (int i = 0; i < reps; ++i) {
    check(cudaEventCreate(&start[i]), "cudaEventCreate");
    check(cudaEventCreate(&stop[i]), "cudaEventCreate");
  }
  for (int i = 0; i < reps; ++i) {
    check(cudaEventRecord(start[i], stream), "cudaEventRecord");
    launch(warmup + i);
    check(cudaEventRecord(stop[i], stream), "cudaEventRecord");
  }
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) {
    check(cudaEventElapsedTime(&ms[i], start[i], stop[i]), "cudaEventElapsedTime");
    cudaEventDestroy(start[i]);
    cudaEventDestroy(stop[i]);
  }
  std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
  return ms[reps / 2];
}

int rotation_copies(int64_t bytes) {
  return static_cast<int>(std::clamp<int64_t>((kRotationBytes + bytes - 1) / std::max<int64_t>(bytes, 1), 2, 16));
}

Tensor random_device(const Shape& shape, DType dtype, Generator& gen) {
  const int64_t cols = shape.back(), rows = shape.product() / std::max<int64_t>(cols, 1);
  const int64_t block_rows = std::clamp<int64_t>((1 << 22) / std::max<int64_t>(cols, 1), 1, std::max<int64_t>(rows, 1));
  Tensor block = randn({block_rows, cols}, gen).to(dtype).to(Device::cuda(0));
  Tensor out = Tensor::empty({rows, cols}, {dtype, Device::cuda(0)});
  for (int64_t r = 0; r < rows; r += block_rows) {
    const int64_t n = std::min(block_rows, rows - r);
    backend::copy(out.slice(0, r, r + n), block.slice(0, 0, n));
  }
  return out.reshape(shape);
}

}  // namespace ponder::bench
