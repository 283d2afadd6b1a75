#include "optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "backend/kernels.h"
#include "ops/creation.h"
#include "optim/clip.h"

namespace ponder::optim {
namespace {

// bf16 carries too few mantissa bits to accumulate small updates: it needs an fp32 master.
bool needs_master(const Tensor& param) { return param.dtype() == DType::bf16; }

DType state_dtype(const Tensor& param) { return param.dtype() == DType::f64 ? DType::f64 : DType::f32; }

std::string state_key(const ParamGroup& group, size_t index, const std::string& what) {
  return group.name + "." + std::to_string(index) + "." + what;
}

Tensor count_tensor(int64_t count) { return tensor({double(count)}, {}, {.dtype = DType::i64}); }

int64_t read_count(const Tensor& t, const std::string& name) {
  PONDER_CHECK(t.numel() == 1, ShapeError, "load_state: '", name, "' must hold one count, got ", describe(t));
  const double count = t.item<double>();
  PONDER_CHECK(count >= 0 && count == std::floor(count), ValueError, "load_state: '", name,
               "' must be a non-negative integer, got ", count);
  return static_cast<int64_t>(count);
}

// A copy of `src` in the state dtype and on the device of `param`.
Tensor state_copy(const Tensor& src, const Tensor& param, const std::string& name) {
  PONDER_CHECK(src.shape() == param.shape(), ShapeError, "load_state: '", name, "' has shape ", src.shape(),
               ", the parameter has ", param.shape());
  Tensor out = Tensor::empty(param.shape(), {state_dtype(param), param.device()});
  backend::copy(out, src);
  return out;
}

void check_group(const ParamGroup& group, std::set<std::string>& names, std::set<TensorImpl*>& seen) {
  PONDER_CHECK(!group.name.empty() && names.insert(group.name).second, ValueError,
               "optimizer: parameter group names must be non-empty and distinct, got '", group.name, "'");
  PONDER_CHECK(group.weight_decay >= 0 && group.lr_scale >= 0, ValueError, "optimizer: group '", group.name,
               "' has weight_decay ", group.weight_decay, " and lr_scale ", group.lr_scale,
               "; both must be non-negative");
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    PONDER_CHECK(p.defined(), ValueError, "optimizer: parameter ", group.name, ".", i, " is undefined");
    PONDER_CHECK(p.is_floating_point(), DTypeError, "optimizer: parameter ", group.name, ".", i, " ", describe(p),
                 " is not floating point");
    PONDER_CHECK(p.is_contiguous(), ShapeError, "optimizer: parameter ", group.name, ".", i, " ", describe(p),
                 " is not contiguous (updates are written in place)");
    PONDER_CHECK(seen.insert(p.impl()).second, ValueError, "optimizer: parameter ", group.name, ".", i,
                 " is listed more than once");
  }
}

}  // namespace

