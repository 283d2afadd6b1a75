// A transformer block (attention + MLP with residuals, pre- or post-norm) and a stack of them.
// HF Llama parameter names: layers.{i}.self_attn.*, layers.{i}.mlp.*, layers.{i}.input_layernorm.*,
// layers.{i}.post_attention_layernorm.*, norm.*.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "nn/attention.h"
#include "nn/mlp.h"
#include "nn/norm.h"

namespace ponder::nn {

// What a block recomputes in backward instead of keeping, each level including the one before:
// nothing; the cheap elementwise products that feed a projection (the MLP's activation output and
// the attention's gated output: one elementwise pass each); the MLP's internals (activation
// checkpointing: it keeps only its input and runs its gate/up products again); the attention's
// internals too (q/k/v, RoPE, the attention output and gate: one more forward of the attention).
enum class Recompute { none, elementwise, mlp, attention_mlp };
Recompute parse_recompute(const std::string& name);  // "none" | "elementwise" | "mlp" | "attention_mlp"

struct BlockConfig {
  AttentionConfig attn{};
  MlpConfig mlp{};
  NormConfig norm{};
  bool post_norm = false;
};

// A residual stream whose last addition is still to be made: stream + pending (pending undefined:
// nothing pending). Pre-norm blocks hand it on so that each addition runs fused with the norm
// that follows it (Norm::add_forward) instead of as a pass of its own.
struct PendingSum {
  Tensor stream, pending;
  Tensor value() const;  // stream + pending
};

// Pre-norm:  x = x + attn(norm1(x));  x = x + mlp(norm2(x)).
// Post-norm: x = norm1(x + attn(x));  x = norm2(x + mlp(x)).
// norm1 is the child input_layernorm, norm2 post_attention_layernorm (HF Llama names; a
// parameter-free norm registers nothing).
class TransformerBlock : public Module {
 public:
  TransformerBlock(const BlockConfig& config, Generator& gen);

  // x [N, dim], positions [N], spec: the packing and the mask -> [N, dim]. `cache`: the attention's
  // KV cache when x is one sequence being generated (Attention::forward).
  Tensor forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec, KVCache* cache = nullptr) const;
  // The same on a pending sum, leaving the MLP branch's addition pending (pre-norm blocks; a
  // post-norm block makes every addition itself).
  PendingSum forward(const PendingSum& x, const Tensor& positions, const AttentionSpec& spec,
                     KVCache* cache = nullptr) const;
  const BlockConfig& config() const { return config_; }
  void set_recompute(Recompute recompute);

  // Optional per-branch scaling (e.g. a learned per-channel gate): when set, a branch's output
  // (attn(...) or mlp(...) above) goes through the hook before it joins the residual stream.
  // A hook should reach its parameters through their module at call time rather than capture a
  // Tensor handle, which Module::to replaces.
  using BranchHook = std::function<Tensor(const Tensor& branch)>;
  BranchHook attn_branch_hook, mlp_branch_hook;

  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<Mlp> mlp;
  std::shared_ptr<Norm> input_layernorm, post_attention_layernorm;

 private:
  // The branches before their hooks, recomputed in backward when recompute_ asks for it.
  Tensor attention_branch(const Tensor& in, const Tensor& positions, const AttentionSpec& spec, KVCache* cache) const;
  Tensor mlp_branch(const Tensor& in) const;

  BlockConfig config_;
  Recompute recompute_ = Recompute::none;
};

// Sets what every TransformerBlock in `model` recomputes.
void set_recompute(Module& model, Recompute recompute);

// `layers` identical blocks (each with its own parameters) and an optional exit norm `norm`.
class Stack : public Module {
 public:
  Stack(const BlockConfig& config, int64_t layers, std::optional<NormConfig> exit_norm, Generator& gen);
  // `caches`: none, or one KV cache per layer when x is one sequence being generated.
  Tensor forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec,
                 std::span<KVCache> caches = {}) const;
  // The stack on x + added, the addition made with the first norm.
  Tensor forward(const PendingSum& x, const Tensor& positions, const AttentionSpec& spec,
                 std::span<KVCache> caches = {}) const;

  std::shared_ptr<ModuleList<TransformerBlock>> layers;
  std::shared_ptr<Norm> norm;  // null without an exit norm
};

}  // namespace ponder::nn
