#include "autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "backend/kernels.h"

namespace ponder::autograd {
namespace {

thread_local bool grad_is_innermost = false;

// Marks the thread's innermost backward()/grad() for its lifetime.
class InnermostCall {
 public:
  explicit InnermostCall(bool is_grad) : previous_(grad_is_innermost) { grad_is_innermost = is_grad; }
  ~InnermostCall() { grad_is_innermost = previous_; }
  InnermostCall(const InnermostCall&) = delete;
  InnermostCall& operator=(const InnermostCall&) = delete;

 private:
  bool previous_;
};

struct ByPriority {
  bool operator()(const Node* a, const Node* b) const { return a->priority() < b->priority(); }
};

// One backward pass: the reachable graph, its pending gradient buffers, and what to capture.
class GraphTask {
 public:
  GraphTask(bool retain_graph, bool accumulate) : retain_graph_(retain_graph), accumulate_(accumulate) {}

  // Marks the gradient arriving at (node, input_nr) to be returned as result `index`.
  void capture(const Edge& edge, size_t index) { captures_[edge.node.get()].push_back({edge.input_nr, index}); }

  void run(const std::vector<Edge>& roots, TensorList root_grads, size_t num_results);
  TensorList take_results() { return std::move(results_); }

 private:
  struct Capture {
    uint32_t input_nr;
    size_t index;
  };

  // A tensor offered to a node to accumulate into (Node::accumulate_into), and whether it was taken
  // out of the edge's gradient buffer (and must go back there if the node ignores it).
  struct Offer {
    Tensor target;
    bool from_buffer = false;
  };

  void discover(const std::vector<Edge>& roots);
  void mark_needed(const std::vector<Edge>& roots);
  bool wanted(Node* target) const { return accumulate_ || needed_.count(target); }
  Tensor* buffered_slot(const Edge& edge);
  Offer offer_for(const Node& node, size_t i);
  void deliver(const Edge& edge, Tensor grad, const Node* from, Offer offer);
  void execute(Node* node);
  bool leads_to_capture(const Node* node) const {
    for (const Edge& e : node->next_edges())
      if (e.valid() && needed_.count(e.node.get())) return true;
    return false;
  }

