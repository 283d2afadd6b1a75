#include "nn/transformer.h"

#include "ops/elementwise.h"

namespace ponder::nn {
namespace {
Tensor through(const TransformerBlock::BranchHook& hook, const Tensor& branch) {
  return hook ? hook(branch) : branch;
}
}  // namespace

TransformerBlock::TransformerBlock(const BlockConfig& config, Generator& gen) : config_(config) {
  PONDER_CHECK(config.attn.dim == config.mlp.dim, ValueError, "TransformerBlock: attention dim ", config.attn.dim,
               " differs from the MLP dim ", config.mlp.dim);
  self_attn = register_module("self_attn", std::make_shared<Attention>(config.attn, gen));
  mlp = register_module("mlp", std::make_shared<Mlp>(config.mlp, gen));
  input_layernorm = register_module("input_layernorm", make_norm(config.norm, config.attn.dim));
  post_attention_layernorm = register_module("post_attention_layernorm", make_norm(config.norm, config.attn.dim));
}

Tensor TransformerBlock::forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec,
                                 KVCache* cache) const {
  if (config_.post_norm) {
    Tensor h = input_layernorm->forward(x + through(attn_branch_hook, self_attn->forward(x, positions, spec, cache)));
    return post_attention_layernorm->forward(h + through(mlp_branch_hook, mlp->forward(h)));
  }
  Tensor h = x + through(attn_branch_hook, self_attn->forward(input_layernorm->forward(x), positions, spec, cache));
  return h + through(mlp_branch_hook, mlp->forward(post_attention_layernorm->forward(h)));
}

Stack::Stack(const BlockConfig& config, int64_t num_layers, std::optional<NormConfig> exit_norm, Generator& gen) {
  PONDER_CHECK(num_layers > 0, ValueError, "Stack: layers must be positive, got ", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList<TransformerBlock>>());
  for (int64_t i = 0; i < num_layers; ++i) layers->push_back(std::make_shared<TransformerBlock>(config, gen));
  if (exit_norm) norm = register_module("norm", make_norm(*exit_norm, config.attn.dim));
}

Tensor Stack::forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec,
                     std::span<KVCache> caches) const {
  PONDER_CHECK(caches.empty() || caches.size() == layers->size(), ValueError, "Stack: ", caches.size(),
               " KV caches for ", layers->size(), " layers");
  Tensor h = x;
  for (size_t i = 0; i < layers->size(); ++i) {
    h = (*layers)[i].forward(h, positions, spec, caches.empty() ? nullptr : &caches[i]);
  }
  return norm ? norm->forward(h) : h;
}

}  // namespace ponder::nn
