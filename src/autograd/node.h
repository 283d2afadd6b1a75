// The tape: every recorded op is a Node whose apply() maps the gradients of its outputs to the
// gradients of its inputs. Edges point from a node to the nodes that produced its inputs.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "tensor/tensor.h"

namespace ponder::autograd {

class Node;

// Input `input_nr` of `node` (for a producing op: the gradient slot of its output input_nr).
struct Edge {
  std::shared_ptr<Node> node;
  uint32_t input_nr = 0;
  bool valid() const { return node != nullptr; }
};

// What a node needs to know about each output: to check incoming gradients and to make zeros.
struct OutputInfo {
  Shape shape;
  DType dtype;
  Device device;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  virtual const char* name() const = 0;
  // Gradients of the outputs (undefined = zero) -> gradients of the inputs, one per next edge
  // (undefined = no contribution). Runs with grad mode off.
  virtual TensorList apply(TensorList&& grad_outputs) = 0;
  // Frees tensors kept for backward; called once apply() has run without retain_graph.
  virtual void release_saved() {}

  // Set by the engine for the duration of apply(), one per next edge (undefined = none): the tensor
  // input i's gradient would otherwise be summed with afterwards — the gradient already buffered
  // for that slot, or the leaf's .grad. A node may add its gradient into it in place (a GEMM does
  // so for free, beta = 1) and return that very tensor; the engine then knows the sum is done.
  // This saves a temporary and a full read-read-write pass per shared use: weights used several
  // times, inputs feeding several projections, micro-batches accumulating into .grad. Nodes that
  // ignore it work unchanged. It is dense and has the gradient's shape and device; its dtype is
  // the gradient's, or f32 for a bf16 leaf whose .grad is fp32.
  TensorList accumulate_into;
  // accumulate_into[i] if offered, else undefined.
  Tensor accumulation_target(size_t i) const;

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  void set_next_edges(std::vector<Edge> edges) { next_edges_ = std::move(edges); }
  // Whether input i receives a gradient (it, or something it came from, requires grad).
  bool needs_input_grad(size_t i) const { return i < next_edges_.size() && next_edges_[i].valid(); }

  uint32_t add_output(const Tensor& t);
  const std::vector<OutputInfo>& outputs() const { return outputs_; }
  // grad if defined, else zeros shaped like output i.
  Tensor grad_or_zeros(const Tensor& grad, size_t i) const;

  // Ready nodes run in decreasing priority: later-recorded ops first (depth-first through the
  // most recent work, which frees activations early); gradient accumulators first of all.
  virtual uint64_t priority() const { return sequence_nr_; }

  void add_pre_hook(uint32_t output_nr, GradHook hook);
  // Applies hooks registered on output `output_nr`'s gradient.
  Tensor run_pre_hooks(uint32_t output_nr, Tensor grad) const;

  bool released() const { return released_; }
  void mark_released() {
    release_saved();
    released_ = true;
  }

 private:
  std::vector<Edge> next_edges_;
  std::vector<OutputInfo> outputs_;
  std::vector<std::pair<uint32_t, GradHook>> pre_hooks_;
  uint64_t sequence_nr_;
  bool released_ = false;
};

// Adds gradients into a leaf's .grad, then runs its post-accumulate hooks. A gradient that is the
// .grad itself was accumulated there already by the node that produced it (Node::accumulate_into).
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  const char* name() const override { return "AccumulateGrad"; }
  TensorList apply(TensorList&& grads) override;
  uint64_t priority() const override { return std::numeric_limits<uint64_t>::max(); }
  Tensor leaf() const { return Tensor(leaf_); }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

// True when nothing but `g` refers to its memory: no other handle, no view, dense from offset 0.
// Only such a gradient may be written in place by the engine or kept as a leaf's .grad.
bool exclusively_owned(const Tensor& g);

// The edge through which a gradient reaches `t`: its grad_fn slot, or its leaf accumulator.
// Invalid when t does not require grad.
Edge gradient_edge(const Tensor& t);

// True when grad mode is on and any of the tensors requires grad.
bool needs_grad(const std::vector<const Tensor*>& inputs);
bool needs_grad(const TensorList& inputs);

// Records `node` as the creator of `out`.
void set_history(const Tensor& out, const std::shared_ptr<Node>& node);

// Creates a node of type N wired to `inputs`, or returns null when no gradient is needed.
// The caller then records the outputs with set_history and saves what backward needs.
template <class N, class... Args>
std::shared_ptr<N> make_node(const std::vector<const Tensor*>& inputs, Args&&... args) {
  if (!needs_grad(inputs)) return nullptr;
  auto node = std::make_shared<N>(std::forward<Args>(args)...);
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs) edges.push_back(t->defined() ? gradient_edge(*t) : Edge{});
  node->set_next_edges(std::move(edges));
  return node;
}
template <class N, class... Args>
std::shared_ptr<N> make_node(std::initializer_list<const Tensor*> inputs, Args&&... args) {
  return make_node<N>(std::vector<const Tensor*>(inputs), std::forward<Args>(args)...);
}

}  // namespace ponder::autograd
