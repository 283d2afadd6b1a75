#include "autograd/node.h"

#include <atomic>

#include "autograd/grad_mode.h"
#include "autograd/saved_tensor.h"
#include "backend/kernels.h"

namespace ponder::autograd {
namespace {
std::atomic<uint64_t> next_sequence_nr{0};

// Gradient contributions may be views of other buffers (expanded, sliced): a leaf's .grad must
// own dense memory of the dtype the leaf's .grad already has (fp32 for mixed-precision params).
Tensor owned_dense_copy(const Tensor& g, DType dtype) {
  Tensor out = Tensor::empty(g.shape(), {dtype, g.device()});
  backend::copy(out, g);
  return out;
}
}  // namespace

bool exclusively_owned(const Tensor& g) {
  return g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous() &&
         g.offset() == 0;
}

Node::Node() : sequence_nr_(next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

uint32_t Node::add_output(const Tensor& t) {
  outputs_.push_back({t.shape(), t.dtype(), t.device()});
  return static_cast<uint32_t>(outputs_.size() - 1);
}

Tensor Node::grad_or_zeros(const Tensor& grad, size_t i) const {
  if (grad.defined()) return grad;
  const OutputInfo& o = outputs_.at(i);
  Tensor z = Tensor::empty(o.shape, {o.dtype, o.device});
  backend::fill(z, 0.0);
  return z;
}

Tensor Node::accumulation_target(size_t i) const {
  return i < accumulate_into.size() ? accumulate_into[i] : Tensor();
}

void Node::add_pre_hook(uint32_t output_nr, GradHook hook) {
  pre_hooks_.emplace_back(output_nr, std::move(hook));
}

Tensor Node::run_pre_hooks(uint32_t output_nr, Tensor grad) const {
  for (const auto& [nr, hook] : pre_hooks_) {
    if (nr != output_nr || !grad.defined()) continue;
    Tensor replaced = hook(grad);
    if (replaced.defined()) grad = replaced;
  }
  return grad;
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {
  add_output(Tensor(leaf_));
}

TensorList AccumulateGrad::apply(TensorList&& grads) {
  Tensor g = std::move(grads[0]);  // moved: a sole owner may become the .grad itself
  if (!g.defined()) return {};
  AutogradMeta& meta = leaf_->autograd_meta();
  if (g.is_same(meta.grad)) {
    // Already summed into .grad in place; offered only to leaves without GradHooks.
    meta.grad.bump_version();
  } else {
    for (const GradHook& hook : meta.hooks) {
      Tensor replaced = hook(g);
      if (replaced.defined()) g = replaced;
    }
    if (!meta.grad.defined()) {
      meta.grad = exclusively_owned(g) ? g : owned_dense_copy(g, g.dtype());
    } else {
      backend::add_into(meta.grad, g);
      meta.grad.bump_version();
    }
  }
  Tensor leaf(leaf_);
  for (const PostAccumulateHook& hook : meta.post_accumulate_hooks) hook(leaf);
  return {};
}

Edge gradient_edge(const Tensor& t) {
  if (!t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.output_nr()};
  AutogradMeta& meta = t.impl()->autograd_meta();
  std::shared_ptr<Node> acc = meta.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    meta.grad_accumulator = acc;
  }
  return {acc, 0};
}

bool needs_grad(const std::vector<const Tensor*>& inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const TensorList& inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void set_history(const Tensor& out, const std::shared_ptr<Node>& node) {
  AutogradMeta& meta = out.impl()->autograd_meta();
  meta.requires_grad = true;
  meta.grad_fn = node;
  meta.output_nr = node->add_output(out);
}

}  // namespace ponder::autograd

namespace ponder {

void Tensor::register_hook(GradHook hook) const {
  PONDER_CHECK(requires_grad(), AutogradError,
               "register_hook: the tensor does not require grad, so no gradient will reach it");
  if (is_leaf()) {
    impl_->autograd_meta().hooks.push_back(std::move(hook));
  } else {
    grad_fn()->add_pre_hook(output_nr(), std::move(hook));
  }
}

}  // namespace ponder
