#include "ops/norm.h"

#include <cmath>

#include "backend/cpu/norm.h"
#include "backend/cuda/norm.h"
#include "backend/kernels.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

// Both norms share one backward node; a saved mean marks LayerNorm. Inputs: x, weight[, bias].
// An unweighted RMSNorm keeps its output instead of its input (see kept_is_output).
struct NormBackward final : Node {
  explicit NormBackward(const char* op) : op(op) {}
  const char* name() const override { return op; }
  TensorList apply(TensorList&& grads) override {
    const Tensor& xv = x.get(op);
    Tensor w = weight.defined() ? backend::contiguous(weight.get(op)) : Tensor();
    Tensor g = backend::contiguous(grads[0]);
    Tensor gx = needs_input_grad(0) ? Tensor::empty(xv.shape(), xv.options()) : Tensor();
    Tensor gw = needs_input_grad(1) ? Tensor::empty({xv.shape().back()}, xv.options()) : Tensor();
    Tensor gb = needs_input_grad(2) ? Tensor::empty({xv.shape().back()}, xv.options()) : Tensor();
    if (mean.defined()) {
      PONDER_DISPATCH(xv.device(), layer_norm_backward, gx, gw, gb, g, backend::contiguous(xv), w, mean.get(op),
                      rstd.get(op));
      return {gx, gw, gb};
    }
    PONDER_DISPATCH(xv.device(), rms_norm_backward, gx, gw, g, backend::contiguous(xv), w, rstd.get(op),
                    kept_is_output(w));
    return {gx, gw};
  }
  void release_saved() override {
    x.reset();
    weight.reset();
    mean.reset();
    rstd.reset();
  }
  const char* op;
  SavedTensor x, weight, mean, rstd;  // x: the input, or the output where kept_is_output
};

void check_parameter(const char* op, const char* what, const Tensor& p, const Tensor& x) {
  if (!p.defined()) return;
  check_same_device(op, {&x, &p});
  check_same_dtype(op, {&x, &p});
  PONDER_CHECK(p.dim() == 1 && p.size(0) == x.shape().back(), ShapeError, op, ": ", what, " ",
               p.shape(), " does not match the last dimension of x ", x.shape());
}

Tensor contiguous_or_none(const Tensor& t) { return t.defined() ? backend::contiguous(t) : Tensor(); }

}  // namespace

namespace ops_detail {

bool kept_is_output(const Tensor& rms_weight) { return !rms_weight.defined(); }

void check_norm_inputs(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_defined(op, {&x});
  check_floating(op, x);
  PONDER_CHECK(x.dim() >= 1, ShapeError, op, ": x must have at least one dimension, got ", describe(x));
  PONDER_CHECK(std::isfinite(eps) && eps >= 0, ValueError, op, ": eps must be finite and non-negative, got ", eps);
  check_parameter(op, "weight", weight, x);
  check_parameter(op, "bias", bias, x);
}

// The CPU kernels keep statistics in the accumulation dtype (f64 for f32), the CUDA kernels in f32.
Tensor empty_norm_stats(const Tensor& x) {
  Shape rows(std::span<const int64_t>(x.shape().begin(), x.dim() - 1));
  DType dtype = x.is_cuda() ? DType::f32
                            : visit_floating(x.dtype(), "norm", [](auto tag) { return dtype_v<acc_t<decltype(tag)>>; });
  return Tensor::empty(rows, {dtype, x.device()});
}

}  // namespace ops_detail

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  check_norm_inputs("rms_norm", x, weight, Tensor(), eps);
  Tensor y = Tensor::empty(x.shape(), x.options());
  Tensor rstd = empty_norm_stats(x);
  PONDER_DISPATCH(x.device(), rms_norm_forward, y, rstd, backend::contiguous(x), contiguous_or_none(weight), eps);
  if (auto node = make_node<NormBackward>({&x, &weight}, "rms_norm")) {
    node->x = kept_is_output(weight) ? y : x;
    node->weight = weight;
    node->rstd = rstd;
    set_history(y, node);
  }
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_norm_inputs("layer_norm", x, weight, bias, eps);
  Tensor y = Tensor::empty(x.shape(), x.options());
  Tensor mean = empty_norm_stats(x), rstd = empty_norm_stats(x);
  PONDER_DISPATCH(x.device(), layer_norm_forward, y, mean, rstd, backend::contiguous(x), contiguous_or_none(weight),
                  contiguous_or_none(bias), eps);
  if (auto node = make_node<NormBackward>({&x, &weight, &bias}, "layer_norm")) {
    node->x = x;
    node->weight = weight;
    node->mean = mean;
    node->rstd = rstd;
    set_history(y, node);
  }
  return y;
}

}  // namespace ponder
