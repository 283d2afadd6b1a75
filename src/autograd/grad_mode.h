// Whether ops record themselves on the tape. Thread-local, toggled by RAII scopes:
//   { NoGrad g; ... }               // nothing recorded, no activations kept
//   { GradScope g(step_has_grad); } // truncated backprop: choose per recurrent call
#pragma once

namespace ponder {
namespace autograd {

bool is_grad_enabled();
void set_grad_enabled(bool enabled);

}  // namespace autograd

class GradScope {
 public:
  explicit GradScope(bool enabled) : previous_(autograd::is_grad_enabled()) {
    autograd::set_grad_enabled(enabled);
  }
  ~GradScope() { autograd::set_grad_enabled(previous_); }
  GradScope(const GradScope&) = delete;
  GradScope& operator=(const GradScope&) = delete;

 private:
  bool previous_;
};

class NoGrad : public GradScope {
 public:
  NoGrad() : GradScope(false) {}
};

class EnableGrad : public GradScope {
 public:
  EnableGrad() : GradScope(true) {}
};

}  // namespace ponder
