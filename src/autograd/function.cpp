#include "autograd/function.h"

#include "autograd/grad_mode.h"

namespace ponder::autograd {

void Function::save_for_backward(const TensorList& tensors) {
  saved_.assign(tensors.begin(), tensors.end());
}

const Tensor& Function::saved(size_t i) const { return saved_.at(i).get(name()); }

TensorList Function::apply(TensorList&& grad_outputs) {
  for (size_t i = 0; i < grad_outputs.size(); ++i) grad_outputs[i] = grad_or_zeros(grad_outputs[i], i);
  TensorList grads = backward(grad_outputs);
  PONDER_CHECK(grads.size() == next_edges().size(), AutogradError, name(), ".backward returned ",
               grads.size(), " gradients for ", next_edges().size(), " inputs");
  return grads;
}

TensorList call(const std::shared_ptr<Function>& fn, const TensorList& inputs) {
  PONDER_CHECK(!fn->called_, AutogradError, fn->name(),
               ": a Function object records one call; create a new one per call");
  fn->called_ = true;
  bool record = needs_grad(inputs) || (is_grad_enabled() && fn->always_record());
  TensorList outputs;
  {
    NoGrad no_grad;
    outputs = fn->forward(inputs);
  }
  if (!record) return outputs;
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(t.defined() ? gradient_edge(t) : Edge{});
  fn->set_next_edges(std::move(edges));
  for (Tensor& out : outputs) {
    for (const Tensor& in : inputs) {
      if (out.is_same(in)) out = out.detach();  // never overwrite an input's history
    }
    if (out.is_floating_point()) set_history(out, fn);
  }
  return outputs;
}

}  // namespace ponder::autograd
