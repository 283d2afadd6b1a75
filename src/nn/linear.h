// A dense layer (torch.nn.Linear names and layout) with optional LoRA adapters (PEFT's scheme).
#pragma once

#include <functional>
#include <memory>

#include "nn/module.h"
#include "tensor/generator.h"

namespace ponder::nn {

struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16.0;   // the update is scaled by alpha / rank
  double dropout = 0.0;  // on the adapter's input, in training mode only
};

// y = x @ weight^T (+ bias). Parameters: weight [out, in] (LeCun normal: HRM-Text's truncated
// normal with std 1/sqrt(in)) and, with `bias`, bias [out] (zeros).
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, Generator& gen, bool bias = false);

  // x [..., in] -> [..., out]; with an adapter, + (alpha/rank) * lora_B(lora_A(dropout(x))).
  Tensor forward(const Tensor& x) const;
  // The same, but backward makes x again with remake() where it needs it instead of keeping it:
  // for a cheap product of tensors that are kept anyway (selective recomputation).
  Tensor forward_recomputing_input(const Tensor& x, std::function<Tensor()> remake) const;

  // Adds children lora_A (weight [rank, in], U(-1/sqrt(in), 1/sqrt(in)) as PEFT) and lora_B
  // (weight [out, rank], zeros, so the layer's output is unchanged) and freezes weight and bias.
  // `dropout_gen` drives the adapter dropout and is required when config.dropout > 0.
  void add_lora(const LoraConfig& config, Generator& gen, std::shared_ptr<Generator> dropout_gen = nullptr);
  // Folds (alpha/rank) * B @ A into weight and removes the adapters; weight and bias stay frozen.
  void merge_lora();
  bool has_lora() const { return lora_A != nullptr; }
  // weight when forward(x) is exactly x · weightᵀ (no bias, no adapter), else undefined.
  Tensor plain_weight() const { return bias.defined() || has_lora() ? Tensor() : weight; }
  double lora_scale() const { return lora_.alpha / double(lora_.rank); }
  Generator* dropout_generator() const { return dropout_gen_.get(); }  // null without adapter dropout

  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }

  Tensor weight, bias;
  std::shared_ptr<Linear> lora_A, lora_B;

 private:
  // Allocates the parameters without drawing random numbers; callers initialise them.
  Linear(int64_t in, int64_t out, bool bias);

  LoraConfig lora_;
  std::shared_ptr<Generator> dropout_gen_;
};

// x through several layers, {layer.forward(x)}: as one linear_group when every layer is plain (its
// backward forms their weight gradients in one batched product), else layer by layer.
TensorList forward_shared_input(const Tensor& x, const std::vector<const Linear*>& layers);

}  // namespace ponder::nn
