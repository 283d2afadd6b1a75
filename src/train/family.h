// What the training system knows about each model family besides its code: how to build a model
// from its recipe section and what a token costs. One std::visit per question, so adding a family
// means adding its config to io::ModelConfig and one overload here.
#pragma once

#include <memory>

#include "io/recipe.h"
#include "models/language_model.h"
#include "nn/transformer.h"

namespace ponder::train {

std::shared_ptr<models::LanguageModel> build_model(const io::ModelConfig& config, uint64_t seed);
// The recipe's model as training runs it: build_model, then what its blocks recompute (runtime.recompute).
std::shared_ptr<models::LanguageModel> build_training_model(const io::Recipe& recipe);

int64_t vocab_size(const io::ModelConfig& config);

struct ModelCost {
  int64_t parameters = 0;
  // Model FLOPs per token with rows of seq_len tokens: every matmul of the forward pass, the LM
  // head, and attention scores over the full row (4·T·d per attention call).
  double forward_flops_per_token = 0;
  // Forward plus backward (twice the forward for every call that records gradients).
  double train_flops_per_token = 0;
  // Bytes of activations kept for backward per token of a micro-batch (bf16 working precision).
  double activation_bytes_per_token = 0;
  int64_t vocab = 0, dim = 0;
  bool head_trainable = true;
  // What the fused LM-head loss (lm_head_cross_entropy) holds at the end of a micro-batch's
  // forward: one chunk of logits and dh in bf16, f32 losses and their scales per token, and a
  // trainable head's dW in f32.
  double loss_bytes(int64_t micro_tokens) const;
};

// `recompute`: what the blocks recompute in backward (it changes only activation_bytes_per_token).
ModelCost model_cost(const io::ModelConfig& config, int64_t seq_len, nn::Recompute recompute = nn::Recompute::none);

}  // namespace ponder::train
