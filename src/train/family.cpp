#include "train/family.h"

#include <algorithm>

#include "models/attractor/attractor.h"
#include "models/hrm_text/hrm_text.h"
#include "models/sst/sst.h"
#include "models/transformer/transformer.h"
#include "ops/lm_head_loss.h"

namespace ponder::train {
namespace {

struct Builder {
  uint64_t seed;
  template <class Config>
  std::shared_ptr<models::LanguageModel> operator()(Config c) const {
    c.seed = seed;
    if constexpr (std::is_same_v<Config, models::TransformerConfig>) return std::make_shared<models::Transformer>(c);
    else if constexpr (std::is_same_v<Config, models::HrmTextConfig>) return std::make_shared<models::HrmText>(c);
    else if constexpr (std::is_same_v<Config, models::SstConfig>) return std::make_shared<models::Sst>(c);
    else return std::make_shared<models::Attractor>(c);
  }
};

// What one transformer block costs per token.
struct BlockCost {
  double parameters = 0;
  double matmul_parameters = 0;  // weights of the block's matmuls (2 FLOPs each per token)
  double attention_flops = 0;    // scores and the weighted sum over a full row: 4·T·heads·head_dim
  // Activations its ops keep for backward, in bf16: the two norms' inputs and outputs (4d; 2d when
  // they are unweighted RMSNorms, which keep their outputs for backward, not their inputs); the
  // rotated q and k, v, the attention output, and with an output gate the gate and the gated
  // product (o_proj's input); the MLP's gate and up products and their SwiGLU (down_proj's input),
  // or up and relu² without a gate. In fp32: each norm's inverse RMS, the attention's log-sum-exp
  // per head. What the block recomputes (nn::Recompute) it does not keep; tests/train/plan_test.cpp
  // measures it.
  double activation_bytes = 0;

  BlockCost(const nn::BlockConfig& b, int64_t seq_len, nn::Recompute recompute) {
    const double d = double(b.attn.dim), heads = double(b.attn.heads);
    const double kv = double(b.attn.kv_heads ? b.attn.kv_heads : b.attn.heads);
    const double head_dim = double(b.attn.head_dim ? b.attn.head_dim : b.attn.dim / b.attn.heads);
    const double ffn = double(b.mlp.hidden);
    const double mlp_matrices = b.mlp.activation == nn::Activation::swiglu ? 3 : 2;
    matmul_parameters = d * head_dim * (2 * heads + 2 * kv) + (b.attn.output_gate ? d * heads * head_dim : 0) +
                        mlp_matrices * d * ffn;
    parameters = matmul_parameters + (b.norm.weighted ? 2 * d : 0) +
                 (b.attn.qk_norm && b.attn.qk_norm_weighted ? 2 * head_dim : 0);
    attention_flops = 4.0 * double(seq_len) * heads * head_dim;
    using nn::Recompute;
    const bool remade_products = recompute != Recompute::none;  // see nn::Recompute
    const double q_width = heads * head_dim, kv_width = kv * head_dim;
    const double gate = b.attn.output_gate ? (remade_products ? 1 : 2) * q_width : 0;
    const double attention_kept = 2 * q_width + 2 * kv_width + gate;
    const double mlp_kept = (mlp_matrices == 3 ? 2 : 1) * ffn + (remade_products ? 0 : ffn);
    const double attention_internals = recompute == Recompute::attention_mlp ? 0 : attention_kept;
    const double mlp_internals = recompute >= Recompute::mlp ? 0 : mlp_kept;
    const double attention_statistics = recompute == Recompute::attention_mlp ? 0 : heads;
    const double norms = b.norm.kind == nn::NormKind::rms && !b.norm.weighted ? 2 * d : 4 * d;
    activation_bytes = 2.0 * (norms + attention_internals + mlp_internals) + 4.0 * (2 + attention_statistics);
  }
  double forward_flops() const { return 2 * matmul_parameters + attention_flops; }
};

struct Coster {
  int64_t seq_len;
  nn::Recompute recompute;

  ModelCost operator()(const models::TransformerConfig& c) const {
    const BlockCost block(models::block_config(c), seq_len, recompute);
    const double layers = double(c.layers), d = double(c.dim), vocab = double(c.vocab_size);
    ModelCost cost;
    cost.parameters = static_cast<int64_t>(layers * block.parameters + d + vocab * d * (c.tie_embeddings ? 1 : 2));
    cost.forward_flops_per_token = layers * block.forward_flops() + 2 * vocab * d;
    cost.train_flops_per_token = 3 * cost.forward_flops_per_token;
    cost.activation_bytes_per_token = layers * block.activation_bytes;
    return with_head(cost, c.vocab_size, c.dim);
  }

  // The 2·(H·L + H) stack calls all run forward; backward (twice the forward) covers the bp_max
  // calls of the steady state; the LM head always has both.
  ModelCost operator()(const models::HrmTextConfig& c) const {
    const BlockCost block(models::block_config(c), seq_len, recompute);
    const double layers = double(c.layers_per_stack), d = double(c.dim), vocab = double(c.vocab_size);
    const double stack_call = layers * block.forward_flops(), head = 2 * vocab * d;
    const double bp = double(c.bp.fixed > 0 ? c.bp.fixed : c.bp.bp_max);
    ModelCost cost;
    cost.parameters = static_cast<int64_t>(2 * layers * block.parameters + 2 * vocab * d);
    cost.forward_flops_per_token = double(c.recurrent_calls()) * stack_call + head;
    cost.train_flops_per_token = cost.forward_flops_per_token + 2 * bp * stack_call + 2 * head;
    cost.activation_bytes_per_token = bp * layers * block.activation_bytes;
    return with_head(cost, c.vocab_size, c.dim);
  }

