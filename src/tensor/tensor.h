// Tensor: a cheap handle to (storage, shape, strides, offset, dtype) plus autograd slots.
// Copying a Tensor copies the handle; views share storage.
//
// The tensor layer knows data, not math. The differentiable methods declared at the bottom
// (reshape, transpose, sum, ...) are sugar for the ops of src/ops and are defined there.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/int_vec.h"
#include "tensor/storage.h"

namespace ponder {

namespace autograd {
class Node;
}

struct TensorImpl;
class Tensor;

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool requires_grad = false;
};

// A hook sees the gradient flowing into a tensor and may return a replacement (or an undefined
// tensor to keep it unchanged).
using GradHook = std::function<Tensor(const Tensor& grad)>;
// Runs after a leaf's .grad has been accumulated (data-parallel bucketing listens here).
using PostAccumulateHook = std::function<void(Tensor& leaf)>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised memory of the given shape (contiguous).
  static Tensor empty(const Shape& shape, const TensorOptions& options = {});

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Strides& strides() const;
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int dim() const { return shape().size(); }
  int64_t numel() const { return shape().product(); }
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_floating_point() const { return is_floating(dtype()); }
  bool is_contiguous() const;
  TensorOptions options() const { return {dtype(), device(), false}; }
  const Storage& storage() const;

  // Address of the first element (storage base + offset).
  void* data_ptr() const;
  template <class T>
  T* data() const {
    check_dtype(dtype_v<T>, "data");
    return static_cast<T*>(data_ptr());
  }
  // Value of a one-element tensor, converted to T (copies from the device if needed).
  template <class T>
  T item() const;
  // All elements in row-major order, converted to T (copies from the device if needed).
  template <class T>
  std::vector<T> to_vector() const;

  // A view with explicit geometry over the same storage; no autograd (ops build on this).
  Tensor as_strided(const Shape& shape, const Strides& strides, int64_t offset) const;
  // Same storage and geometry, cut from the graph (never requires grad).
  Tensor detach() const;
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // ---- autograd ----
  bool requires_grad() const;
  // Only on leaves (tensors not produced by a recorded op).
  Tensor& set_requires_grad(bool requires_grad);
  bool is_leaf() const;
  // Accumulated gradient of a leaf (undefined until a backward reaches it).
  const Tensor& grad() const;
  void set_grad(const Tensor& grad) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  uint32_t output_nr() const;
  void backward(const Tensor& grad = {}, bool retain_graph = false) const;
  void register_hook(GradHook hook) const;
  void register_post_accumulate_hook(PostAccumulateHook hook) const;

  // Marks an in-place modification so saved copies of this storage are detected as stale.
  void bump_version() const;
  uint32_t version() const;

  // ---- differentiable sugar, defined in src/ops/tensor_methods.cpp ----
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor permute(const IntVec& order) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor expand(const Shape& shape) const;
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor sum(const IntVec& dims = {}, bool keepdim = false) const;
  Tensor mean(const IntVec& dims = {}, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;

 private:
  void check_dtype(DType expected, const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

using TensorList = std::vector<Tensor>;

// Gradient bookkeeping of a tensor, allocated only for tensors that take part in autograd.
struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;  // null for leaves
  uint32_t output_nr = 0;                   // which output of grad_fn this tensor is
  std::weak_ptr<autograd::Node> grad_accumulator;  // leaves: shared by all graphs using them
  std::vector<GradHook> hooks;  // leaves only; a non-leaf keeps its hooks on its grad_fn
  std::vector<PostAccumulateHook> post_accumulate_hooks;
};

struct TensorImpl {
  Storage storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Strides strides;
  DType dtype = DType::f32;
  std::unique_ptr<AutogradMeta> autograd;

  AutogradMeta& autograd_meta() {
    if (!autograd) autograd = std::make_unique<AutogradMeta>();
    return *autograd;
  }
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);
// "[2, 3] f32 cpu" — used in error messages.
std::string describe(const Tensor& t);

}  // namespace ponder
