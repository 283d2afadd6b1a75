// Tensor's differentiable methods: sugar for the ops, so model code can chain calls.
#include "backend/kernels.h"
#include "ops/cast.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/view.h"

namespace ponder {

Tensor Tensor::reshape(const Shape& s) const { return ponder::reshape(*this, s); }
Tensor Tensor::view(const Shape& s) const { return ponder::view(*this, s); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  return ponder::flatten(*this, start_dim, end_dim);
}
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return ponder::transpose(*this, d0, d1); }
Tensor Tensor::permute(const IntVec& order) const { return ponder::permute(*this, order); }
Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  return ponder::slice(*this, dim, start, end, step);
}
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  return ponder::narrow(*this, dim, start, length);
}
Tensor Tensor::expand(const Shape& s) const { return ponder::expand(*this, s); }
Tensor Tensor::squeeze(int64_t dim) const { return ponder::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int64_t dim) const { return ponder::unsqueeze(*this, dim); }
Tensor Tensor::contiguous() const { return ponder::contiguous(*this); }
Tensor Tensor::clone() const { return ponder::clone(*this); }
Tensor Tensor::to(DType dtype) const { return to_dtype(*this, dtype); }
Tensor Tensor::to(Device device) const { return to_device(*this, device); }
Tensor Tensor::sum(const IntVec& dims, bool keepdim) const { return ponder::sum(*this, dims, keepdim); }
Tensor Tensor::mean(const IntVec& dims, bool keepdim) const { return ponder::mean(*this, dims, keepdim); }
Tensor Tensor::matmul(const Tensor& other) const { return ponder::matmul(*this, other); }

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = Tensor::empty(shape(), {dtype_v<T>, Device::cpu()});
  backend::copy(host, *this);
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

template <class T>
T Tensor::item() const {
  PONDER_CHECK(numel() == 1, ShapeError, "item: expected a one-element tensor, got ", describe(*this));
  return to_vector<T>()[0];
}

#define PONDER_INSTANTIATE(T)                   \
  template std::vector<T> Tensor::to_vector() const; \
  template T Tensor::item() const;
PONDER_INSTANTIATE(float)
PONDER_INSTANTIATE(double)
PONDER_INSTANTIATE(bf16)
PONDER_INSTANTIATE(int32_t)
PONDER_INSTANTIATE(int64_t)
PONDER_INSTANTIATE(uint8_t)
#undef PONDER_INSTANTIATE

}  // namespace ponder
