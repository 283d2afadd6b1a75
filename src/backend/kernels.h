// Device-independent data kernels that the tensor and autograd layers need (copy, fill,
// accumulate). Each dispatches to the CPU or CUDA implementation.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend {

// dst = src; same shape; any dtypes, strides and devices.
void copy(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, double value);
// dst += src (same shape, src converted to dst's dtype); dst and src on one device. With a scale
// (one element of dst's dtype on that device, read there: no wait for the device), dst += src·scale
// in one pass, without a scaled copy of src.
void add_into(const Tensor& dst, const Tensor& src, const Tensor& scale = Tensor());
// a + b into a new contiguous tensor (same shape and dtype).
Tensor add(const Tensor& a, const Tensor& b);
// t itself if contiguous, else a contiguous copy.
Tensor contiguous(const Tensor& t);
// Views without autograd, for kernels: a matrix's transpose, and a vector [N] repeated as the
// `rows` rows of a [rows, N] matrix (stride 0).
Tensor transposed(const Tensor& matrix);
Tensor repeated_rows(const Tensor& vector, int64_t rows);

}  // namespace ponder::backend
