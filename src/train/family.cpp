#include "train/family.h"

#include "models/transformer/transformer.h"
#include "nn/mlp.h"

namespace ponder::train {
namespace {

struct Builder {
  uint64_t seed;
  std::shared_ptr<models::LanguageModel> operator()(models::TransformerConfig c) const {
    c.seed = seed;
    return std::make_shared<models::Transformer>(c);
  }
};

struct Coster {
  int64_t seq_len;
  ModelCost operator()(const models::TransformerConfig& c) const {
    const double d = double(c.dim), heads = double(c.heads), kv = double(c.kv_heads ? c.kv_heads : c.heads);
    const double head_dim = double(c.head_dim ? c.head_dim : c.dim / c.heads);
    const double ffn = double(c.ffn_hidden ? c.ffn_hidden : nn::swiglu_hidden(c.dim));
    const double attn_params = d * head_dim * (2 * heads + 2 * kv) + (c.attention_output_gate ? d * heads * head_dim : 0);
    const double layer_params = attn_params + 3 * d * ffn + 2 * d;
    const double vocab = double(c.vocab_size);
    ModelCost cost;
    cost.parameters = static_cast<int64_t>(double(c.layers) * layer_params + d + vocab * d * (c.tie_embeddings ? 1 : 2));
    const double matmul_params = double(c.layers) * (attn_params + 3 * d * ffn) + vocab * d;  // + LM head
    const double attention = double(c.layers) * 4.0 * double(seq_len) * heads * head_dim;
    cost.forward_flops_per_token = 2 * matmul_params + attention;
    cost.train_flops_per_token = 3 * cost.forward_flops_per_token;
    return cost;
  }
};

}  // namespace

std::shared_ptr<models::LanguageModel> build_model(const io::ModelConfig& config, uint64_t seed) {
  return std::visit(Builder{seed}, config);
}

ModelCost model_cost(const io::ModelConfig& config, int64_t seq_len) { return std::visit(Coster{seq_len}, config); }

}  // namespace ponder::train
