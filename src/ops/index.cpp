#include "ops/index.h"

#include "backend/cpu/index.h"
#include "backend/cuda/index.h"
#include "backend/kernels.h"
#include "ops/creation.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

// dx = zeros with each output gradient slice added into the input slice it was selected from.
struct IndexSelectBackward final : Node {
  const char* name() const override { return "index_select"; }
  TensorList apply(TensorList&& g) override {
    Tensor gx = zeros(input.shape, {input.dtype, input.device});
    PONDER_DISPATCH(input.device, index_add, gx, dim, index.get(name()), backend::contiguous(g[0]));
    return {gx};
  }
  void release_saved() override { index.reset(); }
  autograd::OutputInfo input;
  int dim = 0;
  SavedTensor index;
};

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_same_device("index_select", {&x, &index});
  PONDER_CHECK(index.dtype() == DType::i32 || index.dtype() == DType::i64, DTypeError,
               "index_select: index must be i32 or i64, got ", describe(index));
  PONDER_CHECK(index.dim() == 1, ShapeError, "index_select: index must be 1-D, got ", describe(index));
  PONDER_CHECK(x.dim() > 0, ShapeError, "index_select: cannot index a zero-dimensional tensor");
  int d = wrap_dim(dim, x.dim(), "index_select");
  Shape shape = x.shape();
  shape[d] = index.numel();
  Tensor out = Tensor::empty(shape, x.options());
  PONDER_DISPATCH(x.device(), index_select, out, x, d, index);
  if (auto node = make_node<IndexSelectBackward>({&x})) {
    node->input = {x.shape(), x.dtype(), x.device()};
    node->dim = d;
    node->index = index;
    set_history(out, node);
  }
  return out;
}

}  // namespace ponder