  bool retain_graph_;
  bool accumulate_;  // backward(): run accumulators; grad(): capture instead and prune
  std::unordered_map<Node*, int> dependencies_;
  std::unordered_map<Node*, TensorList> buffers_;
  std::unordered_map<Node*, std::vector<Capture>> captures_;
  std::unordered_set<Node*> needed_;
  std::priority_queue<Node*, std::vector<Node*>, ByPriority> ready_;
  TensorList results_;
};

void GraphTask::discover(const std::vector<Edge>& roots) {
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (const Edge& r : roots) {
    if (seen.insert(r.node.get()).second) stack.push_back(r.node.get());
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      ++dependencies_[e.node.get()];
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }
}

// A node runs in grad() only if a captured slot is reachable from it (post-order DFS).
void GraphTask::mark_needed(const std::vector<Edge>& roots) {
  std::unordered_map<Node*, bool> memo;
  std::vector<std::pair<Node*, size_t>> stack;
  for (const Edge& r : roots) {
    if (memo.count(r.node.get())) continue;
    memo[r.node.get()] = false;
    stack.push_back({r.node.get(), 0});
    while (!stack.empty()) {
      auto& [n, child] = stack.back();
      const auto& edges = n->next_edges();
      if (child < edges.size()) {
        Node* c = edges[child++].node.get();
        if (c && !memo.count(c)) {
          memo[c] = false;
          stack.push_back({c, 0});
        }
        continue;
      }
      bool need = captures_.count(n) > 0;
      for (const Edge& e : edges)
        if (e.valid() && memo[e.node.get()]) need = true;
      memo[n] = need;
      if (need) needed_.insert(n);
      stack.pop_back();
    }
  }
}

namespace {

// The leaf's .grad when the gradient for `target` (a leaf accumulator) may be summed straight into
// it: only in backward(), only without GradHooks (they must see each backward's gradient alone),
// and only where a GEMM can write it (dense, the gradient's shape, device and dtype — or fp32
// under a bf16 leaf, the mixed-precision gradient buffer).
Tensor leaf_grad_target(Node* target) {
  auto* acc = dynamic_cast<AccumulateGrad*>(target);
  if (!acc) return {};
  const AutogradMeta& meta = acc->leaf().impl()->autograd_meta();
  const Tensor& g = meta.grad;
  const OutputInfo& info = target->outputs()[0];
  bool dtype_ok = g.defined() && (g.dtype() == info.dtype || (info.dtype == DType::bf16 && g.dtype() == DType::f32));
  if (!dtype_ok || !meta.hooks.empty() || !g.is_contiguous() || g.shape() != info.shape ||
      g.device() != info.device)
    return {};
  return g;
}

// Whether `slot` is where the leaf's gradient ends up anyway (its .grad), so sums go in place.
bool is_leaf_grad(Node* target, const Tensor& slot) {
  auto* acc = dynamic_cast<AccumulateGrad*>(target);
  return acc && slot.is_same(acc->leaf().grad());
}

// Input i of `node` shares its gradient slot with another input (e.g. x @ x): two in-place sums
// into one offered tensor inside one kernel call would race, so such slots get no offer.
bool slot_shared_within(const Node& node, size_t i) {
  const auto& edges = node.next_edges();
  for (size_t j = 0; j < edges.size(); ++j) {
    if (j != i && edges[j].node == edges[i].node && edges[j].input_nr == edges[i].input_nr) return true;
  }
  return false;
}

}  // namespace

Tensor* GraphTask::buffered_slot(const Edge& edge) {
  auto it = buffers_.find(edge.node.get());
  if (it == buffers_.end() || edge.input_nr >= it->second.size()) return nullptr;
  Tensor& slot = it->second[edge.input_nr];
  return slot.defined() ? &slot : nullptr;
}

// What input i of `node` may accumulate into: the buffered gradient of its slot when the engine
// alone holds it (or it is the leaf's .grad already), else the leaf's .grad when it qualifies.
GraphTask::Offer GraphTask::offer_for(const Node& node, size_t i) {
  const Edge& edge = node.next_edges()[i];
  if (!edge.valid() || !wanted(edge.node.get()) || slot_shared_within(node, i)) return {};
  if (Tensor* slot = buffered_slot(edge)) {
    if (!exclusively_owned(*slot) && !is_leaf_grad(edge.node.get(), *slot)) return {};
    return {std::move(*slot), true};
  }
  return {accumulate_ ? leaf_grad_target(edge.node.get()) : Tensor(), false};
}

// Sums `grad` into the edge's buffer. A gradient that is `offer.target` holds that sum already;
// an ignored offer taken from the buffer goes back first.
void GraphTask::deliver(const Edge& edge, Tensor grad, const Node* from, Offer offer) {
  Node* target = edge.node.get();
  const bool is_wanted = wanted(target);
  const bool summed = grad.defined() && grad.is_same(offer.target);
  if ((grad.defined() && is_wanted) || offer.from_buffer) {
    const OutputInfo& info = target->outputs().at(edge.input_nr);
    PONDER_CHECK(!grad.defined() || summed || (grad.shape() == info.shape && grad.dtype() == info.dtype &&
                                                grad.device() == info.device),
                 AutogradError, "autograd: ", from ? from->name() : "root",
                 " produced a gradient ", describe(grad), " for a tensor ", info.shape, ' ',
                 dtype_name(info.dtype), ' ', info.device, " (input of ", target->name(), ")");
    TensorList& buf = buffers_[target];
    if (buf.size() < target->outputs().size()) buf.resize(target->outputs().size());
    Tensor& slot = buf[edge.input_nr];
    if (offer.from_buffer && !summed) slot = std::move(offer.target);
    if (summed || !slot.defined()) {
      if (grad.defined()) slot = std::move(grad);
    } else if (grad.defined()) {
      // A slot nobody else sees (or the .grad it stands for) takes the sum in place.
      if (exclusively_owned(slot) || is_leaf_grad(target, slot)) {
        backend::add_into(slot, grad);
      } else {
        slot = backend::add(slot, grad);
      }
    }
  }
  if (--dependencies_[target] == 0 && is_wanted) ready_.push(target);
}

void GraphTask::execute(Node* node) {
  PONDER_CHECK(!node->released(), AutogradError, "autograd: trying to backward through ",
               node->name(), " a second time, after its saved tensors were freed; pass "
               "retain_graph=true to the first backward if you need this");
  TensorList grads = std::move(buffers_[node]);
  buffers_.erase(node);
  grads.resize(node->outputs().size());
  for (uint32_t i = 0; i < grads.size(); ++i) grads[i] = node->run_pre_hooks(i, std::move(grads[i]));

  if (auto it = captures_.find(node); it != captures_.end()) {
    for (const Capture& c : it->second) {
      Tensor& r = results_[c.index];
      const Tensor& g = grads[c.input_nr];
      if (g.defined()) r = r.defined() ? backend::add(r, g) : g;
    }
  }
  if (!accumulate_ && !leads_to_capture(node)) return;  // grad(): captured, nothing further
  bool any = false;
  for (const Tensor& g : grads) any = any || g.defined();

  const auto& edges = node->next_edges();
  std::vector<Offer> offers(edges.size());
  TensorList input_grads;
  if (any) {
    for (size_t i = 0; i < edges.size(); ++i) offers[i] = offer_for(*node, i);
    node->accumulate_into.resize(edges.size());
    for (size_t i = 0; i < edges.size(); ++i) node->accumulate_into[i] = offers[i].target;
    // Cleared however apply() ends: the node must not keep the buffers alive.
    struct ClearOffers {
      Node* node;
      ~ClearOffers() { node->accumulate_into.clear(); }
    } clear{node};
    input_grads = node->apply(std::move(grads));
  }
  if (!retain_graph_) node->mark_released();
  PONDER_CHECK(input_grads.empty() || input_grads.size() == edges.size(), AutogradError,
               "autograd: ", node->name(), " returned ", input_grads.size(),
               " gradients for ", edges.size(), " inputs");
  for (size_t i = 0; i < edges.size(); ++i) {
    if (!edges[i].valid()) continue;
    deliver(edges[i], input_grads.empty() ? Tensor() : std::move(input_grads[i]), node, std::move(offers[i]));
  }
}

void GraphTask::run(const std::vector<Edge>& roots, TensorList root_grads, size_t num_results) {
  NoGrad no_grad;  // gradient math is never itself recorded
  results_.resize(num_results);
  discover(roots);
  if (!accumulate_) mark_needed(roots);
  // Roots enter like edges from a virtual node, so shared roots sum their gradients.
  for (const Edge& r : roots) ++dependencies_[r.node.get()];
  for (size_t i = 0; i < roots.size(); ++i) deliver(roots[i], std::move(root_grads[i]), nullptr, Offer{});
  while (!ready_.empty()) {
    Node* n = ready_.top();
    ready_.pop();
    execute(n);
  }
}

// Root edges and their upstream gradients (ones for one-element roots).
std::pair<std::vector<Edge>, TensorList> root_edges(const TensorList& roots, const TensorList& grads,
                                                    const char* api) {
  PONDER_CHECK(grads.empty() || grads.size() == roots.size(), AutogradError, api, ": got ",
               roots.size(), " tensors but ", grads.size(), " gradients");
  std::vector<Edge> edges;
  TensorList root_grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    PONDER_CHECK(r.defined() && r.requires_grad(), AutogradError, api, ": tensor ", i,
                 " does not require grad and has no grad_fn");
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      PONDER_CHECK(r.numel() == 1, AutogradError, api,
                   ": an implicit gradient needs a one-element output, got shape ", r.shape(),
                   "; pass the upstream gradient");
      g = Tensor::empty(r.shape(), r.options());
      backend::fill(g, 1.0);
    }
    PONDER_CHECK(g.shape() == r.shape(), ShapeError, api, ": gradient shape ", g.shape(),
                 " differs from output shape ", r.shape());
    edges.push_back(gradient_edge(r));
    root_grads.push_back(std::move(g));
  }
  return {std::move(edges), std::move(root_grads)};
}

}  // namespace

