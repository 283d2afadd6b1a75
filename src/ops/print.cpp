// Printing tensors: values (elided in the middle of long dims) and a metadata suffix.
#include <iomanip>
#include <ostream>

#include "tensor/tensor.h"

namespace ponder {
namespace {

constexpr int64_t kEdgeItems = 3;  // shown at each end of a dimension longer than 2*kEdgeItems

void print_block(std::ostream& os, const std::vector<double>& v, const Shape& shape,
                 const Strides& strides, int dim, int64_t base, int indent) {
  if (shape.size() == 0) {
    os << v[base];
    return;
  }
  os << '[';
  const int64_t n = shape[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * kEdgeItems && i == kEdgeItems) {
      os << "...";
      i = n - kEdgeItems - 1;
      os << (dim + 1 < shape.size() ? ",\n" + std::string(indent + 1, ' ') : ", ");
      continue;
    }
    if (dim + 1 == shape.size()) {
      os << v[base + i * strides[dim]];
    } else {
      print_block(os, v, shape, strides, dim + 1, base + i * strides[dim], indent + 1);
    }
    if (i + 1 < n) os << (dim + 1 < shape.size() ? ",\n" + std::string(indent + 1, ' ') : ", ");
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::vector<double> values = t.to_vector<double>();
  os << "tensor(";
  auto flags = os.flags();
  os << std::setprecision(6);
  print_block(os, values, t.shape(), contiguous_strides(t.shape()), 0, 0, 7);
  os.flags(flags);
  os << ", shape=" << t.shape() << ", dtype=" << dtype_name(t.dtype()) << ", device=" << t.device();
  if (t.requires_grad()) os << ", requires_grad";
  return os << ')';
}

}  // namespace ponder
