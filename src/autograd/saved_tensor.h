// A tensor kept for backward. It holds a detached alias (no grad_fn, so no reference cycle
// through the node that saved it) and the storage version at save time, so an in-place change
// between forward and backward is reported instead of silently giving wrong gradients.
#pragma once

#include "tensor/tensor.h"

namespace ponder::autograd {

class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t)  // NOLINT: saving reads naturally as assignment
      : data_(t.defined() ? t.detach() : Tensor()), version_(t.defined() ? t.version() : 0) {}

  // `op` names the node in the error when the tensor was released or modified.
  const Tensor& get(const char* op) const;
  bool defined() const { return data_.defined(); }
  void reset() { data_ = Tensor(); }

 private:
  Tensor data_;
  uint32_t version_ = 0;
};

}  // namespace ponder::autograd
