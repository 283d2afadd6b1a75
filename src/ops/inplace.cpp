#include "ops/inplace.h"

#include "backend/kernels.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {
void check_writable(const char* op, const Tensor& dst) {
  check_defined(op, {&dst});
  PONDER_CHECK(!(autograd::is_grad_enabled() && dst.requires_grad()), AutogradError, op,
               ": in-place write into a tensor that requires grad; do it under NoGrad");
}
}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  check_writable("copy_", dst);
  check_defined("copy_", {&src});
  PONDER_CHECK(broadcast_shapes("copy_", dst.shape(), src.shape()) == dst.shape(), ShapeError,
               "copy_: source ", describe(src), " does not broadcast to destination ", describe(dst));
  backend::copy(dst, broadcast_view(src, dst.shape()));
  dst.bump_version();
}

void fill_(const Tensor& dst, double value) {
  check_writable("fill_", dst);
  backend::fill(dst, value);
  dst.bump_version();
}

}  // namespace ponder
