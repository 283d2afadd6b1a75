// Tensor factories (no gradient history; pass requires_grad in the options to make a leaf).
#pragma once

#include <vector>

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace ponder {

Tensor empty(const Shape& shape, const TensorOptions& options = {});
Tensor zeros(const Shape& shape, const TensorOptions& options = {});
Tensor ones(const Shape& shape, const TensorOptions& options = {});
Tensor full(const Shape& shape, double value, const TensorOptions& options = {});
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// [start, end) in steps of `step`.
Tensor arange(int64_t start, int64_t end, int64_t step = 1, const TensorOptions& options = {.dtype = DType::i64});
// A tensor holding `values` (row-major) with the given shape, converted to options.dtype.
Tensor tensor(const std::vector<double>& values, const Shape& shape, const TensorOptions& options = {});

// Random tensors from a Philox stream; element i depends only on (seed, offset, i).
Tensor rand(const Shape& shape, Generator& gen, const TensorOptions& options = {});   // U[0, 1)
Tensor randn(const Shape& shape, Generator& gen, const TensorOptions& options = {});  // N(0, 1)
void uniform_(const Tensor& t, double low, double high, Generator& gen);
void normal_(const Tensor& t, double mean, double std, Generator& gen);
// HRM-Text's truncated normal: fmod(N(0,1), 3) * 1.0148 * std (unit variance after wrapping).
void trunc_normal_(const Tensor& t, double std, Generator& gen);

}  // namespace ponder
