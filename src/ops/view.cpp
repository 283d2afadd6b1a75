#include "ops/view.h"

#include <algorithm>

#include "backend/kernels.h"
#include "ops/creation.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

// Gradient of any reshaping view: reshape back.
struct ReshapeBackward final : Node {
  const char* name() const override { return "reshape"; }
  TensorList apply(TensorList&& g) override { return {reshape(g[0], input_shape)}; }
  Shape input_shape;
};

struct PermuteBackward final : Node {
  const char* name() const override { return "permute"; }
  TensorList apply(TensorList&& g) override {
    IntVec inverse = IntVec::filled(order.size(), 0);
    for (int i = 0; i < order.size(); ++i) inverse[static_cast<int>(order[i])] = i;
    return {permute(g[0], inverse)};
  }
  IntVec order;
};

// Gradient of a slice: zeros with the gradient written into the sliced window.
struct SliceBackward final : Node {
  const char* name() const override { return "slice"; }
  TensorList apply(TensorList&& g) override {
    const autograd::OutputInfo& in = input;
    Tensor gx = zeros(in.shape, {in.dtype, in.device});
    backend::copy(slice(gx, dim, start, end, step), g[0]);
    return {gx};
  }
  autograd::OutputInfo input;
  int64_t dim, start, end, step;
};

struct ExpandBackward final : Node {
  const char* name() const override { return "expand"; }
  TensorList apply(TensorList&& g) override { return {sum_to(g[0], input_shape)}; }
  Shape input_shape;
};

struct CopyBackward final : Node {
  const char* name() const override { return "copy"; }
  TensorList apply(TensorList&& g) override { return {g[0]}; }
};

// Records a view `out` of `x` whose gradient is computed by node type N.
template <class N, class Setup>
Tensor record_view(const Tensor& x, Tensor out, Setup setup) {
  if (auto node = make_node<N>({&x})) {
    setup(*node);
    set_history(out, node);
  }
  return out;
}

Shape infer_shape(const char* op, const Shape& requested, int64_t numel) {
  Shape shape = requested;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      PONDER_CHECK(infer < 0, ShapeError, op, ": only one dimension can be -1 in ", requested);
      infer = i;
    } else {
      PONDER_CHECK(shape[i] >= 0, ShapeError, op, ": invalid size in ", requested);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    PONDER_CHECK(known != 0 && numel % known == 0, ShapeError, op, ": cannot infer -1 in ",
                 requested, " for ", numel, " elements");
    shape[infer] = numel / known;
  }
  PONDER_CHECK(shape.product() == numel, ShapeError, op, ": shape ", requested,
               " is invalid for ", numel, " elements");
  return shape;
}

}  // namespace

