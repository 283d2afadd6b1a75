// The Adam family: AdamW (torch.optim.AdamW) and AdamATan2 (HRM-Text's epsilon-free variant).
// Weight decay is decoupled and set per group (ParamGroup::weight_decay).
#pragma once

#include "optim/optimizer.h"

namespace ponder::optim {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

// θ ← θ(1 − lr·wd), then Adam with bias correction:
// θ ← θ − lr/(1−β1^t) · m / (sqrt(v/(1−β2^t)) + eps).
// State buffers: "exp_avg" (m), "exp_avg_sq" (v).
class AdamW : public Optimizer {
 public:
  explicit AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});

 private:
  void update_parameters(const Tensor& grad_scale) override;
  bool folds_grad_scale() const override { return true; }

  AdamWOptions options_;
};

struct AdamAtan2Options {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
};

// θ ← θ(1 − lr·wd); m, v as Adam; θ ← θ − lr/(1−β1^t) · atan2(m, sqrt(v/(1−β2^t))). No epsilon:
// atan2 stays bounded when v is tiny. State buffers: "exp_avg", "exp_avg_sq".
class AdamATan2 : public Optimizer {
 public:
  explicit AdamATan2(std::vector<ParamGroup> groups, AdamAtan2Options options = {});

 private:
  void update_parameters(const Tensor& grad_scale) override;
  bool folds_grad_scale() const override { return true; }

  AdamAtan2Options options_;
};

}  // namespace ponder::optim
