#include "models/attractor/attractor.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "autograd/grad_mode.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace ponder::models {
namespace {

// Head iterations eval_depths() offers besides 0 and the full solve.
constexpr int kPartialDepths[] = {1, 2, 4};

// A backward run has written its stats (a default SolveStats is none of these).
bool backward_ran(const solvers::SolveStats& s) { return s.iterations > 0 || s.converged || s.failed; }

}  // namespace

std::optional<AttractorProblem> find_problem(const AttractorConfig& c) {
  auto str = [](auto v) {
    std::ostringstream s;
    s << v;
    return s.str();
  };
  if (c.dim % c.heads != 0) return AttractorProblem{"heads", str(c.heads) + " heads do not divide dim " + str(c.dim)};
  if (!(c.gamma_max > 0)) return AttractorProblem{"gamma_max", "must be positive, got " + str(c.gamma_max)};
  if (!(c.gamma_init > 0 && c.gamma_init <= c.gamma_max)) {
    return AttractorProblem{"gamma_init", str(c.gamma_init) + " is outside (0, gamma_max = " + str(c.gamma_max) + "]"};
  }
  const solvers::FixedPointOptions& s = c.solver;
  if (!(s.tol > 0)) return AttractorProblem{"tol", "must be positive, got " + str(s.tol)};
  if (s.m < 1) return AttractorProblem{"m", "the Anderson history must be at least 1, got " + str(s.m)};
  if (s.min_iter > s.max_iter) {
    return AttractorProblem{"min_iter", str(s.min_iter) + " is larger than max_iter " + str(s.max_iter)};
  }
  const solvers::FixedPointOptions& b = c.backward.adjoint;
  const bool iterative = c.backward.mode == solvers::BackwardMode::picard ||
                         c.backward.mode == solvers::BackwardMode::anderson;
  if (iterative && !(b.tol > 0)) return AttractorProblem{"backward_tol", "must be positive, got " + str(b.tol)};
  if (iterative && b.min_iter > b.max_iter) {
    return AttractorProblem{"backward_min_iter",
                            str(b.min_iter) + " is larger than backward_max_iter " + str(b.max_iter)};
  }
  return std::nullopt;
}

void validate(const AttractorConfig& c) {
  PONDER_CHECK(c.vocab_size > 0 && c.dim > 0 && c.heads > 0 && c.n_backbone_layers > 0 && c.n_fp_blocks > 0 &&
                   c.ffn_hidden >= 0,
               ValueError, "attractor: vocab_size, dim, heads, n_backbone_layers and n_fp_blocks must be positive");
  if (auto problem = find_problem(c)) fail<ValueError>("attractor: ", problem->key, ": ", problem->message);
  solvers::check_options(c.solver);
}

nn::BlockConfig block_config(const AttractorConfig& c) {
  validate(c);
  nn::BlockConfig b;
  b.attn.dim = c.dim;
  b.attn.heads = c.heads;
  b.attn.rope_theta = c.rope_theta;
  b.attn.qk_norm = true;
  b.attn.qk_norm_eps = c.norm_eps;
  b.mlp.dim = c.dim;
  b.mlp.hidden = c.resolved_ffn_hidden();
  b.mlp.activation = nn::Activation::relu2;
  b.norm = {nn::NormKind::rms, c.norm_eps, /*weighted=*/true};
  return b;
}

AttractorBody::AttractorBody(const AttractorConfig& c, Generator& gen) {
  const nn::BlockConfig block = block_config(c);
  embed_tokens = register_module("embed_tokens", std::make_shared<nn::Embedding>(c.vocab_size, c.dim, gen));
  backbone = register_module(
      "backbone", std::make_shared<nn::Stack>(block, c.n_backbone_layers, nn::NormConfig{nn::NormKind::rms, c.norm_eps},
                                              gen));
  fp_head = register_module("fp_head", std::make_shared<FPHead>(block, c.n_fp_blocks, c.gamma_init, c.gamma_max, gen));
}

Attractor::Attractor(const AttractorConfig& config) : config_(config) {
  Generator gen(config.seed);
  model = register_module("model", std::make_shared<AttractorBody>(config, gen));
  // Scaled output projections keep the residual stream's variance from growing with depth.
  const double depth = double(config.n_backbone_layers + config.n_fp_blocks);
  const double residual_std = 1.0 / std::sqrt(double(config.dim) * 2.0 * depth);
  nn::init_matching(*this, "o_proj.weight", [&](const Tensor& w) { nn::trunc_normal_(w, residual_std, gen); });
  nn::init_matching(*this, "down_proj.weight", [&](const Tensor& w) { nn::trunc_normal_(w, residual_std, gen); });
}

Tensor Attractor::context(const Tensor& tokens, const Tensor& positions, const AttentionSpec& spec) const {
  return model->backbone->forward(model->embed_tokens->forward(tokens), positions, spec);
}

