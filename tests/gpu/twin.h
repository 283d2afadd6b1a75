// CUDA-vs-CPU checks: run a function on CPU tensors and on their CUDA copies (with every device
// allocation poisoned), then compare outputs and the gradients of every input that requires grad.
#pragma once

#include <gtest/gtest.h>

#include <functional>

#include "ops/ops.h"
#include "tensor/cuda_memory.h"

namespace ponder::testing {

// Norm-relative tolerances of the twin checks.
inline double twin_tolerance(DType t) { return t == DType::bf16 ? 1e-2 : (t == DType::f32 ? 1e-5 : 1e-12); }

class CudaTwin : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    cuda_poison_allocations(true);
  }
  void TearDown() override { cuda_poison_allocations(false); }
};

// fn is called once with CPU inputs and once with CUDA copies (same requires_grad); `tolerance`
// applies to the output and to every input gradient.
::testing::AssertionResult cuda_matches_cpu(const std::function<Tensor(const TensorList&)>& fn,
                                            const TensorList& inputs, double tolerance);

}  // namespace ponder::testing
