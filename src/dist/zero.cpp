#include "dist/zero.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

#include "autograd/grad_mode.h"
#include "backend/kernels.h"

namespace ponder::dist {
namespace {

// `param`'s elements at `offset` of a flat buffer.
Tensor view_of(const Tensor& flat, const Tensor& param, int64_t offset) {
  return flat.as_strided(param.shape(), contiguous_strides(param.shape()), flat.offset() + offset);
}

}  // namespace

ZeroShards::ZeroShards(const TensorList& params, Communicator& comm)
    : comm_(&comm), layout_(optim::GradBuffer::packed_layout(params)) {
  const int64_t world = comm.world_size(), total = layout_.numel;
  const TensorList& trainable = layout_.params;
  // Contiguous groups: each parameter goes to the rank whose equal share of the packed buffer
  // holds its middle (every rank computes the same assignment).
  std::vector<int> owners;
  std::vector<int64_t> load(size_t(world), 0);
  for (size_t i = 0; i < trainable.size(); ++i) {
    const int64_t size = optim::GradBuffer::aligned(trainable[i].numel());
    owners.push_back(total == 0 ? 0 : int(std::min(world - 1, (2 * layout_.offsets[i] + size) * world / (2 * total))));
    load[size_t(owners.back())] += size;
    owner_[trainable[i].impl()] = owners.back();
    if (owners.back() == comm.rank()) owned_.push_back(trainable[i]);
  }
  region_ = *std::max_element(load.begin(), load.end());
  std::vector<int64_t> next(static_cast<size_t>(world));  // where each region's next gradient goes
  for (int64_t r = 0; r < world; ++r) next[size_t(r)] = r * region_;
  for (size_t i = 0; i < trainable.size(); ++i) {
    layout_.offsets[i] = next[size_t(owners[i])];
    next[size_t(owners[i])] += optim::GradBuffer::aligned(trainable[i].numel());
  }
  layout_.numel = world * region_;
  if (trainable.empty()) return;
  const Tensor& first = trainable.front();
  for (const Tensor& p : trainable)
    PONDER_CHECK(p.dtype() == first.dtype(), DTypeError, "ZeRO-1: parameter ", describe(p), " is ", dtype_name(p.dtype()),
                 " but ", describe(first), " is ", dtype_name(first.dtype()), "; sharded parameters share one dtype");
  grad_shard_ = Tensor::empty({region_}, {DType::f32, first.device()});
  param_shard_ = Tensor::empty({region_}, {first.dtype(), first.device()});
  param_flat_ = Tensor::empty({layout_.numel}, {first.dtype(), first.device()});
  // The padding is gathered too: keep it defined.
  backend::fill(param_shard_, 0.0);
}

int ZeroShards::owner(const Tensor& param) const {
  auto it = owner_.find(param.impl());
  PONDER_CHECK(it != owner_.end(), ValueError, "ZeRO-1: ", describe(param), " is not a sharded parameter");
  return it->second;
}

double ZeroShards::reduce_gradients(const optim::GradBuffer& grads) {
  const Tensor& flat = grads.flat();
  PONDER_CHECK(flat.numel() == layout_.numel && flat.dtype() == DType::f32, ValueError,
               "ZeRO-1: the gradient buffer is not laid out for sharding (", flat.numel(), " elements, expected ",
               layout_.numel, " fp32)");
  if (region_ == 0) return 0.0;
  WorkHandle work = comm_->reduce_scatter_async(flat, grad_shard_, ReduceOp::sum);
  const auto start = std::chrono::steady_clock::now();
  work->wait();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  backend::copy(flat.narrow(0, comm_->rank() * region_, region_), grad_shard_);
  flat.bump_version();
  return waited;
}

void ZeroShards::step(optim::Optimizer& optimizer, const Tensor& grad_scale) {
  for (const Tensor& p : layout_.params)
    if (!owns(p)) p.set_grad({});
  optimizer.step(grad_scale);
  if (region_ == 0) return;
  NoGrad no_grad;
  const int64_t base = comm_->rank() * region_;
  for (size_t i = 0; i < layout_.params.size(); ++i)
    if (owns(layout_.params[i])) backend::copy(view_of(param_shard_, layout_.params[i], layout_.offsets[i] - base), layout_.params[i]);
  comm_->all_gather(param_shard_, param_flat_);
  for (size_t i = 0; i < layout_.params.size(); ++i) {
    const Tensor& p = layout_.params[i];
    if (owns(p)) continue;
    backend::copy(p, view_of(param_flat_, p, layout_.offsets[i]));
    p.bump_version();
  }
}

Tensor ZeroShards::master(const Tensor& param, const optim::Optimizer& optimizer) {
  // Only bf16 parameters have a separate master; the others are their own, on every rank after
  // step(). Frozen parameters are not sharded.
  if (param.dtype() != DType::bf16 || !owner_.count(param.impl())) return param.to(DType::f32);
  Tensor m = Tensor::empty(param.shape(), {DType::f32, param.device()});
  if (owns(param)) backend::copy(m, optimizer.master_of(param));
  comm_->broadcast(m, owner(param));
  return m;
}

std::map<std::string, Tensor> ZeroShards::own_state(const optim::Optimizer& optimizer,
                                                    const std::vector<std::map<std::string, Tensor>>& shards) const {
  std::set<std::string> prefixes;  // "<group>.<index>." of this rank's parameters (optimizer.h)
  for (const optim::ParamGroup& g : optimizer.groups())
    for (size_t i = 0; i < g.params.size(); ++i)
      if (owns(g.params[i])) prefixes.insert(g.name + "." + std::to_string(i) + ".");
  std::map<std::string, Tensor> out;
  for (const auto& shard : shards) {
    for (const auto& [name, t] : shard) {
      // (An init-capture: clang 14, which the fuzz build uses, cannot capture a structured binding.)
      const bool mine = name == "step" ||  // the optimizer's step count, the same in every shard
                        std::any_of(prefixes.begin(), prefixes.end(), [&n = name](const std::string& p) { return n.rfind(p, 0) == 0; });
      if (mine) out.emplace(name, t);
    }
  }
  return out;
}

}  // namespace ponder::dist