Tensor Attractor::refine(const Tensor& c, const Tensor& positions, const AttentionSpec& spec, int64_t rows) {
  if (eval_iterations_ == 0) return c;
  // The solver's samples are the batch rows (its residuals, Anderson weights and adjoint clip are
  // per sample); the head runs on the packed tokens.
  const Shape tokens = c.shape();
  const solvers::ContextMap f = [&](const Tensor& y, const TensorList& ctx) {
    return model->fp_head->forward((y + ctx[0]).reshape(tokens), positions, spec).reshape(y.shape()) - y;
  };
  solvers::FixedPointOptions options = config_.solver;
  if (eval_iterations_ > 0) {
    options.max_iter = eval_iterations_;
    options.min_iter = std::min(options.min_iter, eval_iterations_);
  }
  const Tensor c_rows = c.reshape({std::max<int64_t>(rows, 1), -1, config_.dim}), c0 = c_rows.detach();
  const solvers::FixedPointResult solve =
      solvers::solve_fixed_point([&](const Tensor& y) { return f(y, {c0}); }, c0, options);
  solvers::BackwardOptions backward = config_.backward;
  backward.adjoint.m = options.m;
  backward.adjoint.lam = options.lam;
  backward.adjoint.beta = options.beta;
  const bool training = autograd::is_grad_enabled();
  auto backward_stats = training ? std::make_shared<solvers::SolveStats>() : nullptr;
  Tensor y = solvers::implicit_fixed_point(f, solve.solution, {c_rows}, backward, backward_stats);
  if (training) record(solve, y, c_rows, std::move(backward_stats));
  return y.reshape(tokens);
}

Tensor Attractor::head_input(const Tensor& y) const {
  return rms_norm(y, Tensor(), config_.norm_eps) * config_.logit_scale;
}

Tensor Attractor::head(const Tensor& features) const { return linear(features, head_weight()); }

Tensor Attractor::head_weight() const { return model->embed_tokens->weight; }

Tensor Attractor::features(const PackedBatch& batch) {
  return head_input(
      refine(context(batch.tokens, batch.positions, batch.attn), batch.positions, batch.attn, batch.rows));
}

Tensor Attractor::next_token_logits(const Tensor& tokens, DecodeCache& cache) {
  NoGrad no_grad;
  if (cache.length == 0) cache.prompt_length = tokens.numel();
  begin_cached_step(tokens, cache, 0);  // checks the tokens and the prompt mask, advances cache.length
  cache.tokens = cache.tokens.defined() ? cat({cache.tokens, tokens}, 0) : tokens;
  const int64_t n = cache.length;
  const TensorOptions on_device{.dtype = DType::i32, .device = tokens.device()};
  AttentionSpec spec{.mask = cache.prompt_mask, .cu_seqlens = tensor({0, double(n)}, {2}, on_device)};
  if (spec.mask == AttentionMask::prefix_lm) spec.prefix_len = tensor({double(cache.prompt_length)}, {1}, on_device);
  const Tensor positions = arange(0, n, 1, {.dtype = DType::i64, .device = tokens.device()});
  const Tensor y = refine(context(cache.tokens, positions, spec), positions, spec, 1);
  return head(head_input(narrow(y, 0, n - 1, 1)));
}

std::vector<EvalDepth> Attractor::eval_depths() const {
  // Cost in blocks: the backbone, then the head once per solver evaluation plus the final application.
  const double backbone = double(config_.n_backbone_layers), fp = double(config_.n_fp_blocks);
  const double full = backbone + double(config_.solver.max_iter + 1) * fp;
  std::vector<EvalDepth> depths{{"0", backbone / full}};
  for (int k : kPartialDepths) {
    if (k < config_.solver.max_iter) depths.push_back({std::to_string(k), (backbone + double(k + 1) * fp) / full});
  }
  depths.push_back({"full", 1.0});
  return depths;
}

void Attractor::set_eval_depth(const std::string& label) {
  if (label.empty() || label == "full") {
    eval_iterations_ = -1;
    return;
  }
  std::string known;
  for (const EvalDepth& d : eval_depths()) {
    if (d.label == label) {
      eval_iterations_ = std::stoi(label);
      return;
    }
    known += (known.empty() ? "" : ", ") + d.label;
  }
  fail<ValueError>("attractor: no evaluation depth '", label, "' (choices: ", known, ")");
}

void Attractor::record(const solvers::FixedPointResult& solve, const Tensor& y, const Tensor& c,
                       std::shared_ptr<solvers::SolveStats> backward) {
  NoGrad no_grad;
  ++log_.solves;
  log_.fwd_iters += solve.iterations;
  log_.fwd_residual += solve.residual;
  log_.fwd_failures += solve.failed;
  log_.fwd_unconverged += !solve.converged && !solve.failed;
  log_.drift += (norm(y.detach() - c.detach()) / norm(c.detach())).item<double>();
  log_.backward.push_back(std::move(backward));
}

std::map<std::string, double> Attractor::take_step_metrics() {
  StepLog log = std::exchange(log_, {});
  if (log.solves == 0) return {};
  const double solves = double(log.solves);
  std::map<std::string, double> metrics{{"fp_solves", solves},
                                        {"fp_fwd_iters", log.fwd_iters / solves},
                                        {"fp_fwd_residual", log.fwd_residual / solves},
                                        {"fp_fwd_failures", double(log.fwd_failures)},
                                        {"fp_fwd_unconverged", double(log.fwd_unconverged)},
                                        {"fp_drift", log.drift / solves}};
  double iters = 0, residual = 0, failures = 0, backwards = 0;
  for (const auto& b : log.backward) {
    if (!backward_ran(*b)) continue;
    ++backwards;
    iters += b->iterations;
    residual += b->residual;
    failures += b->failed;
  }
  if (backwards > 0) {
    metrics["fp_bwd_iters"] = iters / backwards;
    metrics["fp_bwd_residual"] = residual / backwards;
    metrics["fp_bwd_failures"] = failures;
  }
  return metrics;
}

}  // namespace ponder::models
