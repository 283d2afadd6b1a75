// The Attractor model against the same fixed point written in PyTorch (tests/parity/attractor.py,
// float64, solved to 1e-13, gradient by implicit differentiation and checked there against
// back-propagation through the unrolled iteration): logits, summed loss and every parameter's
// gradient, f32.
#include <gtest/gtest.h>

#include "data/packing.h"
#include "models/attractor/attractor.h"
#include "ops/ops.h"
#include "support/model_parity.h"
#include "support/test_util.h"

namespace ponder {
namespace {

using models::AttractorConfig;
using solvers::BackwardMode;

data::Sample sample(std::vector<int32_t> inst, std::vector<int32_t> resp) { return {std::move(inst), std::move(resp)}; }

const char* backward_name(BackwardMode mode) {
  switch (mode) {
    case BackwardMode::onestep: return "onestep";
    case BackwardMode::picard: return "picard";
    case BackwardMode::anderson: return "anderson";
    default: return "unsupported";
  }
}

// f32 solves to 1e-6 relative residual, forward and adjoint: the fixed point, and with it the
// logits and gradients, are then off the exact one by ~1e-6·(1 − Lip f)⁻¹, inside the 1e-5 bound.
AttractorConfig tiny_config(AttentionMask mask, BackwardMode backward) {
  AttractorConfig c{.vocab_size = 16, .dim = 32, .heads = 2, .ffn_hidden = 64, .n_backbone_layers = 1,
                    .n_fp_blocks = 2, .attention = mask, .gamma_init = 0.25, .gamma_max = 0.5, .logit_scale = 1.5,
                    .seed = 3};
  c.solver = {.kind = solvers::SolverKind::anderson, .tol = 1e-6, .min_iter = 0, .max_iter = 100};
  c.backward = {.mode = backward, .adjoint = {.tol = 1e-6, .max_iter = 100}};
  return c;
}

void expect_parity(const AttractorConfig& c, const models::PackedBatch& batch, const std::string& name) {
  models::Attractor model(c);
  {  // Gates differ per channel (at initialisation each one is γ_init everywhere).
    NoGrad no_grad;
    uint64_t seed = 20;
    for (auto& [n, p] : model.named_parameters()) {
      if (n.ends_with(".raw")) copy_(p, p + testing::random_tensor(p.shape(), ++seed, DType::f32) * 0.5);
    }
  }
  const std::vector<std::string> without_gradient = testing::expect_model_parity(
      model, batch,
      {.script = "attractor.py",
       .name = name,
       .metadata = {{"heads", std::to_string(c.heads)}, {"kv_heads", std::to_string(c.heads)},
                    {"head_dim", std::to_string(c.dim / c.heads)}, {"eps", std::to_string(c.norm_eps)},
                    {"qk_norm", "1"}, {"qk_eps", std::to_string(c.norm_eps)}, {"theta", std::to_string(c.rope_theta)},
                    {"activation", "relu2"}, {"n_backbone_layers", std::to_string(c.n_backbone_layers)},
                    {"n_fp_blocks", std::to_string(c.n_fp_blocks)}, {"gamma_max", std::to_string(c.gamma_max)},
                    {"logit_scale", std::to_string(c.logit_scale)}, {"backward", backward_name(c.backward.mode)},
                    {"adjoint_clip", std::to_string(c.backward.adjoint_clip)}, {"rows", std::to_string(batch.rows)}},
       .extra_inputs = {}});
  EXPECT_TRUE(without_gradient.empty());
  // Every solve reached its tolerance (the parity bound above assumes it).
  const std::map<std::string, double> metrics = model.take_step_metrics();
  EXPECT_EQ(metrics.at("fp_fwd_unconverged") + metrics.at("fp_fwd_failures"), 0) << name;
  EXPECT_EQ(metrics.at("fp_bwd_failures"), 0) << name;
  std::printf("%s: %.1f forward iterations, %.1f backward\n", name.c_str(), metrics.at("fp_fwd_iters"),
              metrics.at("fp_bwd_iters"));
}

// Two rows of ten tokens (the solver's samples), PrefixLM.
models::PackedBatch prefix_lm_rows() {
  return data::pack_rows({{sample({1, 2, 3}, {4, 5}), sample({6}, {7, 8, 9})},
                          {sample({2, 3}, {4, 5, 6, 7}), sample({9, 8}, {7, 6})}},
                         {.row_len = 10});
}

// Three causal rows of eight tokens, loss on every next token.
models::PackedBatch causal_rows() {
  return data::pack_rows({{sample({}, {1, 2, 3, 4, 5, 6, 7, 8, 9})},
                          {sample({}, {9, 3, 14}), sample({}, {5, 11, 2, 6, 6})},
                          {sample({}, {15, 1, 4, 1, 5})}},
                         {.row_len = 8, .mask = AttentionMask::causal, .loss_on_response_only = false});
}

TEST(Parity, AttractorImplicitGradientMatchesPyTorch) {
  expect_parity(tiny_config(AttentionMask::prefix_lm, BackwardMode::picard), prefix_lm_rows(), "attractor_picard");
  AttractorConfig c = tiny_config(AttentionMask::causal, BackwardMode::anderson);
  c.solver.kind = solvers::SolverKind::picard;
  c.n_fp_blocks = 1;
  c.logit_scale = 1.0;
  expect_parity(c, causal_rows(), "attractor_anderson_causal");
}

TEST(Parity, AttractorOneStepGradientMatchesPyTorch) {
  AttractorConfig c = tiny_config(AttentionMask::prefix_lm, BackwardMode::onestep);
  expect_parity(c, prefix_lm_rows(), "attractor_onestep");
  c.backward.adjoint_clip = 0.05;  // small enough to scale Jᵀv down in every row
  expect_parity(c, prefix_lm_rows(), "attractor_onestep_clipped");
}

}  // namespace
}  // namespace ponder
