// Shared checks and shape rules for op implementations (not part of the public op API).
#pragma once

#include <initializer_list>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/saved_tensor.h"
#include "backend/dispatch.h"
#include "tensor/tensor.h"

namespace ponder::ops_detail {

using autograd::make_node;
using autograd::Node;
using autograd::SavedTensor;
using autograd::set_history;

// Every operand defined, on one device, with one dtype; names the op and the operands otherwise.
void check_same_device(const char* op, std::initializer_list<const Tensor*> ts);
void check_same_dtype(const char* op, std::initializer_list<const Tensor*> ts);
void check_floating(const char* op, const Tensor& t);
void check_defined(const char* op, std::initializer_list<const Tensor*> ts);

// NumPy broadcasting of two shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// A stride-0 view of `t` with shape `shape` (t must broadcast to it); no autograd.
Tensor broadcast_view(const Tensor& t, const Shape& shape);
// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// Checks and buffers shared by the norm and rope ops and their fused forms (ops/fused.cpp); defined
// in ops/norm.cpp and ops/rope.cpp.
void check_norm_inputs(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);
// Per-row statistics of a normalisation over x's last dimension: x's shape without it, in the
// dtype the kernels of x's device keep them in (CPU: the accumulation dtype; CUDA: f32).
Tensor empty_norm_stats(const Tensor& x);
// Whether an RMSNorm with this weight keeps its output for backward instead of its input: an
// unweighted norm's output is xhat itself, all its backward needs with rstd. The op after the norm
// (a projection, a checkpointed region) keeps that output anyway, so the input — the residual
// stream, which nothing else keeps — is freed: d elements per norm and token.
bool kept_is_output(const Tensor& rms_weight);
void check_rope_inputs(const char* op, const Tensor& x, const Tensor& positions, double theta);
// positions (i32 or i64) as the contiguous i64 tensor the rope kernels read.
Tensor rope_positions(const Tensor& positions);

// The dims a reduction runs over, wrapped and sorted; empty `dims` means all.
IntVec reduction_dims(const char* op, const IntVec& dims, int ndim);
// Shape after reducing `dims` with keepdim=true.
Shape keepdim_shape(const Shape& shape, const IntVec& dims);

}  // namespace ponder::ops_detail
