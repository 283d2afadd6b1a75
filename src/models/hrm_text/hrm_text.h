// HRM-Text (arXiv 2605.20613): two weight-shared transformer stacks, a fast L_module and a slow
// H_module, iterated in nested cycles over the same tokens:
//
//   z_H = embed(x)·embedding_scale,  z_L = z_L_init (broadcast to every position)
//   repeat H_cycles:  repeat L_cycles: z_L = L_module(z_L + z_H)
//                     z_H = H_module(z_H + z_L)
//   logits = lm_head(z_H)
//
// Each module is a stack of PreNorm blocks with a parameter-free exit RMSNorm (MagicNorm: the
// state is unit-RMS after every recurrent call). Training backpropagates through only the last
// `bp` calls (BackpropSchedule), whose number grows during warm-up; the other calls run without
// recording anything. Parameter names follow transformers' HrmTextForCausalLM.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "models/language_model.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/transformer.h"

namespace ponder::models {

// Warm-up deep credit assignment: bp = bp_min + floor(progress·(bp_max − bp_min)) with
// progress = min(1, step / (warmup_ratio·total_steps)); `fixed` > 0 pins bp instead.
struct BackpropSchedule {
  int64_t bp_min = 2;
  int64_t bp_max = 5;
  double warmup_ratio = 0.2;
  int64_t fixed = 0;

  int64_t depth(int64_t step, int64_t total_steps) const;
};

// Which of the H_cycles·L_cycles L calls and H_cycles H calls record gradients at depth bp:
// H_bp = min(H_cycles, bp − 1) trailing H calls and L_bp = bp − H_bp trailing L calls.
struct GradientCalls {
  int64_t h_cycles, l_cycles, h_bp, l_bp;
  GradientCalls(int64_t h_cycles, int64_t l_cycles, int64_t bp);
  bool records_l_call(int64_t k) const { return k >= h_cycles * l_cycles - l_bp; }
  bool records_h_call(int64_t i) const { return i >= h_cycles - h_bp; }
};

struct HrmTextConfig {
  int64_t vocab_size = 256;
  int64_t dim = 1536;
  int64_t layers_per_stack = 16;
  int64_t heads = 12;
  int64_t head_dim = 0;           // 0 = dim / heads (128 at every published size)
  int64_t ffn_hidden = 0;         // 0 = nn::swiglu_hidden(dim): roundup_256(round(4·dim·2/3))
  int64_t h_cycles = 2;
  int64_t l_cycles = 3;
  double embedding_scale = 0.0;   // 0 = sqrt(dim)
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool prefix_lm = true;          // instruction tokens attend bidirectionally
  BackpropSchedule bp{};
  uint64_t seed = 0;              // initialisation

  int64_t resolved_head_dim() const;
  int64_t resolved_ffn_hidden() const;
  double resolved_embedding_scale() const;
  // The largest useful depth: every call of the recurrence.
  int64_t recurrent_calls() const { return h_cycles * l_cycles + h_cycles; }
};

// The first inconsistent field of a configuration (its recipe key) and what is wrong with it.
struct ConfigProblem {
  std::string key, message;
};
std::optional<ConfigProblem> find_problem(const HrmTextConfig& config);
// Throws ValueError with find_problem's message.
void validate(const HrmTextConfig& config);
// The block both stacks are made of.
nn::BlockConfig block_config(const HrmTextConfig& config);

// model.embed_tokens, model.L_module, model.H_module, model.z_L_init.
class HrmTextBody : public nn::Module {
 public:
  HrmTextBody(const HrmTextConfig& config, Generator& gen);
  std::shared_ptr<nn::Embedding> embed_tokens;
  std::shared_ptr<nn::Stack> L_module, H_module;
  Tensor z_L_init;  // [dim] buffer, the initial fast state
};

class HrmText : public LanguageModel {
 public:
  explicit HrmText(const HrmTextConfig& config);
  std::string family() const override { return "hrm_text"; }
  // z_H after the recurrence, and lm_head.
  Tensor features(const PackedBatch& batch) override;
  Tensor head(const Tensor& z_H) const override { return lm_head->forward(z_H); }
  Tensor head_weight() const override { return lm_head->plain_weight(); }
  // One KV cache per stack call per layer: H_cycles·(L_cycles + 1)·layers_per_stack, in call order
  // (transformers' cache slots). Every new token runs the whole recurrence.
  Tensor next_token_logits(const Tensor& tokens, DecodeCache& cache) override;
  void begin_step(int64_t step, int64_t total_steps) override;
  // The backprop depth (how many stack calls keep activations) and the cycles (how many calls).
  std::optional<int64_t> step_variant() const override { return (bp_ << 32) | (h_cycles_ << 16) | l_cycles_; }
  // Test-time compute: the recurrence at other H/L cycles, labelled "H<h>L<l>" — one cycle each,
  // two each, the trained cycles, and twice the H, the L or both — with the stack calls
  // (h·l + h) relative to the trained ones.
  std::vector<EvalDepth> eval_depths() const override;
  void set_eval_depth(const std::string& label) override;
  const HrmTextConfig& config() const { return config_; }
  // The backprop depth the next training forward uses.
  int64_t backprop_depth() const { return bp_; }
  void set_backprop_depth(int64_t bp);

  std::shared_ptr<HrmTextBody> model;
  std::shared_ptr<nn::Linear> lm_head;

 private:
  // z_H after the H/L recurrence over the tokens; `caches`: none, or one per attention call.
  Tensor recurrence(const Tensor& tokens, const Tensor& positions, const AttentionSpec& spec,
                    std::span<nn::KVCache> caches) const;

  HrmTextConfig config_;
  int64_t bp_;
  int64_t h_cycles_, l_cycles_;  // the depth the recurrence runs at: the trained one unless set_eval_depth
};

}  // namespace ponder::models
