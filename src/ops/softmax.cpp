#include "ops/softmax.h"

#include <utility>

#include "backend/cpu/softmax.h"
#include "backend/cuda/softmax.h"
#include "backend/kernels.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

// A view of t with dimension `dim` swapped with the last one; swapping twice restores t.
Tensor swap_with_last(const Tensor& t, int dim) {
  const int last = t.dim() - 1;
  if (t.dim() == 0 || dim == last) return t;
  Shape shape = t.shape();
  Strides strides = t.strides();
  std::swap(shape[dim], shape[last]);
  std::swap(strides[dim], strides[last]);
  return t.as_strided(shape, strides, t.offset());
}

struct SoftmaxBackward final : Node {
  SoftmaxBackward(bool log, int dim) : log(log), dim(dim) {}
  const char* name() const override { return log ? "log_softmax" : "softmax"; }
  TensorList apply(TensorList&& g) override {
    const Tensor& yv = y.get(name());
    Tensor g_rows = backend::contiguous(swap_with_last(g[0], dim));
    Tensor dx = Tensor::empty(yv.shape(), yv.options());
    PONDER_DISPATCH(yv.device(), softmax_backward, dx, yv, g_rows, log);
    return {swap_with_last(dx, dim)};
  }
  void release_saved() override { y.reset(); }
  bool log;
  int dim;
  SavedTensor y;  // the output with `dim` moved last, contiguous
};

Tensor softmax_along(const char* name, const Tensor& x, int64_t dim, bool log) {
  check_defined(name, {&x});
  check_floating(name, x);
  // A 0-d tensor is one row of one element, addressed as dim 0 or -1 (as in PyTorch).
  const int d = x.dim() == 0 && dim == -1 ? 0 : wrap_dim(dim, x.dim(), name);
  Tensor x_rows = backend::contiguous(swap_with_last(x, d));
  Tensor y_rows = Tensor::empty(x_rows.shape(), x_rows.options());
  PONDER_DISPATCH(x.device(), softmax_forward, y_rows, x_rows, log);
  Tensor out = swap_with_last(y_rows, d);
  if (auto node = make_node<SoftmaxBackward>({&x}, log, d)) {
    node->y = y_rows;
    set_history(out, node);
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_along("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_along("log_softmax", x, dim, true); }

}  // namespace ponder
