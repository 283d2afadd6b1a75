// CUDA twins of backend/cpu/elementwise.h (same semantics, same signatures).
#pragma once

#include "backend/math.h"
#include "tensor/tensor.h"

namespace ponder::backend::cuda {

void copy(const Tensor& dst, const Tensor& src);  // both on the same device
void fill(const Tensor& dst, double value);
void add_into(const Tensor& dst, const Tensor& src, const Tensor& scale = Tensor());  // scale: one element
void unary(UnaryOp op, const Tensor& out, const Tensor& x, double alpha);
void unary_backward(UnaryOp op, const Tensor& grad_x, const Tensor& x, const Tensor& grad, double alpha);
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);

}  // namespace ponder::backend::cuda
