#include "ops/cast.h"

#include "backend/kernels.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

struct ToDtypeBackward final : Node {
  const char* name() const override { return "to_dtype"; }
  TensorList apply(TensorList&& g) override { return {to_dtype(g[0], source)}; }
  DType source;
};

struct ToDeviceBackward final : Node {
  const char* name() const override { return "to_device"; }
  TensorList apply(TensorList&& g) override { return {to_device(g[0], source)}; }
  Device source;
};

Tensor copy_to(const Tensor& x, const TensorOptions& options) {
  Tensor out = Tensor::empty(x.shape(), options);
  backend::copy(out, x);
  return out;
}

}  // namespace

Tensor to_dtype(const Tensor& x, DType dtype) {
  check_defined("to", {&x});
  if (x.dtype() == dtype) return x;
  Tensor out = copy_to(x, {dtype, x.device()});
  if (is_floating(dtype)) {
    if (auto node = make_node<ToDtypeBackward>({&x})) {
      node->source = x.dtype();
      set_history(out, node);
    }
  }
  return out;
}

Tensor to_device(const Tensor& x, Device device) {
  check_defined("to", {&x});
  if (x.device() == device) return x;
  Tensor out = copy_to(x, {x.dtype(), device});
  if (auto node = make_node<ToDeviceBackward>({&x})) {
    node->source = x.device();
    set_history(out, node);
  }
  return out;
}

}  // namespace ponder
