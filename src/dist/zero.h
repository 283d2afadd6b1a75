// ZeRO-1: the optimizer state and fp32 masters sharded across ranks, a parameter at a time (so
// Muon still sees whole matrices and the optimizer's per-parameter state and checkpoint entries
// are unchanged).
//
// Ownership: the trainable parameters, in order, are cut into one contiguous group per rank,
// balanced by elements. The flat gradient buffer (layout(), for GradBuffer) puts rank r's group in
// region r, [r·R, (r+1)·R), every region padded to the largest (R elements). A step is then:
//   1. backward accumulates this rank's gradients into the whole buffer, nothing sent;
//   2. reduce_gradients(): one reduce-scatter of the buffer leaves in region `rank` the sum over
//      the ranks of exactly this rank's parameters' gradients (the other regions keep this
//      rank's partial sums: only owned() gradients are complete);
//   3. step(): the optimizer updates the owned parameters only (it creates state only for
//      parameters with a gradient, so the others never get any), and one all-gather of a buffer of
//      the same layout in the parameters' working dtype (bf16 on the GPU) gives every rank every
//      parameter.
// Gradients are never all-reduced in full. The reduce-scatter runs after backward rather than per
// bucket during it: a reduce-scatter needs an equal slice of every rank's region, and backward
// completes region 0 (the first parameters) last, so no slice is ready before the very end.
// (Interleaving ownership per bucket would let buckets go early, but whole matrices per rank and
// bucket would pad some buckets to many times their size.)
//
// Checkpoints keep one optimizer file per rank with the optimizer's own (global) entry names, so a
// run resumes on any number of ranks: each rank loads the entries of the parameters it now owns.
#pragma once

#include <map>
#include <memory>

#include "dist/communicator.h"
#include "optim/grad_buffer.h"
#include "optim/optimizer.h"

namespace ponder::dist {

class ZeroShards {
 public:
  // The parameters that require grad are sharded; they must share one device and dtype.
  ZeroShards(const TensorList& params, Communicator& comm);

  // Where the gradient buffer must put each gradient (GradBuffer(layout())).
  const optim::FlatLayout& layout() const { return layout_; }
  // Elements per rank region (the padded size of the largest group).
  int64_t region() const { return region_; }
  int owner(const Tensor& param) const;
  bool owns(const Tensor& param) const { return owner(param) == comm_->rank(); }
  // This rank's parameters, in order.
  const TensorList& owned() const { return owned_; }

  // Sums this rank's parameters' gradients over the ranks (a reduce-scatter of `grads`, which
  // must be laid out by layout()). Returns the seconds spent waiting for it.
  double reduce_gradients(const optim::GradBuffer& grads);
  // The optimizer's update of this rank's parameters, then every parameter from its owner.
  // Gradients of the other parameters are detached for the step (GradBuffer::zero re-attaches).
  // `grad_scale` as Optimizer::step's (the clip factor).
  void step(optim::Optimizer& optimizer, const Tensor& grad_scale = {});
  // The fp32 master of `param` on every rank (a collective for a bf16 parameter, whose master
  // lives on its owner only).
  Tensor master(const Tensor& param, const optim::Optimizer& optimizer);
  // The entries of `shards` (the per-rank files of a checkpoint, from any world size) that belong
  // to this rank's parameters, for Optimizer::load_state.
  std::map<std::string, Tensor> own_state(const optim::Optimizer& optimizer,
                                          const std::vector<std::map<std::string, Tensor>>& shards) const;

 private:
  Communicator* comm_;
  optim::FlatLayout layout_;
  int64_t region_ = 0;
  std::map<const void*, int> owner_;  // by TensorImpl
  TensorList owned_;
  Tensor grad_shard_;   // [R] fp32: the reduce-scatter's output
  Tensor param_shard_;  // [R] working dtype: this rank's parameters, the all-gather's input
  Tensor param_flat_;   // [world·R] working dtype: every rank's parameters, its output
};

}  // namespace ponder::dist
