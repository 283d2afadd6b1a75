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
// Deliberation (inference, i_max = 1..4): a position runs the whole layer stack i_max times before
// it is committed. Iteration 1 blends with the states s_{t−1} the previous position committed;
// every later one with the states the position itself produced in the iteration before, in every
// layer, so deeper layers see the deliberated lower ones. Each iteration overwrites the position's
// keys and values in the KV cache (later positions attend to the last iteration's), and the
// deliberation stops early once all layers' states change by less than deliberation_tol
// (relative). Positions that attend to each other bidirectionally — a PrefixLM prompt, a
// bidirectional sample — cannot run one at a time, so they deliberate as one block: iteration 1 is
// the plain recurrence across the block, later ones feed each position its own previous states.
// Every causal position is a block of its own. With i_max = 1 all of this is plain sequential mode.
//
// Parameter names are the baseline's (so a LlamaForCausalLM export loads as the backbone) plus
// blend_theta [layers, dim] and PEFT-style lora_A/lora_B under adapted projections. `ponder export`
// merges the adapters and writes a LlamaForCausalLM directory whose config.json has an "sst"
// section: transformers loads the backbone alone (ignoring blend_theta); the recurrence needs ponder.
//
// Not around HRM-Text's stacks (issue 8 asks for it "where it fits"; it does not fit cleanly).
// HRM-Text calls its two weight-shared stacks H_cycles·(L_cycles + 1) times per token, so "a
// layer's state from the previous position" has no single meaning: one state per stack layer
// would be overwritten by every call of the same position, and the two-pass scan would have to
// unroll the whole nested cycle schedule for pass 1; one state per call and layer would tie
// blend_theta's shape to the cycle schedule, leaving HRM-Text's other evaluation depths (more
// H/L cycles) with calls that have no trained blend. Its cycles already are a per-position latent
// iteration (what deliberation adds here), its exit RMSNorm rescales every call's output that a
// state would carry, and HrmTextForCausalLM exports have no place for blends. Doing it would make
// a new recurrent family, not a wrapper, so `sst` wraps the baseline only.
#pragma once

#include <functional>
#include <map>
#include <span>
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
  int64_t deliberation = 1;          // i_max: stack iterations per position at inference (1–4)
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

// A layer's outputs h' and states s, both [N, dim].
struct Stream {
  Tensor output, states;
};

// The blend/FFN half of one layer for rows a [N, dim] whose previous states are `previous` [N, dim]
// (pass 2 of two-pass mode, and deliberation after its first iteration).
Stream stream_step(const Tensor& a, const Tensor& alpha, const Tensor& previous, const StateFfn& ffn,
                   bool state_is_output);

// Sequential mode of one layer: a [N, dim], alpha [dim], starts[t] != 0 where a sample begins.
// `initial` ([1, dim]) is the state before position 0 (undefined = zeros).
Stream stream_sequential(const Tensor& a, const Tensor& alpha, const std::vector<uint8_t>& starts, const StateFfn& ffn,
                         bool state_is_output, const Tensor& initial = {});

// Two-pass mode of one layer (same inputs; starts as a u8 [N] tensor). `pass1_grad` records
// pass 1 too (the model never does; the gradient check of the whole approximation does).
Tensor stream_two_pass(const Tensor& a, const Tensor& alpha, const Tensor& starts, const StateFfn& ffn,
                       bool state_is_output, bool pass1_grad = false);

class Sst : public Transformer {
 public:
  explicit Sst(const SstConfig& config);
  std::string family() const override { return "sst"; }
  // Training: two_pass or sequential. Evaluation: sequential, and above depth 1 every sample is
  // deliberated exactly as next_token_logits decodes it.
  Tensor features(const PackedBatch& batch) override;
  // The prompt is one block (a causal prompt deliberating above depth 1: one block per token);
  // every later token continues each layer's state from cache.states (sized on the prompt).
  Tensor next_token_logits(const Tensor& tokens, DecodeCache& cache) override;
  // Deliberation depths "1", "2", "4"; compute is their stack passes over the trained depth's.
  std::vector<EvalDepth> eval_depths() const override;
  void set_eval_depth(const std::string& label) override;
  // Its stream walks the samples on the host (and its adapters may draw dropout): not recordable.
  std::optional<int64_t> step_variant() const override { return std::nullopt; }
  // "sst_deliberation_iters": the mean iterations a block ran since the last call (early stops
  // show as less than the depth); empty when nothing deliberated (depth 1).
  std::map<std::string, double> take_step_metrics() override;
  const SstConfig& sst_config() const { return config_; }

  // α_l [dim] from blend_theta.
  Tensor alpha(int64_t layer) const;
  // Every parameter name that is not the backbone's (blend_theta and the LoRA adapters).
  static bool is_sst_parameter(const std::string& name);
  // Folds every LoRA adapter into its projection (export: the backbone becomes a plain Llama).
  void merge_adapters();

  Tensor blend_theta;  // [layers, dim], zeros: α starts halfway between α_min and α_max

 private:
  // h [N, dim] of a packed batch through every layer (each sample starts from zero states) and the
  // final norm.
  Tensor stack(const Tensor& h, const Tensor& positions, const AttentionSpec& spec) const;
  // One deliberation block x [n, dim] continuing the sequence that `caches` and `states` (one per
  // layer) hold, through the stack up to iterations_ times; leaves the last iteration's keys,
  // values and states committed there. Returns that iteration's output before the final norm.
  Tensor deliberate(const Tensor& x, const Tensor& positions, const AttentionSpec& spec, std::span<nn::KVCache> caches,
                    std::vector<Tensor>& states);
  // The normed outputs of `tokens` continuing the sequence `cache` holds: the first `block` of
  // them deliberate together (attending by cache.prompt_mask when they open it), then each later
  // one alone.
  Tensor continue_sequence(const Tensor& tokens, int64_t block, DecodeCache& cache);
  // features() above depth 1: each sample of the batch decoded on its own.
  Tensor deliberated_features(const PackedBatch& batch);
  void add_adapters();

  SstConfig config_;
  int64_t iterations_;  // the deliberation depth now in use
  int64_t deliberated_blocks_ = 0, deliberation_iterations_ = 0;  // since take_step_metrics
};

}  // namespace ponder::models
