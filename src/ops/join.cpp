#include "ops/join.h"

#include "backend/kernels.h"
#include "ops/op_support.h"
#include "ops/view.h"

namespace ponder {
using namespace ops_detail;

namespace {

// Each input's gradient is its window of the output gradient along `dim`.
struct CatBackward final : Node {
  const char* name() const override { return "cat"; }
  TensorList apply(TensorList&& g) override {
    TensorList grads(sizes.size());
    int64_t start = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs_input_grad(i)) grads[i] = slice(g[0], dim, start, start + sizes[i]);
      start += sizes[i];
    }
    return grads;
  }
  int dim = 0;
  std::vector<int64_t> sizes;  // of each input along dim
};

// A non-empty list of defined tensors sharing one dtype and device.
void check_list(const char* op, const TensorList& xs) {
  PONDER_CHECK(!xs.empty(), ValueError, op, ": expected at least one tensor, got an empty list");
  for (size_t i = 0; i < xs.size(); ++i) {
    PONDER_CHECK(xs[i].defined(), ValueError, op, ": tensor ", i, " is undefined");
    check_same_device(op, {&xs[0], &xs[i]});
    check_same_dtype(op, {&xs[0], &xs[i]});
  }
}

// Every shape equals the first one, except in dimension `free_dim` (-1: in none).
void check_shapes_match(const char* op, const TensorList& xs, int free_dim) {
  const Shape& first = xs[0].shape();
  for (size_t i = 1; i < xs.size(); ++i) {
    const Shape& shape = xs[i].shape();
    bool same = shape.size() == first.size();
    for (int d = 0; same && d < first.size(); ++d) same = d == free_dim || shape[d] == first[d];
    if (same) continue;
    if (free_dim < 0) fail<ShapeError>(op, ": tensor ", i, " has shape ", shape, " but tensor 0 has ", first);
    fail<ShapeError>(op, ": tensor ", i, " has shape ", shape, " but tensor 0 has ", first,
                     "; shapes must match except in dimension ", free_dim);
  }
}

// Wires a node to every tensor of a list (make_node takes a fixed set of operands).
std::shared_ptr<CatBackward> make_cat_node(const TensorList& xs) {
  if (!autograd::needs_grad(xs)) return nullptr;
  auto node = std::make_shared<CatBackward>();
  std::vector<autograd::Edge> edges;
  for (const Tensor& x : xs) edges.push_back(autograd::gradient_edge(x));
  node->set_next_edges(std::move(edges));
  return node;
}

}  // namespace

Tensor cat(const TensorList& xs, int64_t dim) {
  check_list("cat", xs);
  PONDER_CHECK(xs[0].dim() > 0, ShapeError, "cat: cannot concatenate zero-dimensional tensors");
  int d = wrap_dim(dim, xs[0].dim(), "cat");
  check_shapes_match("cat", xs, d);
  Shape shape = xs[0].shape();
  shape[d] = 0;
  for (const Tensor& x : xs) shape[d] += x.size(d);
  Tensor out = Tensor::empty(shape, xs[0].options());
  int64_t start = 0;
  for (const Tensor& x : xs) {
    backend::copy(out.as_strided(x.shape(), out.strides(), out.offset() + start * out.stride(d)), x);
    start += x.size(d);
  }
  if (auto node = make_cat_node(xs)) {
    node->dim = d;
    for (const Tensor& x : xs) node->sizes.push_back(x.size(d));
    set_history(out, node);
  }
  return out;
}

TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  check_defined("split", {&x});
  PONDER_CHECK(x.dim() > 0, ShapeError, "split: cannot split a zero-dimensional tensor");
  int d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t size : sizes) {
    PONDER_CHECK(size >= 0, ValueError, "split: sizes ", list_str(sizes), " contain a negative size");
    total += size;
  }
  PONDER_CHECK(total == x.size(d), ShapeError, "split: sizes ", list_str(sizes), " add up to ", total,
               ", not to the size ", x.size(d), " of dimension ", dim, " of ", describe(x));
  TensorList pieces;
  int64_t start = 0;
  for (int64_t size : sizes) {
    pieces.push_back(slice(x, d, start, start + size));
    start += size;
  }
  return pieces;
}

Tensor stack(const TensorList& xs, int64_t dim) {
  check_list("stack", xs);
  check_shapes_match("stack", xs, -1);
  int d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  TensorList expanded;
  for (const Tensor& x : xs) expanded.push_back(unsqueeze(x, d));
  return cat(expanded, d);
}

}  // namespace ponder
