#include "ops/linear.h"

#include "backend/cpu/matmul.h"
#include "backend/cuda/matmul.h"
#include "backend/kernels.h"
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

// y_i = x W_i^T for each weight: dx = sum_i dy_i W_i, dW_i = dy_i^T x. Inputs: x, then the weights.
struct LinearGroupBackward final : Node {
  const char* name() const override { return "linear_group"; }
  TensorList apply(TensorList&& g) override {
    TensorList grads(g.size());  // [rows, out_i]; undefined where the output got no gradient
    for (size_t i = 0; i < g.size(); ++i) {
      if (g[i].defined()) grads[i] = backend::contiguous(reshape(g[i], {rows, g[i].size(-1)}));
    }
    TensorList result(g.size() + 1);
    if (needs_input_grad(0)) result[0] = input_grad(grads);
    weight_grads(grads, result);
    return result;
  }
  // dx = sum_i dy_i W_i, each product added into the sum (or the engine's target) by its GEMM.
  Tensor input_grad(const TensorList& grads) const {
    Tensor target = accumulation_target(0);
    Tensor gx = target.defined() ? target : Tensor::empty(x_shape, options);
    Tensor gx2d = gx.as_strided({rows, in_features}, {in_features, 1}, gx.offset());
    bool accumulate = target.defined();
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined()) continue;
      PONDER_DISPATCH(options.device, linear_backward, gx2d, Tensor(), Tensor(), grads[i], Tensor(),
                      weights[i].get(name()), accumulate, false);
      accumulate = true;
    }
    if (!accumulate) backend::fill(gx, 0.0);  // no output had a gradient
    return gx;
  }
  // The weights whose gradients add into the engine's targets form one batch, those that start a
  // gradient another (each batch one product on the GPU).
  void weight_grads(const TensorList& grads, TensorList& result) const {
    TensorList into, fresh, into_grads, fresh_grads;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!needs_input_grad(i + 1) || !grads[i].defined()) continue;
      Tensor target = accumulation_target(i + 1);
      result[i + 1] = target.defined() ? target : Tensor::empty({grads[i].size(1), in_features}, options);
      (target.defined() ? into : fresh).push_back(result[i + 1]);
      (target.defined() ? into_grads : fresh_grads).push_back(grads[i]);
    }
    if (into.empty() && fresh.empty()) return;
    const Tensor& xv = x.get(name());
    if (!into.empty()) PONDER_DISPATCH(options.device, linear_weight_grads, into, into_grads, xv, true);
    if (!fresh.empty()) PONDER_DISPATCH(options.device, linear_weight_grads, fresh, fresh_grads, xv, false);
  }
  void release_saved() override {
    x.reset();
    for (SavedTensor& w : weights) w.reset();
  }
  SavedTensor x;                    // [rows, in], kept when a weight needs a gradient
  std::vector<SavedTensor> weights;  // kept when x needs a gradient
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

int64_t leading_rows(const Tensor& x) {
  int64_t rows = 1;
  for (int i = 0; i + 1 < x.dim(); ++i) rows *= x.size(i);
  return rows;
}

// x2d [rows, in] @ weight^T (+ bias), shaped as x with out features last.
Tensor product_rows(const Tensor& x, const Tensor& x2d, const Tensor& weight, const Tensor& bias) {
  Tensor y = Tensor::empty({x2d.size(0), weight.size(0)}, x.options());
  PONDER_DISPATCH(x.device(), linear, y, x2d, weight, bias);
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 1] = weight.size(0);
  return y.as_strided(out_shape, contiguous_strides(out_shape), 0);
}

}  // namespace

// Leading dims of x are flattened so the product is one 2-D GEMM (with the bias fused on the GPU)
// rather than a broadcast batch of small ones.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands(x, weight, bias);
  const int64_t in_features = weight.size(1), rows = leading_rows(x);
  Tensor x2d = reshape(x.detach(), {rows, in_features});
  Tensor y = product_rows(x, x2d, weight, bias);
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

TensorList linear_group(const Tensor& x, const TensorList& weights) {
  PONDER_CHECK(!weights.empty(), ValueError, "linear_group: no weights");
  for (const Tensor& w : weights) check_operands(x, w, Tensor());
  const int64_t in_features = x.size(-1), rows = leading_rows(x);
  Tensor x2d = reshape(x.detach(), {rows, in_features});
  TensorList ys;
  std::vector<const Tensor*> inputs{&x};
  for (const Tensor& w : weights) {
    ys.push_back(product_rows(x, x2d, w, Tensor()));
    inputs.push_back(&w);
  }
  if (auto node = make_node<LinearGroupBackward>(inputs)) {
    for (size_t i = 0; i < weights.size(); ++i) {
      if (node->needs_input_grad(i + 1)) node->x = x2d;
      if (node->needs_input_grad(0)) node->weights.push_back(weights[i]);
    }
    node->x_shape = x.shape();
    node->rows = rows;
    node->in_features = in_features;
    node->options = x.options();
    for (const Tensor& y : ys) set_history(y, node);
  }
  return ys;
}

}  // namespace ponder
