// A tensor kept for backward. It holds a detached alias (no grad_fn, so no reference cycle
// through the node that saved it) and the storage version at save time, so an in-place change
// between forward and backward is reported instead of silently giving wrong gradients.
//
// Or, for a tensor under a RecomputedWhenSaved, only the way to make it again: selective
// recomputation of cheap activations (an elementwise product whose inputs backward keeps anyway).
#pragma once

#include <functional>
#include <memory>

#include "tensor/tensor.h"

namespace ponder::autograd {

class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t);  // NOLINT: saving reads naturally as assignment

  // `op` names the node in the error when the tensor was released or modified. A recomputed
  // tensor is made on the first call and kept until reset().
  const Tensor& get(const char* op) const;
  bool defined() const { return data_.defined() || remake_ != nullptr; }
  void reset() {
    data_ = Tensor();
    remake_.reset();
  }

 private:
  struct Remake;  // the recipe and where the saved view lies in the tensor it makes
  mutable Tensor data_;
  mutable uint32_t version_ = 0;
  std::shared_ptr<const Remake> remake_;
};

// While one lives (thread-local; they nest), saving `t` for backward — t or any view of its
// storage — keeps `make` instead of t's memory, and backward calls make() when it needs the value
// (once per saving node). make must return t's value, contiguous like t, from tensors that backward
// keeps anyway, and must not record a graph (it runs under NoGrad). t must be contiguous.
class RecomputedWhenSaved {
 public:
  RecomputedWhenSaved(const Tensor& t, std::function<Tensor()> make);
  ~RecomputedWhenSaved();
  RecomputedWhenSaved(const RecomputedWhenSaved&) = delete;
  RecomputedWhenSaved& operator=(const RecomputedWhenSaved&) = delete;

 private:
  Tensor t_;
};

}  // namespace ponder::autograd
