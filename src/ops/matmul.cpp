#include "ops/matmul.h"

#include "backend/cpu/matmul.h"
#include "backend/cuda/matmul.h"
#include "ops/op_support.h"
#include "ops/view.h"

namespace ponder {
using namespace ops_detail;

namespace {

// t [..., R, C] as [(...) * R, C].
Tensor stacked_rows(const Tensor& t) {
  int64_t rows = 1;
  for (int i = 0; i + 1 < t.dim(); ++i) rows *= t.size(i);
  return reshape(t, {rows, t.size(-1)});
}

struct MatmulBackward final : Node {
  const char* name() const override { return "matmul"; }
  // dA = dC @ B^T, dB = A^T @ dC, each summed over broadcast batch dims.
  TensorList apply(TensorList&& g) override {
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(matmul(g[0], transpose(b.get(name()), -2, -1)), a_shape);
    if (needs_input_grad(1)) {
      const Tensor& av = a.get(name());
      // A 2-D B shared by every batch item: the batch sum of A_i^T dC_i is one product over the
      // rows of all A_i stacked, with no per-item gradients to reduce.
      bool shared = b_shape.size() == 2 && a_shape.size() > 2;
      gb = shared ? matmul(transpose(stacked_rows(av), 0, 1), stacked_rows(g[0]))
                  : sum_to(matmul(transpose(av, -2, -1), g[0]), b_shape);
    }
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
  SavedTensor a, b;  // each kept only when the other operand needs a gradient
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
  PONDER_DISPATCH(a.device(), matmul, out, broadcast_view(a, a_full), broadcast_view(b, b_full));
  if (auto node = make_node<MatmulBackward>({&a, &b})) {
    if (node->needs_input_grad(1)) node->a = a;
    if (node->needs_input_grad(0)) node->b = b;
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
