#include "nn/module.h"

#include <algorithm>
#include <functional>
#include <set>

#include "autograd/grad_mode.h"
#include "ops/cast.h"
#include "ops/inplace.h"

namespace ponder::nn {

void Module::check_new_name(const std::string& name) const {
  PONDER_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError,
               "module: invalid name \"", name, "\" (non-empty, no dots)");
  auto taken = [&](const auto& list) {
    for (const auto& item : list)
      if (item.name == name) return true;
    return false;
  };
  bool child = false;
  for (const auto& [n, m] : children_) child = child || n == name;
  PONDER_CHECK(!taken(parameters_) && !taken(buffers_) && !child, ValueError, "module: name \"", name,
               "\" is registered twice");
}

void Module::register_parameter(const std::string& name, Tensor& slot) {
  check_new_name(name);
  PONDER_CHECK(slot.defined(), ValueError, "module: parameter \"", name, "\" is undefined");
  if (slot.is_floating_point() && !slot.requires_grad()) slot.set_requires_grad(true);
  parameters_.push_back({name, &slot, true});
}

void Module::register_buffer(const std::string& name, Tensor& slot, bool persistent) {
  check_new_name(name);
  buffers_.push_back({name, &slot, persistent});
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  PONDER_CHECK(module != nullptr, ValueError, "module: child \"", name, "\" is null");
  children_.emplace_back(name, std::move(module));
}

void Module::remove_module(const std::string& name) {
  auto it = std::find_if(children_.begin(), children_.end(), [&](const auto& c) { return c.first == name; });
  PONDER_CHECK(it != children_.end(), ValueError, "module: no child \"", name, "\" to remove");
  children_.erase(it);
}

template <class Fn>
void Module::visit_slots(const std::string& prefix, bool parameters, Fn&& fn) const {
  for (const Slot& s : parameters ? parameters_ : buffers_) fn(prefix + s.name, s);
  for (const auto& [name, child] : children_) child->visit_slots(prefix + name + ".", parameters, fn);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  visit_slots("", true, [&](const std::string& n, const Slot& s) { out.emplace_back(n, *s.tensor); });
  return out;
}

TensorList Module::parameters() const {
  TensorList out;
  visit_slots("", true, [&](const std::string&, const Slot& s) { out.push_back(*s.tensor); });
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  visit_slots("", false, [&](const std::string& n, const Slot& s) { out.emplace_back(n, *s.tensor); });
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out = {{"", this}};
  for (const auto& [name, child] : children_) {
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(sub.empty() ? name : name + "." + sub, m);
  }
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

namespace {
// A converted copy of a parameter that is again a leaf with the same requires_grad.
Tensor converted_leaf(const Tensor& t, const std::function<Tensor(const Tensor&)>& convert) {
  NoGrad no_grad;
  Tensor out = convert(t.detach());
  if (out.is_same(t) || out.storage() == t.storage()) out = out.detach();
  if (t.requires_grad()) out.set_requires_grad(true);
  return out;
}
}  // namespace

void Module::to(Device device) {
  for (auto& [path, m] : named_modules()) {
    for (Slot& s : m->parameters_) *s.tensor = converted_leaf(*s.tensor, [&](const Tensor& t) { return t.to(device); });
    for (Slot& s : m->buffers_)
      if (s.tensor->defined()) *s.tensor = s.tensor->detach().to(device);
  }
}

void Module::to(DType dtype) {
  for (auto& [path, m] : named_modules()) {
    for (Slot& s : m->parameters_) {
      if (s.tensor->is_floating_point())
        *s.tensor = converted_leaf(*s.tensor, [&](const Tensor& t) { return t.to(dtype); });
    }
    for (Slot& s : m->buffers_)
      if (s.tensor->defined() && s.tensor->is_floating_point()) *s.tensor = s.tensor->detach().to(dtype);
  }
}

void Module::train(bool on) {
  for (auto& [path, m] : named_modules()) {
    m->training_ = on;
    m->on_mode_change();
  }
}

void Module::set_requires_grad(bool requires_grad) {
  for (auto& [path, m] : named_modules()) {
    for (Slot& s : m->parameters_) {
      if (s.tensor->is_floating_point()) s.tensor->set_requires_grad(requires_grad);
    }
  }
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.set_grad({});
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  visit_slots("", true, [&](const std::string& n, const Slot& s) { out.emplace_back(n, s.tensor->detach()); });
  visit_slots("", false, [&](const std::string& n, const Slot& s) {
    if (s.persistent && s.tensor->defined()) out.emplace_back(n, s.tensor->detach());
  });
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::set<std::string> used;
  auto load = [&](const std::string& name, const Slot& s) {
    auto it = state.find(name);
    if (it == state.end()) {
      PONDER_CHECK(!strict, ValueError, "load_state_dict: missing tensor \"", name, "\"");
      return;
    }
    PONDER_CHECK(it->second.shape() == s.tensor->shape(), ShapeError, "load_state_dict: \"", name,
                 "\" has shape ", it->second.shape(), " but the module expects ", s.tensor->shape());
    NoGrad no_grad;
    copy_(*s.tensor, it->second);
    used.insert(name);
  };
  visit_slots("", true, load);
  visit_slots("", false, [&](const std::string& n, const Slot& s) {
    if (s.persistent) load(n, s);
  });
  if (!strict) return;
  for (const auto& [name, t] : state) {
    PONDER_CHECK(used.count(name), ValueError, "load_state_dict: unexpected tensor \"", name,
                 "\" (the module has no such parameter or buffer)");
  }
}

}  // namespace ponder::nn