std::vector<ParamGroup> decay_groups(const nn::NamedTensors& params, double weight_decay, bool decay_1d) {
  ParamGroup decay{"decay", {}, weight_decay}, no_decay{"no_decay", {}, 0.0};
  for (const auto& named : params) {
    const Tensor& p = named.second;
    if (!p.requires_grad()) continue;
    (p.dim() >= 2 || decay_1d ? decay : no_decay).params.push_back(p);
  }
  std::vector<ParamGroup> groups;
  for (ParamGroup* g : {&decay, &no_decay})
    if (!g->params.empty()) groups.push_back(std::move(*g));
  return groups;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, std::vector<std::string> buffer_names)
    : Optimizer(groups, lr, std::vector<std::vector<std::string>>(groups.size(), buffer_names)) {}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr,
                     std::vector<std::vector<std::string>> group_buffer_names)
    : groups_(std::move(groups)), buffer_names_(std::move(group_buffer_names)) {
  PONDER_CHECK(buffer_names_.size() == groups_.size(), ValueError, "optimizer: ", buffer_names_.size(),
               " lists of buffer names for ", groups_.size(), " parameter groups");
  set_lr(lr);
  std::set<std::string> names;
  std::set<TensorImpl*> seen;
  for (const ParamGroup& group : groups_) {
    check_group(group, names, seen);
    std::vector<Slot>& slots = slots_.emplace_back();
    for (const Tensor& p : group.params) slots.push_back(Slot{p, {}, {}, 0});
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::set_lr(double lr) {
  PONDER_CHECK(std::isfinite(lr) && lr >= 0, ValueError, "optimizer: learning rate must be finite and >= 0, got ",
               lr);
  lr_ = lr;
}

void Optimizer::step(const Tensor& grad_scale) {
  if (!grad_scale.defined() || folds_grad_scale()) return update_parameters(grad_scale);
  TensorList params;
  for (const ParamGroup& group : groups_) params.insert(params.end(), group.params.begin(), group.params.end());
  scale_gradients(params, grad_scale);
  update_parameters({});
}

void Optimizer::zero_grad() {
  for (const ParamGroup& group : groups_) {
    for (const Tensor& p : group.params) {
      const Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      if (grad.storage().use_count() > 1) {
        backend::fill(grad, 0.0);
        grad.bump_version();
      } else {
        p.set_grad({});
      }
    }
  }
}

void Optimizer::init_state(Slot& slot, const std::vector<std::string>& buffer_names) const {
  const Tensor& p = slot.param;
  if (needs_master(p)) {
    slot.master = Tensor::empty(p.shape(), {DType::f32, p.device()});
    backend::copy(slot.master, p);
  }
  for (size_t b = 0; b < buffer_names.size(); ++b)
    slot.buffers.push_back(zeros(p.shape(), {state_dtype(p), p.device()}));
}

void Optimizer::update_all(const UpdateFn& update) {
  update_batched([&](const std::vector<Due>& due) {
    for (const Due& d : due) update(d.slot, d.group, d.lr);
  });
}

void Optimizer::update_batched(const BatchUpdateFn& update) {
  std::vector<std::pair<Device, std::vector<Due>>> by_device;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const double group_lr = lr_ * groups_[g].lr_scale;
    for (Slot& slot : slots_[g]) {
      if (!slot.param.grad().defined()) continue;
      if (slot.updates == 0) init_state(slot, buffer_names_[g]);
      ++slot.updates;
      const Device device = slot.param.device();
      auto batch = std::find_if(by_device.begin(), by_device.end(), [&](const auto& b) { return b.first == device; });
      if (batch == by_device.end()) batch = by_device.insert(by_device.end(), {device, {}});
      batch->second.push_back(Due{slot, groups_[g], group_lr});
    }
  }
  for (const auto& batch : by_device) {
    update(batch.second);
    for (const Due& d : batch.second) d.slot.param.bump_version();
  }
  ++steps_;
}

nn::NamedTensors Optimizer::state() const {
  nn::NamedTensors out{{"step", count_tensor(steps_)}};
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < slots_[g].size(); ++i) {
      const Slot& slot = slots_[g][i];
      if (slot.updates == 0) continue;
      out.emplace_back(state_key(groups_[g], i, "step"), count_tensor(slot.updates));
      if (slot.master.defined()) out.emplace_back(state_key(groups_[g], i, "master"), slot.master.detach());
      for (size_t b = 0; b < buffer_names_[g].size(); ++b)
        out.emplace_back(state_key(groups_[g], i, buffer_names_[g][b]), slot.buffers[b].detach());
    }
  }
  return out;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state) {
  std::set<std::string> used;
  auto find = [&](const std::string& name) -> const Tensor* {
    auto it = state.find(name);
    if (it == state.end()) return nullptr;
    used.insert(name);
    return &it->second;
  };
  auto require = [&](const std::string& name) -> const Tensor& {
    const Tensor* t = find(name);
    PONDER_CHECK(t != nullptr, ValueError, "load_state: missing '", name, "'");
    return *t;
  };
  const int64_t steps = read_count(require("step"), "step");
  std::vector<std::vector<Slot>> loaded;
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::vector<Slot>& slots = loaded.emplace_back();
    for (size_t i = 0; i < slots_[g].size(); ++i) {
      Slot& slot = slots.emplace_back(Slot{slots_[g][i].param, {}, {}, 0});
      const std::string count_name = state_key(groups_[g], i, "step");
      const Tensor* count = find(count_name);
      if (count == nullptr) continue;
      slot.updates = read_count(*count, count_name);
      PONDER_CHECK(slot.updates > 0, ValueError, "load_state: '", count_name, "' must be positive");
      if (needs_master(slot.param)) {
        const std::string name = state_key(groups_[g], i, "master");
        slot.master = state_copy(require(name), slot.param, name);
      }
      for (const std::string& buffer : buffer_names_[g]) {
        const std::string name = state_key(groups_[g], i, buffer);
        slot.buffers.push_back(state_copy(require(name), slot.param, name));
      }
    }
  }
  for (const auto& entry : state)
    PONDER_CHECK(used.count(entry.first), ValueError, "load_state: '", entry.first,
                 "' names no state of this optimizer (or belongs to a parameter without a '<group>.<i>.step')");
  steps_ = steps;
  slots_ = std::move(loaded);
}

Tensor Optimizer::master_of(const Tensor& param) const {
  for (const auto& group : slots_) {
    for (const Slot& slot : group) {
      if (slot.param.is_same(param) && slot.master.defined()) return slot.master;
    }
  }
  return param;
}

}  // namespace ponder::optim
