#include "optim/grad_buffer.h"

#include <set>

#include "backend/kernels.h"

namespace ponder::optim {
FlatLayout GradBuffer::packed_layout(const TensorList& params) {
  FlatLayout layout;
  std::set<TensorImpl*> seen;
  for (const Tensor& p : params) {
    if (!p.requires_grad()) continue;
    PONDER_CHECK(seen.insert(p.impl()).second, ValueError, "GradBuffer: parameter ", describe(p),
                 " is listed more than once");
    PONDER_CHECK(layout.params.empty() || p.device() == layout.params.front().device(), DeviceError, "GradBuffer: parameter ",
                 describe(p), " is not on ", layout.params.front().device(), " like the first one");
    layout.params.push_back(p);
    layout.offsets.push_back(layout.numel);
    layout.numel += aligned(p.numel());
  }
  return layout;
}

GradBuffer::GradBuffer(const TensorList& params, DType dtype) : GradBuffer(packed_layout(params), dtype) {}

GradBuffer::GradBuffer(FlatLayout layout, DType dtype) : params_(std::move(layout.params)) {
  PONDER_CHECK(is_floating(dtype), DTypeError, "GradBuffer: dtype must be floating, got ", dtype_name(dtype));
  PONDER_CHECK(layout.offsets.size() == params_.size(), ValueError, "GradBuffer: the layout places ", layout.offsets.size(),
               " gradients for ", params_.size(), " parameters");
  const Device device = params_.empty() ? Device::cpu() : params_.front().device();
  flat_ = Tensor::empty({layout.numel}, {dtype, device});
  backend::fill(flat_, 0.0);
  int64_t end = 0;  // of the previous view: views must not overlap
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const int64_t offset = layout.offsets[i];
    PONDER_CHECK(offset >= end && offset % kAlignment == 0 && offset + p.numel() <= layout.numel, ValueError,
                 "GradBuffer: the layout puts ", describe(p), " at ", offset, ", overlapping, unaligned or past the end");
    end = offset + p.numel();
    Tensor view = flat_.as_strided(p.shape(), contiguous_strides(p.shape()), offset);
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
