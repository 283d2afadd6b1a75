#include "dist/zero.h"

#include <algorithm>
#include <set>
#include <string>

#include "autograd/grad_mode.h"
#include "backend/kernels.h"

namespace ponder::dist {

ZeroShards::ZeroShards(const TensorList& params, Communicator& comm) : comm_(&comm), params_(params) {
  // Greedy: each parameter, in order, to the rank holding the fewest elements so far (every rank
  // computes the same assignment).
  std::vector<int64_t> load(size_t(comm.world_size()), 0);
  for (const Tensor& p : params) {
    const int r = int(std::min_element(load.begin(), load.end()) - load.begin());
    load[size_t(r)] += p.numel();
    owner_[p.impl()] = r;
  }
}

int ZeroShards::owner(const Tensor& param) const {
  auto it = owner_.find(param.impl());
  PONDER_CHECK(it != owner_.end(), ValueError, "ZeRO-1: ", describe(param), " is not a sharded parameter");
  return it->second;
}

void ZeroShards::step(optim::Optimizer& optimizer) {
  for (const Tensor& p : params_)
    if (!owns(p)) p.set_grad({});
  optimizer.step();
  NoGrad no_grad;
  std::vector<WorkHandle> works;
  for (const Tensor& p : params_) works.push_back(comm_->broadcast_async(p, owner(p)));
  for (WorkHandle& w : works) w->wait();
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
