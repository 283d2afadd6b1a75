#include "models/transformer/transformer.h"

#include <cmath>

#include "nn/init.h"
#include "ops/linear.h"
#include "ops/view.h"

namespace ponder::models {

nn::BlockConfig block_config(const TransformerConfig& c) {
  PONDER_CHECK(c.vocab_size > 0 && c.dim > 0 && c.layers > 0 && c.heads > 0, ValueError,
               "transformer: vocab_size, dim, layers and heads must be positive");
  nn::BlockConfig b;
  b.attn.dim = c.dim;
  b.attn.heads = c.heads;
  b.attn.kv_heads = c.kv_heads;
  b.attn.head_dim = c.head_dim;
  b.attn.rope_theta = c.rope_theta;
  b.attn.output_gate = c.attention_output_gate;
  b.mlp.dim = c.dim;
  b.mlp.hidden = c.ffn_hidden > 0 ? c.ffn_hidden : nn::swiglu_hidden(c.dim);
  b.mlp.activation = nn::Activation::swiglu;
  b.norm = {nn::NormKind::rms, c.norm_eps, /*weighted=*/true};
  return b;
}

TransformerBody::TransformerBody(const TransformerConfig& c, Generator& gen)
    : nn::Stack(block_config(c), c.layers, nn::NormConfig{nn::NormKind::rms, c.norm_eps, true}, gen) {
  embed_tokens = register_module("embed_tokens", std::make_shared<nn::Embedding>(c.vocab_size, c.dim, gen));
}

Transformer::Transformer(const TransformerConfig& config) : config_(config) {
  Generator gen(config.seed);
  model = register_module("model", std::make_shared<TransformerBody>(config, gen));
  if (!config.tie_embeddings) {
    lm_head = register_module("lm_head", std::make_shared<nn::Linear>(config.dim, config.vocab_size, gen));
  }
  // Scaled output projections keep the residual stream's variance from growing with depth.
  const double residual_std = 1.0 / std::sqrt(double(config.dim) * 2.0 * double(config.layers));
  nn::init_matching(*this, "o_proj.weight", [&](const Tensor& w) { nn::trunc_normal_(w, residual_std, gen); });
  nn::init_matching(*this, "down_proj.weight", [&](const Tensor& w) { nn::trunc_normal_(w, residual_std, gen); });
}

Tensor Transformer::head(const Tensor& x) const {
  return lm_head ? lm_head->forward(x) : linear(x, model->embed_tokens->weight);
}

Tensor Transformer::head_weight() const { return lm_head ? lm_head->plain_weight() : model->embed_tokens->weight; }

Tensor Transformer::features(const PackedBatch& batch) {
  return model->forward(model->embed_tokens->forward(batch.tokens), batch.positions, batch.attn);
}

Tensor Transformer::next_token_logits(const Tensor& tokens, DecodeCache& cache) {
  const CachedStep step = begin_cached_step(tokens, cache, config_.layers);
  const Tensor x = model->forward(model->embed_tokens->forward(tokens), step.positions, step.spec, cache.attention);
  return head(narrow(x, 0, x.size(0) - 1, 1));
}

}  // namespace ponder::models