  // The forward runs the backbone, the head once per solver evaluation (max_iter at most) and once
  // more with grad; backward (twice the forward) covers the backbone, the retained application and
  // one vector-Jacobian product per adjoint iteration (phantom: its unrolled steps, recomputed).
  // Only the backbone and one head application keep activations, whatever the iteration count.
  ModelCost operator()(const models::AttractorConfig& c) const {
    const BlockCost block(models::block_config(c), seq_len, recompute);
    const double backbone = double(c.n_backbone_layers) * block.forward_flops();
    const double fp = double(c.n_fp_blocks) * block.forward_flops();
    const double d = double(c.dim), vocab = double(c.vocab_size), head = 2 * vocab * d;
    double adjoint_products = 0, retained = 1;
    switch (c.backward.mode) {
      case solvers::BackwardMode::onestep: adjoint_products = 1; break;
      case solvers::BackwardMode::picard:
      case solvers::BackwardMode::anderson: adjoint_products = c.backward.adjoint.max_iter; break;
      case solvers::BackwardMode::jfb: break;
      case solvers::BackwardMode::phantom: retained = c.backward.phantom_steps; break;
    }
    ModelCost cost;
    cost.parameters = static_cast<int64_t>(double(c.n_backbone_layers + c.n_fp_blocks) * block.parameters +
                                           2 * d * double(c.n_fp_blocks) + d + vocab * d);
    cost.forward_flops_per_token = backbone + double(c.solver.max_iter + 1) * fp + head;
    cost.train_flops_per_token = cost.forward_flops_per_token + 2 * backbone + (retained - 1) * fp +
                                 2 * (retained + adjoint_products) * fp + 2 * head;
    cost.activation_bytes_per_token =
        (double(c.n_backbone_layers) + retained * double(c.n_fp_blocks)) * block.activation_bytes;
    return with_head(cost, c.vocab_size, c.dim);
  }

  // The baseline plus blend_theta and the adapters. Two-pass training adds pass 1's FFN forward
  // (no backward) per layer; the scan and the blend are elementwise. Parameters count every
  // tensor; a frozen backbone still runs its full backward for the activations' gradients.
  ModelCost operator()(const models::SstConfig& c) const {
    const nn::BlockConfig b = models::block_config(c);
    ModelCost cost = (*this)(static_cast<const models::TransformerConfig&>(c));
    const double layers = double(c.layers), d = double(c.dim), ffn_flops = 2 * 3 * d * double(b.mlp.hidden);
    cost.parameters += static_cast<int64_t>(layers * d + lora_parameters(c, b));
    if (c.mode == models::SstMode::two_pass) cost.train_flops_per_token += layers * ffn_flops;
    cost.head_trainable = !c.freeze_backbone;
    return cost;
  }

  static double lora_parameters(const models::SstConfig& c, const nn::BlockConfig& b) {
    if (c.lora_rank == 0) return 0;
    const double d = double(b.attn.dim), hidden = double(b.mlp.hidden);
    const double heads = double(b.attn.heads), kv = double(b.attn.kv_heads ? b.attn.kv_heads : b.attn.heads);
    const double q = heads * double(b.attn.head_dim ? b.attn.head_dim : b.attn.dim / b.attn.heads);
    const double k = q / heads * kv;
    double per_layer = 0;
    for (const std::string& t : c.lora_targets) {
      const double in = t == "o_proj" ? q : t == "down_proj" ? hidden : d;
      const double out = t == "q_proj" ? q : t == "k_proj" || t == "v_proj" ? k : t == "o_proj" ? d
                         : t == "down_proj" ? d : hidden;
      per_layer += double(c.lora_rank) * (in + out);
    }
    return per_layer * double(c.lora_layers.empty() ? c.layers : int64_t(c.lora_layers.size()));
  }

  static ModelCost with_head(ModelCost cost, int64_t vocab, int64_t dim) {
    cost.vocab = vocab;
    cost.dim = dim;
    return cost;
  }
};

}  // namespace

std::shared_ptr<models::LanguageModel> build_model(const io::ModelConfig& config, uint64_t seed) {
  return std::visit(Builder{seed}, config);
}

std::shared_ptr<models::LanguageModel> build_training_model(const io::Recipe& recipe) {
  auto model = build_model(recipe.model, recipe.runtime.seed);
  nn::set_recompute(*model, recipe.recompute());
  return model;
}

int64_t vocab_size(const io::ModelConfig& config) {
  return std::visit([](const auto& c) { return c.vocab_size; }, config);
}

double ModelCost::loss_bytes(int64_t micro_tokens) const {
  const double chunk = double(std::min(micro_tokens, kLmHeadChunkTokens));
  return 2.0 * chunk * double(vocab) + (2.0 * double(dim) + 8.0) * double(micro_tokens) +
         (head_trainable ? 4.0 * double(vocab) * double(dim) : 0);
}

ModelCost model_cost(const io::ModelConfig& config, int64_t seq_len, nn::Recompute recompute) {
  return std::visit(Coster{seq_len, recompute}, config);
}

}  // namespace ponder::train
