// Stochastic gradient descent with momentum, as torch.optim.SGD (weight decay is added to the
// gradient, per group).
#pragma once

#include "optim/optimizer.h"

namespace ponder::optim {

struct SgdOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0
};

// d = g + wd·θ; with momentum b ← μ·b + (1−dampening)·d (b = d at a parameter's first update) and
// d = nesterov ? d + μ·b : b; θ ← θ − lr·d. State buffer (momentum > 0 only): "momentum_buffer".
class Sgd : public Optimizer {
 public:
  explicit Sgd(std::vector<ParamGroup> groups, SgdOptions options = {});

 private:
  void update_parameters(const Tensor& grad_scale) override;
  bool folds_grad_scale() const override { return true; }

  SgdOptions options_;
};

}  // namespace ponder::optim
