// CPU elementwise kernels. Operands have the output's shape (broadcast inputs arrive as
// stride-0 views) and any strides; the output may be any writable view.
#pragma once

#include "backend/math.h"
#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// dst = src elementwise, converting dtype.
void copy(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, double value);
// dst += src, converting src to dst's dtype (gradient accumulation into fp32 buffers).
void add_into(const Tensor& dst, const Tensor& src, const Tensor& scale = Tensor());  // scale: one element

void unary(UnaryOp op, const Tensor& out, const Tensor& x, double alpha);
// grad_x = grad * f'(x)
void unary_backward(UnaryOp op, const Tensor& grad_x, const Tensor& x, const Tensor& grad, double alpha);
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
// out (u8) = a <op> b
void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b);
// out = cond ? a : b, cond u8
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);

}  // namespace ponder::backend::cpu
