#include "ops/embedding.h"

#include "backend/cpu/embedding.h"
#include "backend/cuda/embedding.h"
#include "backend/id_check.h"
#include "backend/kernels.h"
#include "ops/cast.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

struct EmbeddingBackward final : Node {
  const char* name() const override { return "embedding"; }
  TensorList apply(TensorList&& grads) override {
    Tensor grad_weight = Tensor::empty(weight_shape, weight_options);
    PONDER_DISPATCH(weight_options.device, embedding_backward, grad_weight, backend::contiguous(grads[0]),
                    ids.get(name()));
    return {grad_weight};
  }
  void release_saved() override { ids.reset(); }
  SavedTensor ids;  // contiguous i64
  Shape weight_shape;
  TensorOptions weight_options;
};

void check_embedding_inputs(const Tensor& weight, const Tensor& ids) {
  check_same_device("embedding", {&weight, &ids});
  check_floating("embedding", weight);
  PONDER_CHECK(weight.dim() == 2, ShapeError, "embedding: weight must be 2-D [V, D], got ", describe(weight));
  PONDER_CHECK(ids.dtype() == DType::i32 || ids.dtype() == DType::i64, DTypeError,
               "embedding: ids must be i32 or i64, got ", describe(ids));
}

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  check_embedding_inputs(weight, ids);
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.size(1));
  Tensor out = Tensor::empty(out_shape, weight.options());
  Tensor index = backend::contiguous(to_dtype(ids, DType::i64));
  backend::check_ids(backend::IdCheck::embedding_ids, index, weight.size(0));
  PONDER_DISPATCH(weight.device(), embedding_forward, out, backend::contiguous(weight), index);
  if (auto node = make_node<EmbeddingBackward>({&weight})) {
    node->ids = index;
    node->weight_shape = weight.shape();
    node->weight_options = weight.options();
    set_history(out, node);
  }
  return out;
}

}  // namespace ponder
