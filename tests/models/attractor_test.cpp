#include "models/attractor/attractor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "data/packing.h"
#include "io/recipe.h"
#include "models/learning.h"
#include "ops/ops.h"
#include "support/test_util.h"
#include "tensor/allocator.h"
#include "train/family.h"

namespace ponder::models {
namespace {

AttractorConfig tiny() {
  return {.vocab_size = 16, .dim = 32, .heads = 2, .ffn_hidden = 64, .n_backbone_layers = 1, .n_fp_blocks = 1,
          .attention = AttentionMask::prefix_lm, .gamma_init = 0.25, .gamma_max = 0.5, .seed = 3};
}

// Two rows of ten tokens (so the solver sees two samples).
PackedBatch two_rows() {
  return data::pack_rows({{{{1, 2, 3}, {4, 5}}, {{6}, {7, 8, 9}}}, {{{2, 3}, {4, 5, 6, 7}}, {{9, 8}, {7, 6}}}},
                         {.row_len = 10});
}

// One causal sample of the given tokens.
PackedBatch one_sequence(const std::vector<double>& tokens) {
  const auto n = static_cast<int64_t>(tokens.size());
  PackedBatch b;
  b.tokens = tensor(tokens, {n}, {.dtype = DType::i64});
  b.positions = arange(0, n);
  b.attn = {.mask = AttentionMask::causal, .cu_seqlens = tensor({0, double(n)}, {2}, {.dtype = DType::i32})};
  b.rows = 1;
  b.row_len = n;
  return b;
}

// A parameter by name (a handle sharing the model's tensor and its gradient).
Tensor parameter(Attractor& m, const std::string& name) {
  for (auto& [n, p] : m.named_parameters()) {
    if (n == name) return p;
  }
  ADD_FAILURE() << "no parameter " << name;
  return Tensor();
}

TEST(Attractor, ParameterNamesAndCostMatchTheModel) {
  Attractor m(tiny());
  std::vector<std::string> names;
  int64_t counted = 0;
  for (auto& [n, p] : m.named_parameters()) {
    names.push_back(n);
    counted += p.numel();
  }
  for (const char* expected :
       {"model.embed_tokens.weight", "model.backbone.layers.0.self_attn.q_norm.weight",
        "model.backbone.layers.0.mlp.up_proj.weight", "model.backbone.norm.weight",
        "model.fp_head.blocks.layers.0.self_attn.o_proj.weight", "model.fp_head.attn_gates.0.raw",
        "model.fp_head.mlp_gates.0.raw"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
  // Tied: no LM head of its own; ReLU²: no gate projection.
  for (const std::string& n : names) {
    EXPECT_EQ(n.find("lm_head"), std::string::npos) << n;
    EXPECT_EQ(n.find("mlp.gate_proj"), std::string::npos) << n;
  }
  EXPECT_EQ(train::model_cost(io::ModelConfig(tiny()), 64).parameters, counted);
  // γ = γ_max·sigmoid(raw) starts at γ_init.
  EXPECT_NEAR(m.model->fp_head->attn_gates->operator[](0).gamma().to_vector<float>()[5], 0.25, 1e-6);
}

TEST(Attractor, DepthZeroIsTheBackboneProposalAlone) {
  Attractor m(tiny());
  const PackedBatch batch = two_rows();
  NoGrad no_grad;
  const Tensor full = m.logits(batch);
  m.set_eval_depth("0");
  const Tensor c = m.model->backbone->forward(m.model->embed_tokens->forward(batch.tokens), batch.positions, batch.attn);
  const Tensor expected = linear(rms_norm(c, Tensor(), 1e-6), m.model->embed_tokens->weight);
  EXPECT_TRUE(testing::all_close(m.logits(batch), expected, 1e-6, 1e-6));
  EXPECT_GT(testing::relative_error(full, expected), 1e-3);  // the head does change the answer
  m.set_eval_depth("");
  EXPECT_TRUE(testing::all_close(m.logits(batch), full, 0, 0));
}

TEST(Attractor, EvalDepthsRunThatManyHeadIterationsCheapestFirst) {
  AttractorConfig c = tiny();
  c.solver.max_iter = 3;
  Attractor m(c);
  std::vector<std::string> labels;
  double previous = -1;
  for (const EvalDepth& d : m.eval_depths()) {
    labels.push_back(d.label);
    EXPECT_GT(d.compute, previous) << d.label;
    previous = d.compute;
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"0", "1", "2", "full"}));  // 4 is not below max_iter 3
  EXPECT_DOUBLE_EQ(m.eval_depths().back().compute, 1.0);
  EXPECT_DOUBLE_EQ(m.eval_depths().front().compute, 1.0 / 5);  // backbone / (backbone + 4 head passes)
  // Depth 1 is one Picard step from c: f(c, c) = FPHead(2c) − c.
  const PackedBatch batch = two_rows();
  NoGrad no_grad;
  m.set_eval_depth("1");
  const Tensor c_tokens = m.context(batch.tokens, batch.positions, batch.attn);
  const Tensor y1 = m.model->fp_head->forward(c_tokens + c_tokens, batch.positions, batch.attn) - c_tokens;
  EXPECT_TRUE(testing::all_close(m.logits(batch), m.head(m.head_input(y1)), 1e-5, 1e-6));
  EXPECT_EQ(testing::error_message<ValueError>([&] { m.set_eval_depth("4"); }),
            "attractor: no evaluation depth '4' (choices: 0, 1, 2, full)");
}

TEST(Attractor, NextTokenLogitsEqualTheLastRowOverTheWholeSequence) {
  AttractorConfig c = tiny();
  c.attention = AttentionMask::causal;
  Attractor m(c);
  const std::vector<double> tokens = {3, 1, 4, 1, 5, 9, 2};
  NoGrad no_grad;
  DecodeCache cache(AttentionMask::causal);
  Tensor step = m.next_token_logits(tensor({3, 1, 4, 1, 5}, {5}, {.dtype = DType::i64}), cache);
  for (size_t k = 5; k <= tokens.size(); ++k) {
    const std::vector<double> prefix(tokens.begin(), tokens.begin() + k);
    const Tensor all = m.logits(one_sequence(prefix));
    EXPECT_TRUE(testing::all_close(step, narrow(all, 0, int64_t(k) - 1, 1), 1e-5, 1e-6)) << k << " tokens";
    if (k < tokens.size()) step = m.next_token_logits(tensor({tokens[k]}, {1}, {.dtype = DType::i64}), cache);
  }
  EXPECT_EQ(cache.length, 7);
}

TEST(Attractor, StepMetricsCountIterationsResidualsAndFailuresWithoutThrowing) {
  AttractorConfig c = tiny();
  c.solver.tol = 1e-30;  // never reached: every solve runs max_iter and is counted as unconverged
  c.solver.max_iter = 3;
  c.solver.min_iter = 0;
  Attractor m(c);
  const PackedBatch batch = two_rows();
  m.loss_sum(batch).backward();
  m.loss_sum(batch).backward();
  std::map<std::string, double> metrics = m.take_step_metrics();
  EXPECT_EQ(metrics.at("fp_solves"), 2);
  EXPECT_EQ(metrics.at("fp_fwd_iters"), 3);
  EXPECT_EQ(metrics.at("fp_fwd_unconverged"), 2);
  EXPECT_EQ(metrics.at("fp_fwd_failures"), 0);
  EXPECT_GT(metrics.at("fp_fwd_residual"), 0);
  EXPECT_GT(metrics.at("fp_drift"), 0);
  EXPECT_EQ(metrics.at("fp_bwd_iters"), 1);  // onestep: one vector-Jacobian product
  EXPECT_GT(metrics.at("fp_bwd_residual"), 0);
  EXPECT_TRUE(m.take_step_metrics().empty());  // taken: reset
  {
    NoGrad no_grad;  // evaluation forwards are not training steps
    m.logits(batch);
  }
  EXPECT_TRUE(m.take_step_metrics().empty());
  // A head that produces NaN gives up cleanly and is counted.
  {
    NoGrad no_grad;
    copy_(m.model->fp_head->mlp_gates->operator[](0).raw, full({32}, std::nan(""), {.dtype = DType::f32}));
  }
  EXPECT_NO_THROW(m.loss_sum(batch));
  EXPECT_EQ(m.take_step_metrics().at("fp_fwd_failures"), 1);
}

// Peak host memory of one training step (forward solve, implicit function, backward) with a
// tolerance no solve reaches, so that every one of max_iter iterations runs.
int64_t step_peak_bytes(int max_iter, solvers::BackwardMode backward) {
  AttractorConfig c = tiny();
  c.solver = {.kind = solvers::SolverKind::anderson, .tol = 1e-30, .min_iter = 0, .max_iter = max_iter};
  c.backward = {.mode = backward, .adjoint = {.tol = 1e-30, .max_iter = max_iter}};
  Attractor m(c);
  const PackedBatch batch = two_rows();
  const int64_t before = memory_stats(Device::cpu()).current_bytes;
  reset_peak_memory(Device::cpu());
  m.loss_sum(batch).backward();
  const int64_t peak = memory_stats(Device::cpu()).peak_bytes - before;
  const std::map<std::string, double> metrics = m.take_step_metrics();
  EXPECT_EQ(metrics.at("fp_fwd_iters"), max_iter);
  if (backward == solvers::BackwardMode::anderson) {
    EXPECT_EQ(metrics.at("fp_bwd_iters"), max_iter);
  }
  return peak;
}

TEST(Attractor, TrainingStepPeakMemoryDoesNotGrowWithIterations) {
  for (solvers::BackwardMode backward : {solvers::BackwardMode::onestep, solvers::BackwardMode::anderson}) {
    step_peak_bytes(4, backward);  // first-use allocations out of the way
    const int64_t short_solve = step_peak_bytes(4, backward);
    const int64_t long_solve = step_peak_bytes(64, backward);
    EXPECT_GT(short_solve, 20 * 32 * 4 * 8);  // the measurement sees the work (activations of the step)
    EXPECT_LE(std::abs(long_solve - short_solve), short_solve / 20)
        << "4 iterations: " << short_solve << " bytes, 64 iterations: " << long_solve << " bytes";
  }
}

// d loss / dθ of an f64 model, by the implicit gradient and by central differences of the
// converged forward, for a few entries of backbone, head and gate parameters.
TEST(Attractor, ImplicitGradientMatchesFiniteDifferencesOfTheConvergedModel) {
  AttractorConfig c = tiny();
  c.solver = {.kind = solvers::SolverKind::anderson, .tol = 1e-13, .min_iter = 0, .max_iter = 300};
  for (solvers::BackwardMode mode : {solvers::BackwardMode::picard, solvers::BackwardMode::anderson}) {
    c.backward = {.mode = mode, .adjoint = {.tol = 1e-13, .max_iter = 300}};
    Attractor m(c);
    m.to(DType::f64);
    const PackedBatch batch = two_rows();
    m.loss_sum(batch).backward();
    const std::map<std::string, double> metrics = m.take_step_metrics();
    ASSERT_EQ(metrics.at("fp_fwd_unconverged") + metrics.at("fp_bwd_failures"), 0);
    auto loss = [&] {
      NoGrad no_grad;
      return m.loss_sum(batch).item<double>();
    };
    std::vector<double> analytic, numeric;
    for (const char* name : {"model.fp_head.blocks.layers.0.mlp.up_proj.weight",
                             "model.fp_head.blocks.layers.0.self_attn.v_proj.weight", "model.fp_head.attn_gates.0.raw",
                             "model.backbone.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight"}) {
      const Tensor p = parameter(m, name);
      for (int64_t i : {int64_t(3), p.numel() - 1}) {  // the gates have only dim entries
        double* value = p.data<double>() + i;
        const double saved = *value, eps = 1e-5;
        *value = saved + eps;
        const double up = loss();
        *value = saved - eps;
        const double down = loss();
        *value = saved;
        numeric.push_back((up - down) / (2 * eps));
        analytic.push_back(p.grad().to_vector<double>()[i]);
      }
    }
    const Tensor a = tensor(analytic, {int64_t(analytic.size())}, {.dtype = DType::f64});
    const Tensor n = tensor(numeric, {int64_t(numeric.size())}, {.dtype = DType::f64});
    EXPECT_LT(testing::relative_error(a, n), 1e-4) << "backward mode " << int(mode);
  }
}

// The attractor head trains as a language model on the CPU: the reversal task, MuonAdamW.
TEST(Attractor, LearnsToReverseASequenceOnTheCpu) {
  AttractorConfig c{.vocab_size = 12, .dim = 64, .heads = 2, .ffn_hidden = 256, .n_backbone_layers = 2,
                    .n_fp_blocks = 1, .attention = AttentionMask::prefix_lm, .gamma_init = 0.25, .gamma_max = 0.5,
                    .seed = 1};
  c.solver.max_iter = 6;
  Attractor model(c);
  optim::MuonAdamW opt(model.named_parameters(), {.muon = {.lr = 0.02}, .adamw = {.lr = 5e-3}, .weight_decay = 0.01});
  const double loss = ponder::testing::train_reversal(
      model, opt, {.steps = 300, .peak_lr = 0.02, .warmup_steps = 20, .samples_per_row = 2});
  EXPECT_LT(loss, 1.0);  // chance level is log(10) = 2.3; 0.86 measured
}

std::string recipe_text(const std::string& name) {
  std::ifstream f(std::string(PONDER_SOURCE_DIR) + "/recipes/attractor/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(Attractor, RecipesCarryTheIssuesNumbers) {
  struct Expected {
    const char* file;
    int64_t dim, heads, backbone, fp, max_iter, min_iter;
    double tol;
    solvers::BackwardMode backward;
  };
  using solvers::BackwardMode;
  for (const Expected& e : {Expected{"small_140m.yaml", 1024, 8, 7, 1, 64, 6, 3e-4, BackwardMode::onestep},
                            Expected{"medium_370m.yaml", 1280, 10, 15, 2, 64, 8, 2e-4, BackwardMode::onestep},
                            Expected{"large_770m.yaml", 1280, 10, 35, 2, 32, 6, 1.5e-4, BackwardMode::anderson},
                            Expected{"sudoku_27m.yaml", 512, 8, 4, 4, 12, 4, 3e-4, BackwardMode::onestep}}) {
    const io::Recipe r = io::parse_recipe(recipe_text(e.file), e.file);
    const auto& c = std::get<AttractorConfig>(r.model);
    EXPECT_EQ(c.dim, e.dim) << e.file;
    EXPECT_EQ(c.heads, e.heads) << e.file;
    EXPECT_EQ(c.n_backbone_layers, e.backbone) << e.file;
    EXPECT_EQ(c.n_fp_blocks, e.fp) << e.file;
    EXPECT_EQ(c.solver.max_iter, e.max_iter) << e.file;
    EXPECT_EQ(c.solver.min_iter, e.min_iter) << e.file;
    EXPECT_DOUBLE_EQ(c.solver.tol, e.tol) << e.file;
    EXPECT_EQ(c.backward.mode, e.backward) << e.file;
    if (std::string(e.file) != "sudoku_27m.yaml") {
      EXPECT_EQ(c.vocab_size, 32768) << e.file;
      EXPECT_EQ(r.data.seq_len, 2048) << e.file;
      EXPECT_EQ(r.batch.global_tokens, 524288) << e.file;
      EXPECT_EQ(c.resolved_ffn_hidden(), 4 * c.dim) << e.file;
    }
  }
  const auto large = std::get<AttractorConfig>(io::parse_recipe(recipe_text("large_770m.yaml"), "large").model);
  EXPECT_DOUBLE_EQ(large.solver.beta, 0.96);
  EXPECT_EQ(large.backward.adjoint.max_iter, 32);
  EXPECT_EQ(large.backward.adjoint.min_iter, 6);
  EXPECT_DOUBLE_EQ(large.backward.adjoint.tol, 1.5e-4);
  const io::Recipe sudoku = io::parse_recipe(recipe_text("sudoku_27m.yaml"), "sudoku");
  const auto& s = std::get<AttractorConfig>(sudoku.model);
  EXPECT_EQ(s.ffn_hidden, 2304);
  EXPECT_DOUBLE_EQ(s.backward.adjoint_clip, 1.0);
  EXPECT_EQ(sudoku.data.task, "sudoku");
  EXPECT_NO_THROW(io::parse_recipe(recipe_text("tiny.yaml"), "tiny"));
}

TEST(Attractor, RecipeCheckRejectsImpossibleSolverAndGateSettings) {
  struct Case {
    std::vector<std::string> sets;
    std::string message;
  };
  const Case cases[] = {
      {{"model.tol=0"}, "model.tol: expected a positive number, got \"0\""},
      {{"model.tol=-1e-3"}, "model.tol: expected a positive number, got \"-1e-3\""},
      {{"model.min_iter=20", "model.max_iter=16"}, "model.min_iter: 20 is larger than max_iter 16"},
      {{"model.m=0"}, "model.m: expected a positive integer, got \"0\""},
      {{"model.gamma_init=0"}, "model.gamma_init: 0 is outside (0, gamma_max = 0.5]"},
      {{"model.gamma_init=0.6"}, "model.gamma_init: 0.6 is outside (0, gamma_max = 0.5]"},
      {{"model.backward=picard", "model.backward_min_iter=30"},
       "model.backward_min_iter: 30 is larger than backward_max_iter 16"},
      {{"model.backward=newton"}, "model.backward: expected one of"},
      {{"data.mask=bidirectional"}, "data.mask: bidirectional does not match model.attention causal"},
  };
  for (const Case& c : cases) {
    const std::string message =
        testing::error_message<io::ConfigError>([&] { io::parse_recipe(recipe_text("tiny.yaml"), "tiny", c.sets); });
    EXPECT_EQ(message.substr(0, c.message.size()), c.message) << "full message: " << message;
  }
  const io::Recipe bidirectional = io::parse_recipe(recipe_text("tiny.yaml"), "tiny", {"model.attention=bidirectional"});
  EXPECT_EQ(bidirectional.data.mask, "bidirectional");
}

}  // namespace
}  // namespace ponder::models
