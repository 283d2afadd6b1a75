#include "ops/op_support.h"

#include <algorithm>

#include "ops/reduce.h"

namespace ponder::ops_detail {

void check_defined(const char* op, std::initializer_list<const Tensor*> ts) {
  int i = 0;
  for (const Tensor* t : ts) {
    PONDER_CHECK(t->defined(), ValueError, op, ": operand ", i, " is an undefined tensor");
    ++i;
  }
}

void check_same_device(const char* op, std::initializer_list<const Tensor*> ts) {
  check_defined(op, ts);
  const Tensor* first = *ts.begin();
  for (const Tensor* t : ts) {
    PONDER_CHECK(t->device() == first->device(), DeviceError, op, ": operands on different devices: ",
                 describe(*first), " and ", describe(*t));
  }
}

void check_same_dtype(const char* op, std::initializer_list<const Tensor*> ts) {
  check_defined(op, ts);
  const Tensor* first = *ts.begin();
  for (const Tensor* t : ts) {
    PONDER_CHECK(t->dtype() == first->dtype(), DTypeError, op, ": operands differ in dtype: ",
                 describe(*first), " and ", describe(*t));
  }
}

void check_floating(const char* op, const Tensor& t) {
  PONDER_CHECK(t.is_floating_point(), DTypeError, op, ": expected a floating tensor, got ", describe(t));
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  int n = std::max(a.size(), b.size());
  Shape out = Shape::filled(n, 1);
  for (int i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    PONDER_CHECK(da == db || da == 1 || db == 1, ShapeError, op, ": shapes ", a, " and ", b,
                 " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor broadcast_view(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  int lead = shape.size() - t.dim();
  Strides strides = Strides::filled(shape.size(), 0);
  for (int i = 0; i < t.dim(); ++i) {
    strides[lead + i] = t.shape()[i] == 1 && shape[lead + i] != 1 ? 0 : t.strides()[i];
  }
  return t.as_strided(shape, strides, t.offset());
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  int lead = grad.dim() - shape.size();
  IntVec dims;
  for (int i = 0; i < grad.dim(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && grad.shape()[i] != 1)) dims.push_back(i);
  }
  Tensor summed = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return summed.reshape(shape);
}

IntVec reduction_dims(const char* op, const IntVec& dims, int ndim) {
  IntVec out;
  if (dims.empty()) {
    for (int i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t d : dims) {
    int w = wrap_dim(d, ndim, op);
    PONDER_CHECK(std::find(out.begin(), out.end(), w) == out.end(), ShapeError, op,
                 ": dimension ", d, " listed twice");
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Shape keepdim_shape(const Shape& shape, const IntVec& dims) {
  Shape out = shape;
  for (int64_t d : dims) out[static_cast<int>(d)] = 1;
  return out;
}

}  // namespace ponder::ops_detail
