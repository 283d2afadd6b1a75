#include "ops/reduce.h"

#include "backend/cpu/reduce.h"
#include "backend/cuda/reduce.h"
#include "ops/elementwise.h"
#include "ops/op_support.h"
#include "ops/view.h"

namespace ponder {
using namespace ops_detail;
using backend::ReduceOp;

namespace {

// Runs the kernel into a keepdim-shaped output, then drops the reduced dims if asked.
Tensor reduce_raw(ReduceOp op, const char* name, const Tensor& x, const IntVec& dims, bool keepdim,
                  DType out_dtype) {
  Tensor out = Tensor::empty(keepdim_shape(x.shape(), dims), {out_dtype, x.device()});
  bool empty_rows = x.numel() == 0 || out.numel() == 0;
  PONDER_CHECK(!empty_rows || op == ReduceOp::sum || op == ReduceOp::sum_squares, ShapeError, name,
               ": cannot reduce an empty tensor ", describe(x));
  if (out.numel() > 0) PONDER_DISPATCH(x.device(), reduce, op, out, x, dims);
  if (keepdim) return out;
  Shape squeezed;
  for (int i = 0; i < x.dim(); ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) squeezed.push_back(x.shape()[i]);
  return out.as_strided(squeezed, contiguous_strides(squeezed), 0);
}

// The keepdim-shaped gradient broadcast back over the input (a view).
Tensor spread(const Tensor& g, const Shape& input_shape, const IntVec& dims) {
  return expand(reshape(g, keepdim_shape(input_shape, dims)), input_shape);
}

struct SumBackward final : Node {
  const char* name() const override { return "sum"; }
  TensorList apply(TensorList&& g) override {
    Tensor gx = spread(g[0], input_shape, dims);
    return {scale == 1.0 ? gx : gx * scale};
  }
  Shape input_shape;
  IntVec dims;
  double scale = 1.0;  // 1/count for mean
};

struct AmaxBackward final : Node {
  const char* name() const override { return "amax"; }
  TensorList apply(TensorList&& g) override {
    const Tensor& xv = x.get(name());
    Tensor mask = eq(xv, spread(result.get(name()), xv.shape(), dims)).to(xv.dtype());
    Tensor ties = sum(mask, dims, /*keepdim=*/true);
    return {spread(g[0], xv.shape(), dims) * mask / ties};
  }
  void release_saved() override {
    x.reset();
    result.reset();
  }
  SavedTensor x, result;
  IntVec dims;
};

struct NormBackward final : Node {
  const char* name() const override { return "norm"; }
  TensorList apply(TensorList&& g) override {
    const Tensor& xv = x.get(name());
    Tensor n = spread(result.get(name()), xv.shape(), dims);
    Tensor safe = where(eq(n, scalar_like(0.0, n)), scalar_like(1.0, n), n);
    return {spread(g[0], xv.shape(), dims) * xv / safe};
  }
  void release_saved() override {
    x.reset();
    result.reset();
  }
  SavedTensor x, result;
  IntVec dims;
};

}  // namespace

Tensor sum(const Tensor& x, const IntVec& dims, bool keepdim) {
  check_defined("sum", {&x});
  IntVec d = reduction_dims("sum", dims, x.dim());
  Tensor out = reduce_raw(ReduceOp::sum, "sum", x, d, keepdim, x.dtype());
  if (auto node = make_node<SumBackward>({&x})) {
    node->input_shape = x.shape();
    node->dims = d;
    set_history(out, node);
  }
  return out;
}

Tensor mean(const Tensor& x, const IntVec& dims, bool keepdim) {
  check_defined("mean", {&x});
  check_floating("mean", x);
  IntVec d = reduction_dims("mean", dims, x.dim());
  int64_t count = 1;
  for (int64_t i : d) count *= x.shape()[static_cast<int>(i)];
  PONDER_CHECK(count > 0, ShapeError, "mean: cannot average over zero elements of ", describe(x));
  Tensor total;
  {
    NoGrad no_grad;
    total = reduce_raw(ReduceOp::sum, "mean", x, d, keepdim, x.dtype()) * (1.0 / double(count));
  }
  if (auto node = make_node<SumBackward>({&x})) {
    node->input_shape = x.shape();
    node->dims = d;
    node->scale = 1.0 / double(count);
    set_history(total, node);
  }
  return total;
}

Tensor amax(const Tensor& x, const IntVec& dims, bool keepdim) {
  check_defined("amax", {&x});
  IntVec d = reduction_dims("amax", dims, x.dim());
  Tensor out = reduce_raw(ReduceOp::max, "amax", x, d, keepdim, x.dtype());
  if (auto node = make_node<AmaxBackward>({&x})) {
    node->x = x;
    node->result = out;
    node->dims = d;
    set_history(out, node);
  }
  return out;
}

Tensor norm(const Tensor& x, const IntVec& dims, bool keepdim) {
  check_defined("norm", {&x});
  check_floating("norm", x);
  IntVec d = reduction_dims("norm", dims, x.dim());
  Tensor out;
  {
    NoGrad no_grad;
    out = sqrt(reduce_raw(ReduceOp::sum_squares, "norm", x, d, keepdim, x.dtype()));
  }
  if (auto node = make_node<NormBackward>({&x})) {
    node->x = x;
    node->result = out;
    node->dims = d;
    set_history(out, node);
  }
  return out;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined("argmax", {&x});
  IntVec d = {wrap_dim(dim, x.dim(), "argmax")};
  return reduce_raw(ReduceOp::argmax, "argmax", x, d, keepdim, DType::i64);
}

}  // namespace ponder
