// Attractor models (arXiv 2605.12466, "Solve the Loop"): a backbone proposes output embeddings c,
// and a weight-tied attractor head refines them to the fixed point of
//
//   f(y, c) = FPHead(y + c) − y,   y* = f(y*, c),   solved from y0 = detach(c)
//   logits  = lm_head(rms(y*))·logit_scale            (lm_head tied to the token embedding)
//
// The forward solve (Picard or Anderson, solvers/fixed_point.h) runs under NoGrad and keeps no
// iterates; gradients come from implicit differentiation (solvers/implicit.h) through one retained
// application of f, so training memory does not grow with the number of iterations. A solve that
// does not converge is counted in take_step_metrics(), never thrown.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/attractor/fp_head.h"
#include "models/language_model.h"
#include "nn/embedding.h"
#include "solvers/fixed_point.h"
#include "solvers/implicit.h"

namespace ponder::models {

struct AttractorConfig {
  int64_t vocab_size = 256;
  int64_t dim = 256;
  int64_t heads = 4;
  int64_t ffn_hidden = 0;         // 0 = 4·dim (ReLU² MLP)
  int64_t n_backbone_layers = 2;
  int64_t n_fp_blocks = 1;
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  // How tokens attend (the batch's mask must match; the recipe enforces it): causal for language
  // modelling, prefix_lm or bidirectional for puzzles read as a whole.
  AttentionMask attention = AttentionMask::causal;
  double gamma_init = 0.5;        // LayerScale gates of the head, in (0, gamma_max]
  double gamma_max = 1.0;
  double logit_scale = 1.0;
  solvers::FixedPointOptions solver{
      .kind = solvers::SolverKind::anderson, .tol = 1e-3, .min_iter = 2, .max_iter = 16};
  // backward.adjoint's kind follows backward.mode; its m, lam and beta are the forward solver's.
  solvers::BackwardOptions backward{};
  uint64_t seed = 0;              // initialisation

  int64_t resolved_ffn_hidden() const { return ffn_hidden > 0 ? ffn_hidden : 4 * dim; }
};

// The first inconsistent field of a configuration (its recipe key) and what is wrong with it.
struct AttractorProblem {
  std::string key, message;
};
std::optional<AttractorProblem> find_problem(const AttractorConfig& config);
// Throws ValueError with find_problem's message.
void validate(const AttractorConfig& config);
// The block of the backbone and of the head: PreNorm, RMSNorm, QK-norm, RoPE, MHA, ReLU² MLP.
nn::BlockConfig block_config(const AttractorConfig& config);

// model.embed_tokens, model.backbone (blocks + exit RMSNorm), model.fp_head.
class AttractorBody : public nn::Module {
 public:
  AttractorBody(const AttractorConfig& config, Generator& gen);
  std::shared_ptr<nn::Embedding> embed_tokens;
  std::shared_ptr<nn::Stack> backbone;
  std::shared_ptr<FPHead> fp_head;
};

class Attractor : public LanguageModel {
 public:
  explicit Attractor(const AttractorConfig& config);
  std::string family() const override { return "attractor"; }
  // head_input(y*), and the embedding as a plain LM head.
  Tensor features(const PackedBatch& batch) override;
  Tensor head(const Tensor& features) const override;
  Tensor head_weight() const override;
  // No KV cache: a cached fixed point would need the head's iteration over the cached keys, so
  // every call re-solves the whole sequence (kept in cache.tokens). Quadratic, but exact.
  Tensor next_token_logits(const Tensor& tokens, DecodeCache& cache) override;
  // "0" (the backbone's proposal c alone), "1", "2", "4" head iterations (those below max_iter),
  // and "full" (the trained solve); compute is relative to a solve that runs max_iter.
  std::vector<EvalDepth> eval_depths() const override;
  void set_eval_depth(const std::string& label) override;
  // Means over the solves since the last call (training forwards only): fp_fwd_iters,
  // fp_fwd_residual, fp_bwd_iters, fp_bwd_residual, fp_drift (‖y*−c‖/‖c‖); counts: fp_solves,
  // fp_fwd_failures / fp_bwd_failures (gave up on NaN or blow-up), fp_fwd_unconverged (hit max_iter).
  std::map<std::string, double> take_step_metrics() override;
  const AttractorConfig& config() const { return config_; }

  // The backbone's proposal c [N, dim] and the refined y [N, dim] at the current depth; the solve
  // treats each of the batch's `rows` as one sample.
  Tensor context(const Tensor& tokens, const Tensor& positions, const AttentionSpec& spec) const;
  Tensor refine(const Tensor& c, const Tensor& positions, const AttentionSpec& spec, int64_t rows);
  // rms(y)·logit_scale: the head's input, so that lm_head(rms(y))·logit_scale is a plain product
  // with the embedding.
  Tensor head_input(const Tensor& y) const;

  std::shared_ptr<AttractorBody> model;

 private:
  struct StepLog {
    int64_t solves = 0, fwd_failures = 0, fwd_unconverged = 0;
    double fwd_iters = 0, fwd_residual = 0, drift = 0;
    std::vector<std::shared_ptr<solvers::SolveStats>> backward;  // filled in by backward
  };
  void record(const solvers::FixedPointResult& solve, const Tensor& y, const Tensor& c,
              std::shared_ptr<solvers::SolveStats> backward);

  AttractorConfig config_;
  int eval_iterations_ = -1;  // head iterations at the eval depth; -1 = the trained solve
  StepLog log_;
};

}  // namespace ponder::models
