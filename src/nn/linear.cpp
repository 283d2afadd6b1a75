#include "nn/linear.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/saved_tensor.h"
#include "nn/init.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/inplace.h"
#include "ops/linear.h"
#include "ops/matmul.h"

namespace ponder::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias) {
  PONDER_CHECK(in > 0 && out > 0, ValueError, "Linear: in and out features must be positive, got in ", in,
               ", out ", out);
  weight = zeros({out, in});
  register_parameter("weight", weight);
  if (with_bias) {
    bias = zeros({out});
    register_parameter("bias", bias);
  }
}

Linear::Linear(int64_t in, int64_t out, Generator& gen, bool with_bias) : Linear(in, out, with_bias) {
  lecun_normal_(weight, gen);
}

Tensor Linear::forward(const Tensor& x) const {
  Tensor y = linear(x, weight, bias);
  if (!has_lora()) return y;
  Tensor h = dropout_gen_ ? dropout(x, lora_.dropout, *dropout_gen_, is_training()) : x;
  // Scaling the rank-wide intermediate is cheaper than scaling the output; the product is the same.
  return y + lora_B->forward(lora_A->forward(h) * lora_scale());
}

Tensor Linear::forward_recomputing_input(const Tensor& x, std::function<Tensor()> remake) const {
  autograd::RecomputedWhenSaved recomputed(x, std::move(remake));
  return forward(x);
}

void Linear::add_lora(const LoraConfig& config, Generator& gen, std::shared_ptr<Generator> dropout_gen) {
  const int64_t in = in_features(), out = out_features();
  PONDER_CHECK(!has_lora(), ValueError, "Linear.add_lora: the layer already has a LoRA adapter");
  PONDER_CHECK(config.rank > 0 && config.rank <= std::min(in, out), ValueError, "Linear.add_lora: rank ",
               config.rank, " must be in [1, min(in ", in, ", out ", out, ")]");
  PONDER_CHECK(std::isfinite(config.alpha) && config.alpha > 0, ValueError,
               "Linear.add_lora: alpha must be positive, got ", config.alpha);
  PONDER_CHECK(config.dropout >= 0 && config.dropout < 1, ValueError,
               "Linear.add_lora: dropout must be in [0, 1), got ", config.dropout);
  PONDER_CHECK(config.dropout == 0 || dropout_gen, ValueError, "Linear.add_lora: dropout ", config.dropout,
               " needs a generator (dropout_gen)");
  auto a = std::shared_ptr<Linear>(new Linear(in, config.rank, false));
  auto b = std::shared_ptr<Linear>(new Linear(config.rank, out, false));
  kaiming_uniform_(a->weight, std::sqrt(5.0), gen);
  for (Linear* adapter : {a.get(), b.get()}) {
    adapter->to(weight.dtype());
    adapter->to(weight.device());
  }
  set_requires_grad(false);  // the base layer; the adapters are registered (trainable) below
  lora_A = register_module("lora_A", a);
  lora_B = register_module("lora_B", b);
  lora_ = config;
  if (config.dropout > 0) dropout_gen_ = std::move(dropout_gen);
}

void Linear::merge_lora() {
  PONDER_CHECK(has_lora(), ValueError, "Linear.merge_lora: the layer has no LoRA adapter");
  {
    NoGrad no_grad;
    // Summed in f32 (f64 for f64 weights) so a bf16 weight rounds once.
    const DType acc = weight.dtype() == DType::f64 ? DType::f64 : DType::f32;
    Tensor delta = matmul(lora_B->weight.to(acc), lora_A->weight.to(acc)) * lora_scale();
    copy_(weight, weight.to(acc) + delta);
  }
  remove_module("lora_A");
  remove_module("lora_B");
  lora_A.reset();
  lora_B.reset();
  dropout_gen_.reset();
}

TensorList forward_shared_input(const Tensor& x, const std::vector<const Linear*>& layers) {
  TensorList weights;
  for (const Linear* layer : layers) weights.push_back(layer->plain_weight());
  const bool plain = std::all_of(weights.begin(), weights.end(), [](const Tensor& w) { return w.defined(); });
  if (plain && layers.size() > 1) return linear_group(x, weights);
  TensorList outputs;
  for (const Linear* layer : layers) outputs.push_back(layer->forward(x));
  return outputs;
}

}  // namespace ponder::nn
