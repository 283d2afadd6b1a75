#include "ops/linear.h"

#include "backend/cpu/matmul.h"
#include "backend/cuda/matmul.h"
#include "ops/op_support.h"
#include "ops/view.h"

namespace ponder {
using namespace ops_detail;

namespace {

// y = x W^T + b over the rows of x: dx = dy W, dW = dy^T x, db = the column sums of dy.
// dx and dW are added into the engine's accumulation targets when it offers them (the GEMMs'
// beta = 1), so shared inputs and weights cost no separate sums.
struct LinearBackward final : Node {
  const char* name() const override { return "linear"; }
  TensorList apply(TensorList&& g) override {
    const int64_t out_features = g[0].size(-1);
    Tensor dy = reshape(g[0], {rows, out_features});
    Tensor gx, gw, gb;
    if (needs_input_grad(0)) gx = target_or_empty(0, x_shape);
    if (needs_input_grad(1)) gw = target_or_empty(1, {out_features, in_features});
    if (needs_input_grad(2)) gb = Tensor::empty({out_features}, options);
    Tensor xv = needs_input_grad(1) ? x.get(name()) : Tensor();
    Tensor wv = needs_input_grad(0) ? weight.get(name()) : Tensor();
    Tensor gx2d = gx.defined() ? gx.as_strided({rows, in_features}, {in_features, 1}, gx.offset()) : Tensor();
    const bool accumulate_x = gx.defined() && gx.is_same(accumulation_target(0));
    const bool accumulate_w = gw.defined() && gw.is_same(accumulation_target(1));
    PONDER_DISPATCH(options.device, linear_backward, gx2d, gw, gb, dy, xv, wv, accumulate_x, accumulate_w);
    return {gx, gw, gb};
  }
  // The offered accumulation target for input i, or a fresh gradient of `shape`.
  Tensor target_or_empty(size_t i, const Shape& shape) const {
    Tensor target = accumulation_target(i);
    return target.defined() ? target : Tensor::empty(shape, options);
  }
  void release_saved() override {
    x.reset();
    weight.reset();
  }
  SavedTensor x, weight;  // x as [rows, in]; each kept only when the other operand needs a gradient
  Shape x_shape;
  int64_t rows = 0, in_features = 0;
  TensorOptions options;
};

void check_operands(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_defined("linear", {&x, &weight});
  check_floating("linear", x);
  check_same_device("linear", {&x, &weight});
  check_same_dtype("linear", {&x, &weight});
  PONDER_CHECK(weight.dim() == 2, ShapeError, "linear: weight must be [out, in], got ", describe(weight));
  PONDER_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), ShapeError, "linear: the last dimension of x ",
               describe(x), " does not match the input width of weight ", describe(weight));
  if (bias.defined()) {
    check_same_device("linear", {&x, &bias});
    check_same_dtype("linear", {&x, &bias});
    PONDER_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), ShapeError, "linear: bias ",
                 describe(bias), " does not match the output width of weight ", describe(weight));
  }
}

}  // namespace

// Leading dims of x are flattened so the product is one 2-D GEMM (with the bias fused on the GPU)
// rather than a broadcast batch of small ones.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands(x, weight, bias);
  const int64_t in_features = weight.size(1), out_features = weight.size(0);
  int64_t rows = 1;
  for (int i = 0; i + 1 < x.dim(); ++i) rows *= x.size(i);
  Tensor x2d = reshape(x.detach(), {rows, in_features});
  Tensor y = Tensor::empty({rows, out_features}, x.options());
  PONDER_DISPATCH(x.device(), linear, y, x2d, weight, bias);
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 1] = out_features;
  y = y.as_strided(out_shape, contiguous_strides(out_shape), 0);
  if (auto node = make_node<LinearBackward>({&x, &weight, &bias})) {
    if (node->needs_input_grad(1)) node->x = x2d;
    if (node->needs_input_grad(0)) node->weight = weight;
    node->x_shape = x.shape();
    node->rows = rows;
    node->in_features = in_features;
    node->options = x.options();
    set_history(y, node);
  }
  return y;
}

}  // namespace ponder