Tensor view(const Tensor& x, const Shape& shape) {
  Shape s = infer_shape("view", shape, x.numel());
  PONDER_CHECK(x.is_contiguous(), ShapeError, "view: tensor ", describe(x),
               " is not contiguous; use reshape (which copies)");
  Tensor out = x.as_strided(s, contiguous_strides(s), x.offset());
  return record_view<ReshapeBackward>(x, out, [&](ReshapeBackward& n) { n.input_shape = x.shape(); });
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return view(x.is_contiguous() ? x : contiguous(x), shape);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  int s = wrap_dim(start_dim, x.dim(), "flatten"), e = wrap_dim(end_dim, x.dim(), "flatten");
  PONDER_CHECK(s <= e, ShapeError, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape shape;
  for (int i = 0; i < s; ++i) shape.push_back(x.shape()[i]);
  int64_t merged = 1;
  for (int i = s; i <= e; ++i) merged *= x.shape()[i];
  shape.push_back(merged);
  for (int i = e + 1; i < x.dim(); ++i) shape.push_back(x.shape()[i]);
  return reshape(x, shape);
}

Tensor permute(const Tensor& x, const IntVec& order) {
  PONDER_CHECK(order.size() == x.dim(), ShapeError, "permute: order ", order, " does not match ",
               x.dim(), " dimensions");
  Shape shape;
  Strides strides;
  IntVec wrapped;
  for (int64_t d : order) {
    int w = wrap_dim(d, x.dim(), "permute");
    PONDER_CHECK(std::find(wrapped.begin(), wrapped.end(), w) == wrapped.end(), ShapeError,
                 "permute: order ", order, " repeats a dimension");
    wrapped.push_back(w);
    shape.push_back(x.shape()[w]);
    strides.push_back(x.strides()[w]);
  }
  Tensor out = x.as_strided(shape, strides, x.offset());
  return record_view<PermuteBackward>(x, out, [&](PermuteBackward& n) { n.order = wrapped; });
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  IntVec order;
  for (int i = 0; i < x.dim(); ++i) order.push_back(i);
  std::swap(order[wrap_dim(dim0, x.dim(), "transpose")], order[wrap_dim(dim1, x.dim(), "transpose")]);
  return permute(x, order);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  int d = wrap_dim(dim, x.dim(), "slice");
  PONDER_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  int64_t n = x.shape()[d];
  auto clamp = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  int64_t s = clamp(start), e = std::max(clamp(end), s);
  Shape shape = x.shape();
  Strides strides = x.strides();
  shape[d] = (e - s + step - 1) / step;
  strides[d] *= step;
  Tensor out = x.as_strided(shape, strides, x.offset() + s * x.strides()[d]);
  return record_view<SliceBackward>(x, out, [&](SliceBackward& node) {
    node.input = {x.shape(), x.dtype(), x.device()};
    node.dim = d;
    node.start = s;
    node.end = e;
    node.step = step;
  });
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  int d = wrap_dim(dim, x.dim(), "narrow");
  PONDER_CHECK(start >= 0 && length >= 0 && start + length <= x.shape()[d], ShapeError,
               "narrow: range [", start, ", ", start + length, ") is outside dimension ", dim,
               " of size ", x.shape()[d]);
  return slice(x, d, start, start + length);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  PONDER_CHECK(shape.size() >= x.dim(), ShapeError, "expand: cannot expand ", x.shape(), " to ", shape);
  Shape target = shape;
  int lead = shape.size() - x.dim();
  for (int i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      PONDER_CHECK(i >= lead, ShapeError, "expand: -1 is not allowed for new leading dimensions");
      target[i] = x.shape()[i - lead];
    }
    if (i >= lead) {
      int64_t own = x.shape()[i - lead];
      PONDER_CHECK(own == target[i] || own == 1, ShapeError, "expand: cannot expand ", x.shape(),
                   " to ", shape);
    }
  }
  if (target == x.shape()) return x;
  Tensor out = broadcast_view(x, target);
  return record_view<ExpandBackward>(x, out, [&](ExpandBackward& n) { n.input_shape = x.shape(); });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  int d = wrap_dim(dim, x.dim(), "squeeze");
  PONDER_CHECK(x.shape()[d] == 1, ShapeError, "squeeze: dimension ", dim, " of ", x.shape(),
               " has size ", x.shape()[d], ", not 1");
  Shape shape = x.shape();
  Strides strides = x.strides();
  shape.erase(d);
  strides.erase(d);
  Tensor out = x.as_strided(shape, strides, x.offset());
  return record_view<ReshapeBackward>(x, out, [&](ReshapeBackward& n) { n.input_shape = x.shape(); });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  int d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  Strides strides = x.strides();
  int64_t stride = d < x.dim() ? x.strides()[d] * x.shape()[d] : 1;
  shape.insert(d, 1);
  strides.insert(d, stride);
  Tensor out = x.as_strided(shape, strides, x.offset());
  return record_view<ReshapeBackward>(x, out, [&](ReshapeBackward& n) { n.input_shape = x.shape(); });
}

Tensor clone(const Tensor& x) {
  check_defined("clone", {&x});
  Tensor out = Tensor::empty(x.shape(), x.options());
  backend::copy(out, x);
  return record_view<CopyBackward>(x, out, [](CopyBackward&) {});
}

Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

}  // namespace ponder
