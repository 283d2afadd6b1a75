// Optimizers update parameters in place from their .grad, group by group.
//
// Mixed precision: a bf16 parameter gets an fp32 master copy (created at its first update, or
// loaded with load_state); the update runs on the master and rounds it back into the parameter in
// the same kernel pass. f32 and f64 parameters are their own master. State buffers (moments,
// momentum) have the master's dtype.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"
#include "tensor/tensor.h"

namespace ponder::optim {

struct ParamGroup {
  std::string name;  // prefixes this group's entries in state()
  TensorList params;
  double weight_decay = 0.0;
  double lr_scale = 1.0;  // the group's learning rate is lr() * lr_scale
};

// Two groups, "decay" (tensors with >= 2 dims, weight_decay) and "no_decay" (1-D and scalar
// tensors: norm weights, biases, gates); with decay_1d every tensor decays. Frozen parameters
// (requires_grad false) are left out, and so are empty groups.
std::vector<ParamGroup> decay_groups(const nn::NamedTensors& params, double weight_decay, bool decay_1d = false);

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; parameters without one are skipped (their
  // state, including the per-parameter update count used for bias correction, stays as it is).
  // `grad_scale` (one f64 element on the parameters' device, e.g. GradClip::factor; undefined: none)
  // multiplies every gradient. Optimizers whose kernels take it multiply as they read each gradient
  // and leave the gradients as they are; the others scale the gradients in place first (one pass
  // each, and the host reads the factor).
  void step(const Tensor& grad_scale = {});
  // A gradient that shares its storage with other tensors (a GradBuffer view) is filled with zeros
  // and kept; any other gradient is released, so the next backward allocates it afresh.
  void zero_grad();
  // The base learning rate; schedules call set_lr(peak * schedule(steps())) before each step().
  void set_lr(double lr);
  double lr() const { return lr_; }
  // Number of step() calls so far.
  int64_t steps() const { return steps_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // The fp32 master of a bf16 parameter once it has one, else the parameter itself.
  Tensor master_of(const Tensor& param) const;

  // Every state tensor by a stable name: "step" (steps()), and for each parameter i of group g
  // that has been updated "<g>.<i>.step" (its update count), "<g>.<i>.master" (bf16 parameters)
  // and one entry per state buffer ("<g>.<i>.exp_avg", ...). The tensors alias the live state.
  virtual nn::NamedTensors state() const;
  // Replaces the whole state with a copy of `state` (as written by state()); a parameter with no
  // entries starts afresh. Unknown names, partial entries and shape mismatches are errors, and
  // leave the optimizer unchanged.
  virtual void load_state(const std::map<std::string, Tensor>& state);

 protected:
  struct Slot {
    Tensor param;
    Tensor master;                // undefined when the parameter is its own master
    std::vector<Tensor> buffers;  // named by its group's buffer names
    int64_t updates = 0;          // this parameter's update count (Adam's bias correction t)
  };
  using UpdateFn = std::function<void(Slot& slot, const ParamGroup& group, double lr)>;
  // A parameter due for an update in this step.
  struct Due {
    Slot& slot;
    const ParamGroup& group;
    double lr;
  };
  using BatchUpdateFn = std::function<void(const std::vector<Due>& due)>;

  // step() itself; `grad_scale` is undefined unless folds_grad_scale().
  virtual void update_parameters(const Tensor& grad_scale) = 0;
  // Whether update_parameters multiplies the gradients by grad_scale as its kernels read them.
  virtual bool folds_grad_scale() const { return false; }

  // `buffer_names` are the per-parameter state buffers the update rule keeps (zero-initialised).
  Optimizer(std::vector<ParamGroup> groups, double lr, std::vector<std::string> buffer_names);
  // As above, with one list of buffer names per group (in group order), for optimizers that
  // apply a different rule to each group and keep only the buffers that rule needs.
  Optimizer(std::vector<ParamGroup> groups, double lr, std::vector<std::vector<std::string>> group_buffer_names);
  // Calls `update` for every parameter with a gradient, after creating its state on first use and
  // counting its update; then counts the step.
  void update_all(const UpdateFn& update);
  // The same, but `update` gets all such parameters of one device at once (one call per device, in
  // order of first appearance), so a fused kernel can update them in one launch.
  void update_batched(const BatchUpdateFn& update);

 private:
  void init_state(Slot& slot, const std::vector<std::string>& buffer_names) const;

  std::vector<ParamGroup> groups_;
  std::vector<std::vector<Slot>> slots_;  // slots_[g][i] belongs to groups_[g].params[i]
  std::vector<std::vector<std::string>> buffer_names_;  // buffer_names_[g] for groups_[g]
  double lr_ = 0.0;
  int64_t steps_ = 0;
};

}  // namespace ponder::optim
