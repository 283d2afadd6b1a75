// ZeRO-1: the optimizer state and fp32 masters sharded across ranks, a parameter at a time (so
// Muon still sees whole matrices). Each parameter has one owner, chosen to balance elements over
// the ranks; gradients are summed on every rank (GradSync), each rank updates only the parameters
// it owns — the optimizer creates state only for parameters that have a gradient, so the others
// never get any — and every parameter is then broadcast from its owner.
//
// Checkpoints keep one optimizer file per rank with the optimizer's own (global) entry names, so a
// run resumes on any number of ranks: each rank loads the entries of the parameters it now owns.
#pragma once

#include <map>
#include <memory>

#include "dist/communicator.h"
#include "optim/optimizer.h"

namespace ponder::dist {

class ZeroShards {
 public:
  ZeroShards(const TensorList& params, Communicator& comm);

  int owner(const Tensor& param) const;
  bool owns(const Tensor& param) const { return owner(param) == comm_->rank(); }

  // The optimizer's update of this rank's parameters, then every parameter from its owner.
  // Gradients of the other parameters are detached for the step (GradBuffer::zero re-attaches).
  void step(optim::Optimizer& optimizer);
  // The fp32 master of `param` on every rank (a collective for a bf16 parameter, whose master
  // lives on its owner only).
  Tensor master(const Tensor& param, const optim::Optimizer& optimizer);
  // The entries of `shards` (the per-rank files of a checkpoint, from any world size) that belong
  // to this rank's parameters, for Optimizer::load_state.
  std::map<std::string, Tensor> own_state(const optim::Optimizer& optimizer,
                                          const std::vector<std::map<std::string, Tensor>>& shards) const;

 private:
  Communicator* comm_;
  std::map<const void*, int> owner_;  // by TensorImpl
  TensorList params_;
};

}  // namespace ponder::dist
