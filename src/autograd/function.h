// Custom differentiable functions with a hand-written backward (fused kernels, implicit
// gradients). Subclass Function, then call it:
//
//   struct Square : Function {
//     const char* name() const override { return "Square"; }
//     TensorList forward(const TensorList& in) override { save_for_backward({in[0]}); return {in[0] * in[0]}; }
//     TensorList backward(const TensorList& g) override { return {g[0] * saved(0) * 2.0}; }
//   };
//   Tensor y = call(std::make_shared<Square>(), {x})[0];
//
// forward runs with grad mode off; backward receives one gradient per output (zeros where an
// output got none) and returns one per input (undefined for inputs without a gradient). A
// backward may itself run autograd (grad(), backward()) on graphs it kept, e.g. to solve an
// adjoint system by repeated vector-Jacobian products.
#pragma once

#include <vector>

#include "autograd/node.h"
#include "autograd/saved_tensor.h"

namespace ponder::autograd {

class Function : public Node {
 public:
  virtual TensorList forward(const TensorList& inputs) = 0;
  virtual TensorList backward(const TensorList& grad_outputs) = 0;

  // Record the node even when no input requires grad (e.g. checkpointed regions whose
  // parameters are reached only inside the function).
  virtual bool always_record() const { return false; }

 protected:
  void save_for_backward(const TensorList& tensors);
  const Tensor& saved(size_t i) const;
  size_t num_saved() const { return saved_.size(); }

 private:
  TensorList apply(TensorList&& grad_outputs) final;
  void release_saved() override { saved_.clear(); }
  friend TensorList call(const std::shared_ptr<Function>& fn, const TensorList& inputs);

  std::vector<SavedTensor> saved_;
  bool called_ = false;
};

// Runs fn->forward(inputs) and, when a gradient is needed, records fn as the outputs' grad_fn.
TensorList call(const std::shared_ptr<Function>& fn, const TensorList& inputs);

}  // namespace ponder::autograd
