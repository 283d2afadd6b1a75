#include "ops/linear.h"

#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/op_support.h"
#include "ops/view.h"

namespace ponder {
using namespace ops_detail;

// Composed from matmul and add (their backward nodes give the gradients); leading dims of x are
// flattened so the product is one 2-D GEMM rather than a broadcast batch of small ones.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
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
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 1] = weight.size(0);
  Tensor y = matmul(reshape(x, {-1, weight.size(1)}), transpose(weight, 0, 1));
  if (bias.defined()) y = add(y, bias);
  return reshape(y, out_shape);
}

}  // namespace ponder
