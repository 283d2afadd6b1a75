// The Llama-style baseline every paper compares against: token embedding, a stack of pre-norm
// blocks (RMSNorm, attention with RoPE, SwiGLU MLP), a final RMSNorm and the LM head; optionally
// tied embeddings and the sigmoid-gated attention output. Parameter names follow transformers'
// LlamaForCausalLM, so an export loads there without renaming.
#pragma once

#include <memory>

#include "models/language_model.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/transformer.h"

namespace ponder::models {

struct TransformerConfig {
  int64_t vocab_size = 256;
  int64_t dim = 256;
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t kv_heads = 0;  // 0 = heads (MHA)
  int64_t head_dim = 0;  // 0 = dim / heads
  int64_t ffn_hidden = 0;  // 0 = nn::swiglu_hidden(dim)
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_embeddings = false;
  bool attention_output_gate = false;
  uint64_t seed = 0;  // initialisation
};

// model.embed_tokens, model.layers.{i}.*, model.norm, lm_head.
class TransformerBody : public nn::Stack {
 public:
  TransformerBody(const TransformerConfig& config, Generator& gen);
  std::shared_ptr<nn::Embedding> embed_tokens;
};

class Transformer : public LanguageModel {
 public:
  explicit Transformer(const TransformerConfig& config);
  std::string family() const override { return "transformer"; }
  // The final norm's output, and the LM head (tied to the embeddings or not).
  Tensor features(const PackedBatch& batch) override;
  Tensor head(const Tensor& x) const override;
  Tensor head_weight() const override;
  Tensor next_token_logits(const Tensor& tokens, DecodeCache& cache) override;
  std::optional<int64_t> step_variant() const override { return 0; }
  const TransformerConfig& config() const { return config_; }

  std::shared_ptr<TransformerBody> model;
  std::shared_ptr<nn::Linear> lm_head;  // null when the embeddings are tied

 private:
  TransformerConfig config_;
};

// The nn block configuration the baseline uses (also handy for tests and exports).
nn::BlockConfig block_config(const TransformerConfig& config);

}  // namespace ponder::models
