// Module: a tree of named parameters, buffers and child modules. The dotted path of a
// parameter ("layers.3.self_attn.q_proj.weight") is its name in checkpoints and exports; there is
// no renaming table anywhere.
//
// A module registers its own members, so code reads plainly:
//   class Linear : public Module {
//     Tensor weight;
//     Linear(...) { weight = ...; register_parameter("weight", weight); }
//   };
// Registration stores the member's address; modules are therefore neither copied nor moved
// (hold them by shared_ptr).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ponder::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors named_parameters() const;
  TensorList parameters() const;
  NamedTensors named_buffers() const;
  // This module ("") and every descendant, by dotted path, parents before children.
  std::vector<std::pair<std::string, Module*>> named_modules();
  int64_t num_parameters() const;

  // Moves (or converts) every parameter and buffer; parameters stay leaves.
  void to(Device device);
  // Converts floating parameters and buffers.
  void to(DType dtype);
  void train(bool on = true);
  bool is_training() const { return training_; }
  // Freezes (false) or unfreezes (true) every parameter of this subtree.
  void set_requires_grad(bool requires_grad);
  void zero_grad();

  // Parameters and persistent buffers, detached.
  NamedTensors state_dict() const;
  // Copies values in (converting dtype and device to the module's). Shapes must match; with
  // `strict`, every entry must name a tensor of the module and every tensor must be given.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 protected:
  void register_parameter(const std::string& name, Tensor& slot);
  void register_buffer(const std::string& name, Tensor& slot, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // Drops a child and its subtree from the registry (e.g. LoRA adapters after merging).
  void remove_module(const std::string& name);
  // Called by train(); modules whose behaviour depends on the mode override it.
  virtual void on_mode_change() {}

 private:
  struct Slot {
    std::string name;
    Tensor* tensor;
    bool persistent;
  };
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name) const;
  template <class Fn>
  void visit_slots(const std::string& prefix, bool parameters, Fn&& fn) const;

  std::vector<Slot> parameters_;
  std::vector<Slot> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A numbered list of modules of one type: children "0", "1", ...
template <class M>
class ModuleList : public Module {
 public:
  void push_back(std::shared_ptr<M> module) {
    items_.push_back(register_module(std::to_string(items_.size()), std::move(module)));
  }
  size_t size() const { return items_.size(); }
  M& operator[](size_t i) const { return *items_.at(i); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

}  // namespace ponder::nn
