#include "ops/rope.h"

#include <cmath>

#include "backend/cpu/rope.h"
#include "backend/cuda/rope.h"
#include "backend/kernels.h"
#include "ops/cast.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

// The rotation is orthogonal, so the gradient is the rotation by the negated angles.
struct RopeBackward final : Node {
  const char* name() const override { return "rope"; }
  TensorList apply(TensorList&& grads) override {
    Tensor g = backend::contiguous(grads[0]);
    Tensor grad_x = Tensor::empty(g.shape(), g.options());
    PONDER_DISPATCH(g.device(), rope, grad_x, g, positions.get(name()), theta, /*inverse=*/true);
    return {grad_x};
  }
  void release_saved() override { positions.reset(); }
  SavedTensor positions;  // contiguous i64
  double theta = 0;
};

}  // namespace

namespace ops_detail {

void check_rope_inputs(const char* op, const Tensor& x, const Tensor& positions, double theta) {
  check_same_device(op, {&x, &positions});
  check_floating(op, x);
  PONDER_CHECK(positions.dtype() == DType::i32 || positions.dtype() == DType::i64, DTypeError, op,
               ": positions must be i32 or i64, got ", describe(positions));
  PONDER_CHECK(x.dim() >= 2, ShapeError, op, ": x must have shape [..., H, D], got ", describe(x));
  PONDER_CHECK(x.shape().back() % 2 == 0, ShapeError, op, ": the head dimension of x ", x.shape(), " must be even");
  Shape leading(std::span<const int64_t>(x.shape().begin(), x.dim() - 2));
  PONDER_CHECK(positions.shape() == leading, ShapeError, op, ": positions ", positions.shape(),
               " do not match the leading shape ", leading, " of x ", x.shape());
  PONDER_CHECK(std::isfinite(theta) && theta > 0, ValueError, op, ": theta must be finite and positive, got ", theta);
}

Tensor rope_positions(const Tensor& positions) { return backend::contiguous(to_dtype(positions, DType::i64)); }

}  // namespace ops_detail

Tensor rope(const Tensor& x, const Tensor& positions, double theta) {
  check_rope_inputs("rope", x, positions, theta);
  Tensor out = Tensor::empty(x.shape(), x.options());
  Tensor index = rope_positions(positions);
  PONDER_DISPATCH(x.device(), rope, out, backend::contiguous(x), index, theta, /*inverse=*/false);
  if (auto node = make_node<RopeBackward>({&x})) {
    node->positions = index;
    node->theta = theta;
    set_history(out, node);
  }
  return out;
}

}  // namespace ponder
