// Device arrays of pointers, as cuBLASLt's pointer-array batches read their matrices. A kernel
// writes them from its arguments: a CUDA graph records the pointers with the launch, where a copy
// from host memory would read that memory again at every replay.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace ponder::backend::cuda {

constexpr int kMaxArrayPointers = 32;

// out: a contiguous i64 device tensor of pointers.size() (at most kMaxArrayPointers) elements.
void write_pointer_array(const Tensor& out, const std::vector<const void*>& pointers);

}  // namespace ponder::backend::cuda
