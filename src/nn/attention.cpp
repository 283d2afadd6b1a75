#include "nn/attention.h"

#include <cmath>

#include "autograd/saved_tensor.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/fused.h"
#include "ops/view.h"

namespace ponder::nn {

using autograd::SavedTensor;

namespace {
// Fills in the defaults (kv_heads = heads, head_dim = dim / heads) and checks the result.
AttentionConfig resolved(AttentionConfig c) {
  PONDER_CHECK(c.dim > 0 && c.heads > 0, ValueError, "Attention: dim and heads must be positive, got dim ", c.dim,
               ", heads ", c.heads);
  if (c.head_dim == 0) {
    PONDER_CHECK(c.dim % c.heads == 0, ValueError, "Attention: heads ", c.heads, " do not divide dim ", c.dim,
                 " (set head_dim explicitly otherwise)");
    c.head_dim = c.dim / c.heads;
  }
  if (c.kv_heads == 0) c.kv_heads = c.heads;
  PONDER_CHECK(c.head_dim > 0 && c.kv_heads > 0, ValueError,
               "Attention: head_dim and kv_heads must be positive, got ", c.head_dim, " and ", c.kv_heads);
  PONDER_CHECK(c.heads % c.kv_heads == 0, ValueError, "Attention: kv_heads ", c.kv_heads, " do not divide heads ",
               c.heads);
  PONDER_CHECK(std::isfinite(c.rope_theta) && c.rope_theta >= 0, ValueError,
               "Attention: rope_theta must be non-negative (0 = no RoPE), got ", c.rope_theta);
  PONDER_CHECK(c.rope_theta == 0 || c.head_dim % 2 == 0, ValueError, "Attention: RoPE needs an even head_dim, got ",
               c.head_dim);
  return c;
}
}  // namespace

Attention::Attention(const AttentionConfig& config, Generator& gen) : config_(resolved(config)) {
  const AttentionConfig& c = config_;
  const int64_t q_width = c.heads * c.head_dim, kv_width = c.kv_heads * c.head_dim;
  q_proj = register_module("q_proj", std::make_shared<Linear>(c.dim, q_width, gen, c.bias));
  k_proj = register_module("k_proj", std::make_shared<Linear>(c.dim, kv_width, gen, c.bias));
  v_proj = register_module("v_proj", std::make_shared<Linear>(c.dim, kv_width, gen, c.bias));
  o_proj = register_module("o_proj", std::make_shared<Linear>(q_width, c.dim, gen, c.bias));
  if (c.output_gate) gate_proj = register_module("gate_proj", std::make_shared<Linear>(c.dim, q_width, gen, c.bias));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", std::make_shared<RMSNorm>(c.head_dim, c.qk_norm_eps, c.qk_norm_weighted));
    k_norm = register_module("k_norm", std::make_shared<RMSNorm>(c.head_dim, c.qk_norm_eps, c.qk_norm_weighted));
  }
}

Tensor Attention::forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec, KVCache* cache) const {
  const AttentionConfig& c = config_;
  PONDER_CHECK(x.dim() == 2 && x.size(1) == c.dim, ShapeError, "Attention: x must be [N, ", c.dim, "], got ",
               describe(x));
  const int64_t n = x.size(0);
  std::vector<const Linear*> projections{q_proj.get(), k_proj.get(), v_proj.get()};
  if (gate_proj) projections.push_back(gate_proj.get());
  const TensorList projected = forward_shared_input(x, projections);
  Tensor q = projected[0].view({n, c.heads, c.head_dim});
  Tensor k = projected[1].view({n, c.kv_heads, c.head_dim});
  Tensor v = projected[2].view({n, c.kv_heads, c.head_dim});
  if (q_norm) {
    q = q_norm->forward(q);
    k = k_norm->forward(k);
  }
  const Tensor a = attend(q, k, v, positions, spec, cache).reshape({n, c.heads * c.head_dim});
  if (!gate_proj) return o_proj->forward(a);
  const Tensor gate = projected[3], gated = gated_output(gate, a);
  if (!recompute_gated_output_) return o_proj->forward(gated);
  // The gate's backward keeps gate and a anyway.
  return o_proj->forward_recomputing_input(
      gated, [gate = SavedTensor(gate), a = SavedTensor(a)] { return gated_output(gate.get("attention"), a.get("attention")); });
}

Tensor Attention::attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions,
                         const AttentionSpec& spec, KVCache* cache) const {
  const double scale = 1.0 / std::sqrt(double(config_.head_dim)), theta = config_.rope_theta;
  if (!cache) return theta > 0 ? rotary_attention(q, k, v, positions, theta, spec, scale) : attention(q, k, v, spec, scale);
  // The cache keeps rotated keys: each new token's key is rotated once, by its own position.
  Tensor qr = q, kr = k;
  if (theta > 0) {
    RopeQK rotated = rope_qk(q, k, positions, theta);
    qr = rotated.q;
    kr = rotated.k;
  }
  if (cache->length() == 0) {
    PONDER_CHECK(spec.cu_seqlens.defined() && spec.cu_seqlens.numel() == 2, ValueError,
                 "Attention: a KV cache holds one sequence, so the prompt must be one sample");
    cache->append(kr, v);
    return attention(qr, kr, v, spec, scale);
  }
  PONDER_CHECK(qr.size(0) == 1, ValueError, "Attention: after the prompt, a KV cache takes one token at a time, got ",
               qr.size(0));
  cache->append(kr, v);
  return attend_to_cache(qr, *cache, scale);
}

}  // namespace ponder::nn
