#include "tensor/tensor.h"

#include <sstream>

#include "tensor/allocator.h"

namespace ponder {

Tensor Tensor::empty(const Shape& shape, const TensorOptions& options) {
  for (int64_t s : shape)
    PONDER_CHECK(s >= 0, ShapeError, "empty: negative size in shape ", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<StorageImpl>(options.device,
                                                shape.product() * element_size(options.dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = options.dtype;
  Tensor t(std::move(impl));
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

const Shape& Tensor::shape() const { return impl_->shape; }
const Strides& Tensor::strides() const { return impl_->strides; }
int64_t Tensor::size(int64_t dim) const { return impl_->shape[wrap_dim(dim, this->dim(), "size")]; }
int64_t Tensor::stride(int64_t dim) const {
  return impl_->strides[wrap_dim(dim, this->dim(), "stride")];
}
int64_t Tensor::offset() const { return impl_->offset; }
DType Tensor::dtype() const { return impl_->dtype; }
Device Tensor::device() const { return impl_->storage->device(); }
const Storage& Tensor::storage() const { return impl_->storage; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to be out of place, whatever the strides
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] == 1) continue;  // the stride of a size-1 dim never matters
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * element_size(impl_->dtype);
}

void Tensor::check_dtype(DType expected, const char* what) const {
  PONDER_CHECK(dtype() == expected, DTypeError, what, ": tensor has dtype ", dtype_name(dtype()),
               ", accessed as ", dtype_name(expected));
}

Tensor Tensor::as_strided(const Shape& shape, const Strides& strides, int64_t offset) const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const { return as_strided(shape(), strides(), offset()); }

bool Tensor::requires_grad() const { return impl_->autograd && impl_->autograd->requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  PONDER_CHECK(is_leaf(), AutogradError,
               "set_requires_grad: only leaf tensors can change requires_grad; use detach() to "
               "make a new leaf");
  PONDER_CHECK(!requires_grad || is_floating_point(), DTypeError,
               "set_requires_grad: only floating tensors can require gradients, got ",
               dtype_name(dtype()));
  impl_->autograd_meta().requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const { return !impl_->autograd || !impl_->autograd->grad_fn; }

const Tensor& Tensor::grad() const {
  static const Tensor undefined;
  return impl_->autograd ? impl_->autograd->grad : undefined;
}

void Tensor::set_grad(const Tensor& grad) const {
  PONDER_CHECK(!grad.defined() || grad.shape() == shape(), ShapeError,
               "set_grad: gradient shape ", grad.shape(), " differs from tensor shape ", shape());
  impl_->autograd_meta().grad = grad;
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  return impl_->autograd ? impl_->autograd->grad_fn : none;
}

uint32_t Tensor::output_nr() const { return impl_->autograd ? impl_->autograd->output_nr : 0; }

void Tensor::register_post_accumulate_hook(PostAccumulateHook hook) const {
  PONDER_CHECK(requires_grad() && is_leaf(), AutogradError,
               "register_post_accumulate_hook: only leaves that require grad accumulate gradients");
  impl_->autograd_meta().post_accumulate_hooks.push_back(std::move(hook));
}

void Tensor::bump_version() const { impl_->storage->bump_version(); }
uint32_t Tensor::version() const { return impl_->storage->version(); }

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream os;
  os << t.shape() << ' ' << dtype_name(t.dtype()) << ' ' << t.device();
  return os.str();
}

}  // namespace ponder
