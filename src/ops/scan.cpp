#include "ops/scan.h"

#include "backend/cpu/scan.h"
#include "backend/cuda/scan.h"
#include "backend/kernels.h"
#include "ops/cast.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

struct LinearScanBackward final : Node {
  const char* name() const override { return "linear_scan"; }
  TensorList apply(TensorList&& grads) override {
    const Tensor& x_saved = x.get(name());
    Tensor g = backend::contiguous(grads[0]);
    Tensor grad_x = Tensor::empty(x_saved.shape(), x_saved.options());
    Tensor grad_alpha = Tensor::empty(alpha.get(name()).shape(), x_saved.options());
    PONDER_DISPATCH(g.device(), linear_scan_backward, grad_x, grad_alpha, g, out.get(name()), x_saved,
                        alpha.get(name()), starts.get(name()));
    return {needs_input_grad(0) ? grad_x : Tensor(), needs_input_grad(1) ? grad_alpha : Tensor()};
  }
  void release_saved() override {
    x.reset();
    alpha.reset();
    starts.reset();
    out.reset();
  }
  SavedTensor x, alpha, starts, out;  // contiguous; starts as u8
};

void check_scan_inputs(const Tensor& x, const Tensor& alpha, const Tensor& starts) {
  check_same_device("linear_scan", {&x, &alpha, &starts});
  check_floating("linear_scan", x);
  check_same_dtype("linear_scan", {&x, &alpha});
  PONDER_CHECK(x.dim() == 2, ShapeError, "linear_scan: x must be [N, D], got ", describe(x));
  PONDER_CHECK(alpha.dim() == 1 && alpha.size(0) == x.size(1), ShapeError, "linear_scan: alpha must be [",
               x.size(1), "], got ", describe(alpha));
  PONDER_CHECK(starts.dim() == 1 && starts.size(0) == x.size(0), ShapeError, "linear_scan: starts must be [",
               x.size(0), "], got ", describe(starts));
  PONDER_CHECK(starts.dtype() == DType::u8 || starts.dtype() == DType::i64, DTypeError,
               "linear_scan: starts must be u8 or i64, got ", describe(starts));
}

}  // namespace

Tensor linear_scan(const Tensor& x, const Tensor& alpha, const Tensor& starts) {
  check_scan_inputs(x, alpha, starts);
  Tensor xc = backend::contiguous(x), ac = backend::contiguous(alpha);
  Tensor flags = backend::contiguous(to_dtype(starts, DType::u8));
  Tensor out = Tensor::empty(x.shape(), x.options());
  PONDER_DISPATCH(x.device(), linear_scan, out, xc, ac, flags);
  if (auto node = make_node<LinearScanBackward>({&x, &alpha})) {
    node->x = xc;
    node->alpha = ac;
    node->starts = flags;
    node->out = out;
    set_history(out, node);
  }
  return out;
}

}  // namespace ponder
