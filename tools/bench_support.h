// Timing conventions shared by the GPU benchmarks (bench_gemm, bench_attention, bench_kernels):
// each time is the median over reps of CUDA events on ponder's compute stream, after warm-up;
// operands rotate through enough copies that no rep finds them in the 50 MB L2.
#pragma once

#include <cuda_runtime.h>

#include <functional>

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace ponder::bench {

// The roofline of shared/GPU.md (H100).
inline constexpr double kGemmCeilingTflops = 796.0;

void check(cudaError_t status, const char* what);

// Median milliseconds of launch(rep) on device 0's compute stream, each rep between its own pair
// of events; reps are numbered from 0 over the warm-up and the timed reps together.
double median_ms(const std::function<void(int)>& launch, int warmup, int reps);

// Copies of an operand set of `bytes` that together exceed the L2 several times (2 to 16).
int rotation_copies(int64_t bytes);

// Normal values of `dtype` on device 0; a block drawn on the CPU is tiled over the rows (values
// need only look like training data to the hardware, not be independent).
Tensor random_device(const Shape& shape, DType dtype, Generator& gen);

}  // namespace ponder::bench
