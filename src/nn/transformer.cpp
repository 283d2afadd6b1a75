#include "nn/transformer.h"

#include "ops/elementwise.h"

namespace ponder::nn {
namespace {
Tensor through(const TransformerBlock::BranchHook& hook, const Tensor& branch) {
  return hook ? hook(branch) : branch;
}

// The pending sum made and normalised by `norm`, in one fused pass where the norm has one.
Norm::SumAndNormed add_and_norm(const Norm& norm, const PendingSum& x) {
  if (!x.pending.defined()) return {x.stream, norm.forward(x.stream)};
  return norm.add_forward(x.stream, x.pending);
}
}  // namespace

Tensor PendingSum::value() const { return pending.defined() ? stream + pending : stream; }

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
  return forward(PendingSum{x, {}}, positions, spec, cache).value();
}

PendingSum TransformerBlock::forward(const PendingSum& x, const Tensor& positions, const AttentionSpec& spec,
                                     KVCache* cache) const {
  if (config_.post_norm) {
    Tensor h = input_layernorm->forward(x.value() + through(attn_branch_hook, self_attn->forward(x.value(), positions, spec, cache)));
    return {post_attention_layernorm->forward(h + through(mlp_branch_hook, mlp->forward(h))), {}};
  }
  const auto [h, attn_in] = add_and_norm(*input_layernorm, x);
  const Tensor attn_out = through(attn_branch_hook, self_attn->forward(attn_in, positions, spec, cache));
  const auto [h2, mlp_in] = post_attention_layernorm->add_forward(h, attn_out);
  return {h2, through(mlp_branch_hook, mlp->forward(mlp_in))};
}

Stack::Stack(const BlockConfig& config, int64_t num_layers, std::optional<NormConfig> exit_norm, Generator& gen) {
  PONDER_CHECK(num_layers > 0, ValueError, "Stack: layers must be positive, got ", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList<TransformerBlock>>());
  for (int64_t i = 0; i < num_layers; ++i) layers->push_back(std::make_shared<TransformerBlock>(config, gen));
  if (exit_norm) norm = register_module("norm", make_norm(*exit_norm, config.attn.dim));
}

Tensor Stack::forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec,
                     std::span<KVCache> caches) const {
  return forward(PendingSum{x, {}}, positions, spec, caches);
}

Tensor Stack::forward(const PendingSum& x, const Tensor& positions, const AttentionSpec& spec,
                     std::span<KVCache> caches) const {
  PONDER_CHECK(caches.empty() || caches.size() == layers->size(), ValueError, "Stack: ", caches.size(),
               " KV caches for ", layers->size(), " layers");
  PendingSum h = x;
  for (size_t i = 0; i < layers->size(); ++i) {
    h = (*layers)[i].forward(h, positions, spec, caches.empty() ? nullptr : &caches[i]);
  }
  return norm ? add_and_norm(*norm, h).normed : h.value();
}

}  // namespace ponder::nn
