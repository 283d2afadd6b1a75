// State Stream Transformer v2 (arXiv 2605.00206) around the Llama-style baseline. Each layer l
// keeps a latent state that flows from one position to the next (our formulation, issue 8):
//
//   a_t  = h_t + Attn(norm1(h_t))                      post-attention residual
//   b_t  = (1 − α_l) ⊙ a_t + α_l ⊙ s_{t−1}             blend, α_l = α_min + (α_max − α_min)·sigmoid(θ_l)
//   m_t  = FFN(norm2(b_t)),  h'_t = b_t + m_t           layer output
//   s_t  = m_t  (or h'_t with state_is_output),  s_{−1} = 0 at every sample start
//
// The attention of a layer reads only that layer's inputs, never its states, so a_t is computed
// for all positions at once; only the blend/FFN part recurs along the sequence.
//   sequential: that recurrence position by position (exact; evaluation and generation);
//   two_pass:   s⁰ = the layer's state with α = 0 (pass 1, no gradient), ŝ = linear_scan(s⁰, α),
//               then the blend with ŝ_{t−1} for all positions at once (pass 2) — off the exact
//               recurrence by O(α²) (training).
// Deliberation (inference): each position iterates its blend/FFN i_max times per layer, feeding
// the state it just produced back as its previous state, optionally stopping early when the
// state's relative change falls below a tolerance; the last iteration's state is committed.
// Parameter names are the baseline's (so a LlamaForCausalLM export loads as the backbone) plus
// blend_theta [layers, dim] and PEFT-style lora_A/lora_B under adapted projections.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/hrm_text/hrm_text.h"  // ConfigProblem
#include "models/transformer/transformer.h"

namespace ponder::models {

enum class SstMode { two_pass, sequential };

struct SstConfig : TransformerConfig {
  double alpha_min = 0.015;
  double alpha_max = 0.10;
  bool state_is_output = false;  // s_t = h'_t instead of m_t
  SstMode mode = SstMode::two_pass;  // how training forwards run (evaluation is always sequential)
  int64_t deliberation = 1;          // i_max: blend/FFN iterations per position at inference (1–4)
  double deliberation_tol = 0.0;     // stop deliberating below this relative state change; 0 = never
  // Co-training: freeze every backbone tensor (embeddings, blocks, norm, LM head) so that only
  // blend_theta and the LoRA adapters train.
  bool freeze_backbone = false;
  int64_t lora_rank = 0;  // 0 = no adapters
  double lora_alpha = 16.0;
  std::vector<std::string> lora_targets = {"q_proj", "v_proj"};  // Linear children of a block
  std::vector<int64_t> lora_layers;  // empty = every layer
  // A ponder run/checkpoint or a LlamaForCausalLM export directory whose weights initialise the
  // backbone. Read by the training system (train/backbone.h), never by the model.
  std::string backbone;
};

// The first inconsistent field (its recipe key) and what is wrong with it.
std::optional<ConfigProblem> find_problem(const SstConfig& config);
void validate(const SstConfig& config);  // ValueError with find_problem's message

// The recurring half of one layer: b -> m = FFN(norm2(b)).
using StateFfn = std::function<Tensor(const Tensor& b)>;

// Options of the exact recurrence over a [N, dim] post-attention residual.
struct StreamOptions {
  bool state_is_output = false;
  int64_t iterations = 1;  // deliberation i_max
  double tolerance = 0.0;  // early stop of the deliberation
};

// Sequential mode of one layer: a [N, dim], alpha [dim], starts[t] != 0 where a sample begins.
// `state` ([1, dim]) is the state before position 0 (undefined = zeros) and becomes the state
// after the last position (what generation carries to the next token). Returns h' [N, dim].
Tensor stream_sequential(const Tensor& a, const Tensor& alpha, const std::vector<uint8_t>& starts, const StateFfn& ffn,
                         const StreamOptions& options, Tensor& state);

// Two-pass mode of one layer (same inputs; starts as a u8 [N] tensor). `pass1_grad` records
// pass 1 too (the model never does; the gradient check of the whole approximation does).
Tensor stream_two_pass(const Tensor& a, const Tensor& alpha, const Tensor& starts, const StateFfn& ffn,
                       bool state_is_output, bool pass1_grad = false);

class Sst : public Transformer {
 public:
  explicit Sst(const SstConfig& config);
  std::string family() const override { return "sst"; }
  Tensor logits(const PackedBatch& batch) override;
  // The prompt runs sequentially; every later token continues each layer's state from
  // cache.states (sized on the prompt).
  Tensor next_token_logits(const Tensor& tokens, DecodeCache& cache) override;
  // Deliberation depths "1", "2", "4"; compute counts the FFN iterations against one attention call.
  std::vector<EvalDepth> eval_depths() const override;
  void set_eval_depth(const std::string& label) override;
  const SstConfig& sst_config() const { return config_; }

  // α_l [dim] from blend_theta.
  Tensor alpha(int64_t layer) const;
  // Every parameter name that is not the backbone's (blend_theta and the LoRA adapters).
  static bool is_sst_parameter(const std::string& name);

  Tensor blend_theta;  // [layers, dim], zeros: α starts halfway between α_min and α_max

 private:
  // h [N, dim] through every layer and the final norm; `states`: none (training/evaluation, the
  // batch's samples start from zero) or one per layer carried along one generated sequence.
  Tensor stack(const Tensor& h, const Tensor& positions, const AttentionSpec& spec, std::span<nn::KVCache> caches,
               std::vector<Tensor>* states) const;
  void add_adapters();

  SstConfig config_;
  int64_t iterations_;  // the deliberation depth now in use
};

}  // namespace ponder::models
