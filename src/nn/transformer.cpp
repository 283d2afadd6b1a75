#include "nn/transformer.h"

#include <algorithm>

#include "autograd/checkpoint.h"
#include "autograd/grad_mode.h"
#include "nn/linear.h"
#include "ops/elementwise.h"

namespace ponder::nn {
namespace {
Tensor through(const TransformerBlock::BranchHook& hook, const Tensor& branch) {
  return hook ? hook(branch) : branch;
}

// The adapter-dropout streams used inside `region`, which a recomputation must replay.
std::vector<Generator*> dropout_generators(Module& region) {
  std::vector<Generator*> generators;
  for (auto& [name, m] : region.named_modules()) {
    const auto* linear = dynamic_cast<const Linear*>(m);
    Generator* g = linear ? linear->dropout_generator() : nullptr;
    if (g && std::find(generators.begin(), generators.end(), g) == generators.end()) generators.push_back(g);
  }
  return generators;
}

// The pending sum made and normalised by `norm`, in one fused pass where the norm has one.
Norm::SumAndNormed add_and_norm(const Norm& norm, const PendingSum& x) {
  if (!x.pending.defined()) return {x.stream, norm.forward(x.stream)};
  return norm.add_forward(x.stream, x.pending);
}
}  // namespace

Recompute parse_recompute(const std::string& name) {
  if (name == "none") return Recompute::none;
  if (name == "elementwise") return Recompute::elementwise;
  if (name == "mlp") return Recompute::mlp;
  if (name == "attention_mlp") return Recompute::attention_mlp;
  fail<ValueError>("recompute: unknown value \"", name, "\" (choices: none, elementwise, mlp, attention_mlp)");
}

void set_recompute(Module& model, Recompute recompute) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* block = dynamic_cast<TransformerBlock*>(m)) block->set_recompute(recompute);
  }
}

// A part that is not recomputed whole has its products remade (a checkpointed region would remake
// them a second time).
void TransformerBlock::set_recompute(Recompute recompute) {
  recompute_ = recompute;
  mlp->set_recompute_activation(recompute == Recompute::elementwise);
  self_attn->set_recompute_gated_output(recompute == Recompute::elementwise || recompute == Recompute::mlp);
}

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
    const Tensor attn_out = through(attn_branch_hook, attention_branch(x.value(), positions, spec, cache));
    Tensor h = input_layernorm->forward(x.value() + attn_out);
    return {post_attention_layernorm->forward(h + through(mlp_branch_hook, mlp_branch(h))), {}};
  }
  const auto [h, attn_in] = add_and_norm(*input_layernorm, x);
  const Tensor attn_out = through(attn_branch_hook, attention_branch(attn_in, positions, spec, cache));
  const auto [h2, mlp_in] = post_attention_layernorm->add_forward(h, attn_out);
  return {h2, through(mlp_branch_hook, mlp_branch(mlp_in))};
}

// Without a graph to record (no grad, or generation with a KV cache) there is nothing to recompute.
Tensor TransformerBlock::attention_branch(const Tensor& in, const Tensor& positions, const AttentionSpec& spec,
                                          KVCache* cache) const {
  if (recompute_ != Recompute::attention_mlp || cache || !autograd::is_grad_enabled()) {
    return self_attn->forward(in, positions, spec, cache);
  }
  auto region = [attn = self_attn, positions, spec](const TensorList& x) -> TensorList {
    return {attn->forward(x[0], positions, spec)};
  };
  return autograd::checkpoint(region, {in}, dropout_generators(*self_attn))[0];
}

Tensor TransformerBlock::mlp_branch(const Tensor& in) const {
  if (recompute_ < Recompute::mlp || !autograd::is_grad_enabled()) return mlp->forward(in);
  auto region = [m = mlp](const TensorList& x) -> TensorList { return {m->forward(x[0])}; };
  return autograd::checkpoint(region, {in}, dropout_generators(*mlp))[0];
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