void backward(const TensorList& roots, const TensorList& root_grads, bool retain_graph) {
  auto [edges, grads] = root_edges(roots, root_grads, "backward");
  InnermostCall call(/*is_grad=*/false);
  GraphTask task(retain_graph, /*accumulate=*/true);
  task.run(edges, std::move(grads), 0);
}

TensorList grad(const TensorList& outputs, const TensorList& inputs,
                const TensorList& grad_outputs, bool retain_graph, bool allow_unused) {
  auto [edges, grads] = root_edges(outputs, grad_outputs, "grad");
  InnermostCall call(/*is_grad=*/true);
  GraphTask task(retain_graph, /*accumulate=*/false);
  for (size_t i = 0; i < inputs.size(); ++i) {
    PONDER_CHECK(inputs[i].requires_grad(), AutogradError, "grad: input ", i,
                 " does not require grad");
    task.capture(gradient_edge(inputs[i]), i);
  }
  task.run(edges, std::move(grads), inputs.size());
  TensorList results = task.take_results();
  for (size_t i = 0; i < results.size(); ++i) {
    PONDER_CHECK(allow_unused || results[i].defined(), AutogradError, "grad: input ", i,
                 " was not used to compute the outputs (pass allow_unused=true to accept this)");
  }
  return results;
}

bool inside_grad() { return grad_is_innermost; }

}  // namespace ponder::autograd

namespace ponder {

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::backward({*this}, {grad}, retain_graph);
}

}  // namespace ponder
