// Multi-head self-attention over packed samples (HF Llama / Qwen3 parameter names), with grouped
// KV heads, RoPE, QK-norm and a sigmoid output gate as options.
#pragma once

#include <memory>

#include "backend/attention_spec.h"
#include "nn/kv_cache.h"
#include "nn/linear.h"
#include "nn/norm.h"

namespace ponder::nn {

struct AttentionConfig {
  int64_t dim = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;     // 0 = heads; must divide heads (grouped-query attention)
  int64_t head_dim = 0;     // 0 = dim / heads (then heads must divide dim)
  double rope_theta = 0.0;  // 0 = no rotary embedding
  bool output_gate = false; // o_proj(sigmoid(gate_proj(x)) * attn)
  bool qk_norm = false;     // RMSNorm over head_dim on q and k, before RoPE
  bool qk_norm_weighted = true;
  double qk_norm_eps = 1e-6;
  bool bias = false;        // on every projection
};

// Children: q_proj [heads*head_dim, dim], k_proj and v_proj [kv_heads*head_dim, dim],
// o_proj [dim, heads*head_dim], then gate_proj (like q_proj) with output_gate, then q_norm and
// k_norm (RMSNorm over head_dim) with qk_norm. Scores are scaled by 1/sqrt(head_dim).
class Attention : public Module {
 public:
  Attention(const AttentionConfig& config, Generator& gen);

  // x [N, dim], positions [N] (i32/i64, used by RoPE), spec: the packing and the mask -> [N, dim].
  // With a cache, x is one sequence being generated: an empty cache takes the prompt (spec holds
  // one sample) and keeps its keys and values; a filled one takes the next token alone, which
  // attends to every cached token and itself (spec is not read).
  Tensor forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec, KVCache* cache = nullptr) const;

  // The config with kv_heads and head_dim resolved.
  const AttentionConfig& config() const { return config_; }
  // Whether backward makes the gated output (o_proj's input) again from the gate and the attention
  // output instead of keeping it (with output_gate).
  void set_recompute_gated_output(bool on) { recompute_gated_output_ = on; }

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj, gate_proj;
  std::shared_ptr<RMSNorm> q_norm, k_norm;

 private:
  // Scaled dot-product attention of q over k and v (both rotated by `positions` when the config
  // has RoPE), or over the cache's keys and values.
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions, const AttentionSpec& spec,
                KVCache* cache) const;

  AttentionConfig config_;
  bool recompute_gated_output_ = false;
};

}  // namespace ponder::nn
