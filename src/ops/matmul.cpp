#include "ops/matmul.h"

#include "backend/cpu/matmul.h"
#include "ops/op_support.h"
#include "ops/view.h"

namespace ponder {
using namespace ops_detail;

namespace {

struct MatmulBackward final : Node {
  const char* name() const override { return "matmul"; }
  // dA = dC @ B^T, dB = A^T @ dC, each summed over broadcast batch dims.
  TensorList apply(TensorList&& g) override {
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(matmul(g[0], transpose(b.get(name()), -2, -1)), a_shape);
    if (needs_input_grad(1)) gb = sum_to(matmul(transpose(a.get(name()), -2, -1), g[0]), b_shape);
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
  SavedTensor a, b;
  Shape a_shape, b_shape;
};

// The product of operands of at least two dims each.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const int64_t m = a.shape()[a.dim() - 2], k = a.shape()[a.dim() - 1];
  const int64_t k2 = b.shape()[b.dim() - 2], n = b.shape()[b.dim() - 1];
  PONDER_CHECK(k == k2, ShapeError, "matmul: inner dimensions differ: ", describe(a), " @ ", describe(b));
  Shape a_batch(std::span<const int64_t>(a.shape().begin(), a.dim() - 2));
  Shape b_batch(std::span<const int64_t>(b.shape().begin(), b.dim() - 2));
  Shape batch = broadcast_shapes("matmul", a_batch, b_batch);
  Shape a_full = batch, b_full = batch, out_shape = batch;
  a_full.push_back(m);
  a_full.push_back(k);
  b_full.push_back(k);
  b_full.push_back(n);
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, a.options());
  PONDER_DISPATCH_CPU(a.device(), matmul, out, broadcast_view(a, a_full), broadcast_view(b, b_full));
  if (auto node = make_node<MatmulBackward>({&a, &b})) {
    node->a = a;
    node->b = b;
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    set_history(out, node);
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_device("matmul", {&a, &b});
  check_same_dtype("matmul", {&a, &b});
  check_floating("matmul", a);
  PONDER_CHECK(a.dim() >= 1 && b.dim() >= 1, ShapeError, "matmul: operands must have at least one "
               "dimension, got ", describe(a), " and ", describe(b));
  if (a.dim() == 1 && b.dim() == 1) return reshape(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (a.dim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, 1)), -1);
  return matmul_nd(a, b);
}

}  // namespace ponder
