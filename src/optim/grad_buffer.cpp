#include "optim/grad_buffer.h"

#include <set>

#include "backend/kernels.h"

namespace ponder::optim {
namespace {

int64_t aligned(int64_t n) {
  constexpr int64_t a = GradBuffer::kAlignment;
  return (n + a - 1) / a * a;
}

}  // namespace

GradBuffer::GradBuffer(const TensorList& params, DType dtype) {
  PONDER_CHECK(is_floating(dtype), DTypeError, "GradBuffer: dtype must be floating, got ", dtype_name(dtype));
  std::set<TensorImpl*> seen;
  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (const Tensor& p : params) {
    if (!p.requires_grad()) continue;
    PONDER_CHECK(seen.insert(p.impl()).second, ValueError, "GradBuffer: parameter ", describe(p),
                 " is listed more than once");
    PONDER_CHECK(params_.empty() || p.device() == params_.front().device(), DeviceError, "GradBuffer: parameter ",
                 describe(p), " is not on ", params_.front().device(), " like the first one");
    params_.push_back(p);
    offsets.push_back(total);
    total += aligned(p.numel());
  }
  const Device device = params_.empty() ? Device::cpu() : params_.front().device();
  flat_ = Tensor::empty({total}, {dtype, device});
  backend::fill(flat_, 0.0);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor view = flat_.as_strided(p.shape(), contiguous_strides(p.shape()), offsets[i]);
    if (p.grad().defined()) backend::copy(view, p.grad());
    views_.push_back(view);
  }
  attach();
}

void GradBuffer::zero() {
  backend::fill(flat_, 0.0);
  flat_.bump_version();
  attach();
}

void GradBuffer::attach() const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (!params_[i].grad().is_same(views_[i])) params_[i].set_grad(views_[i]);
}

}  // namespace ponder::optim
