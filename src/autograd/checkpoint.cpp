#include "autograd/checkpoint.h"

#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/grad_mode.h"

namespace ponder::autograd {
namespace {

thread_local bool checkpoints_enabled = true;

class CheckpointFunction final : public Function {
 public:
  CheckpointFunction(RegionFn fn, std::vector<Generator*> generators)
      : fn_(std::move(fn)), generators_(std::move(generators)) {}

  const char* name() const override { return "checkpoint"; }
  bool always_record() const override { return true; }

  TensorList forward(const TensorList& inputs) override {
    for (Generator* g : generators_) states_.push_back(g->state());
    save_for_backward(inputs);
    return fn_(inputs);
  }

  // Recompute the region with grad on, then differentiate the fresh graph. Under backward(),
  // parameters used inside receive their gradients directly; under grad(), which leaves every
  // .grad alone, only the inputs' gradients are formed. The inputs' gradients are returned.
  TensorList backward(const TensorList& grad_outputs) override {
    TensorList inputs;
    for (size_t i = 0; i < num_saved(); ++i) {
      Tensor x = saved(i).defined() ? saved(i).detach() : Tensor();
      if (x.defined() && needs_input_grad(i)) x.set_requires_grad(true);
      inputs.push_back(x);
    }
    TensorList outputs = recompute(inputs);
    TensorList roots, grads;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!outputs[i].requires_grad()) continue;
      roots.push_back(outputs[i]);
      grads.push_back(grad_outputs[i]);
    }
    if (roots.empty()) return TensorList(inputs.size());
    if (inside_grad()) return input_gradients(roots, grads, inputs);
    // retain_graph: the fresh graph dies with this call anyway, but a non-retaining backward would
    // also release the parameters' gradient accumulators, which the outer graph (and every other
    // region reaching the same parameters) still needs.
    autograd::backward(roots, grads, /*retain_graph=*/true);
    TensorList input_grads;
    for (const Tensor& x : inputs) input_grads.push_back(x.defined() ? x.grad() : Tensor());
    return input_grads;
  }

 private:
  // The gradients of the inputs that require one, by a grad() call of their own.
  static TensorList input_gradients(const TensorList& roots, const TensorList& grads, const TensorList& inputs) {
    TensorList wanted;
    for (const Tensor& x : inputs)
      if (x.defined() && x.requires_grad()) wanted.push_back(x);
    TensorList found = wanted.empty() ? TensorList() : autograd::grad(roots, wanted, grads, false, /*allow_unused=*/true);
    TensorList input_grads;
    size_t next = 0;
    for (const Tensor& x : inputs) input_grads.push_back(x.defined() && x.requires_grad() ? found[next++] : Tensor());
    return input_grads;
  }

  TensorList recompute(const TensorList& inputs) {
    std::vector<GeneratorState> now;
    for (size_t i = 0; i < generators_.size(); ++i) {
      now.push_back(generators_[i]->state());
      generators_[i]->set_state(states_[i]);
    }
    TensorList outputs;
    {
      EnableGrad grad;
      outputs = fn_(inputs);
    }
    for (size_t i = 0; i < generators_.size(); ++i) generators_[i]->set_state(now[i]);
    return outputs;
  }

  RegionFn fn_;
  std::vector<Generator*> generators_;
  std::vector<GeneratorState> states_;
};

}  // namespace

NoCheckpoint::NoCheckpoint() : previous_(checkpoints_enabled) { checkpoints_enabled = false; }
NoCheckpoint::~NoCheckpoint() { checkpoints_enabled = previous_; }

TensorList checkpoint(RegionFn fn, const TensorList& inputs, std::vector<Generator*> generators) {
  if (!checkpoints_enabled) return fn(inputs);
  return call(std::make_shared<CheckpointFunction>(std::move(fn), std::move(generators)), inputs);
}

}  // namespace ponder::autograd
