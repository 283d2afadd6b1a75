// Muon (MomentUm Orthogonalized by Newton–Schulz, Jordan et al. 2024) for 2-D weights, and
// MuonAdamW, which trains a whole model: Muon for its hidden matrices, AdamW for the rest.
//
// The update is computed with ops, so it runs wherever the parameters live: in the state dtype on
// the CPU (f32, or f64 for f64 parameters), and in bf16 on a GPU for the Newton–Schulz iteration.
#pragma once

#include <string>

#include "optim/adam.h"

namespace ponder::optim {

struct MuonOptions {
  double lr = 0.02;
  double momentum = 0.95;
  bool nesterov = true;
  int64_t ns_steps = 5;
};

// An approximation of the orthogonal factor U·Vᵀ of x = U·S·Vᵀ (x 2-D) by `steps` quintic
// Newton–Schulz iterations in x's dtype: X = x/(‖x‖_F + 1e-7), transposed so rows ≤ cols, then per
// step A = X·Xᵀ, X = a·X + (b·A + c·A·A)·X with (a, b, c) = (3.4445, −4.7750, 2.0315). These
// coefficients trade exactness for speed: each singular value σ/‖x‖_F ≥ 2e-3 ends in
// [0.68, 1.21] after 5 steps, not at 1 (smaller ones are not lifted that far).
Tensor newton_schulz(const Tensor& x, int64_t steps);

// Per 2-D parameter θ of shape [rows, cols] with gradient g (momentum μ):
//   b ← μ·b + g;  u = nesterov ? g + μ·b : b;  O = newton_schulz(u, ns_steps);
//   θ ← θ(1 − lr·wd) − lr·sqrt(max(1, rows/cols))·O.
// State buffer: "momentum_buffer". Every parameter must be 2-D.
class Muon : public Optimizer {
 public:
  explicit Muon(std::vector<ParamGroup> groups, MuonOptions options = {});

 private:
  // Gradients feed the momentum through ops: a clip factor is applied by scaling them first.
  void update_parameters(const Tensor& grad_scale) override;

  MuonOptions options_;
};

struct MuonAdamWOptions {
  MuonOptions muon;
  AdamWOptions adamw;  // adamw.lr is the AdamW parameters' own peak learning rate
  double weight_decay = 0.0;
  bool decay_1d = false;  // also decay 1-D tensors (AdamW's, as decay_groups)
};

// One optimizer for a model. Muon takes the 2-D hidden weights (attention and MLP projections);
// AdamW takes everything Muon is not meant for: embeddings (a name containing "embed"), the LM
// head ("lm_head"), and tensors that are not 2-D (norm weights, gates, biases). Groups, in order:
// "muon" (weight_decay), "adamw_decay" (weight_decay) and "adamw_no_decay" (1-D tensors unless
// decay_1d); empty groups are left out, so a model without 2-D hidden weights is all AdamW.
// lr() is Muon's learning rate; the AdamW groups' lr_scale is adamw.lr / muon.lr, so a schedule
// (set_lr) scales both rates alike. State buffers: "momentum_buffer" for Muon's parameters,
// "exp_avg" and "exp_avg_sq" for AdamW's.
class MuonAdamW : public Optimizer {
 public:
  MuonAdamW(const nn::NamedTensors& params, MuonAdamWOptions options);

  // Whether the split above gives the parameter `name` to Muon.
  static bool uses_muon(const std::string& name, const Tensor& param);

 private:
  MuonAdamW(std::vector<ParamGroup> groups, MuonAdamWOptions options);
  // As Muon's: a clip factor is applied by scaling the gradients first.
  void update_parameters(const Tensor& grad_scale) override;

  MuonAdamWOptions options_;
};

}  // namespace ponder::optim
