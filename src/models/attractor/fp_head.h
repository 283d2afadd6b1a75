// The attractor head: PreNorm blocks applied as one residual map whose attention and MLP branches
// are each scaled by a bounded per-channel LayerScale gate, so the map's Lipschitz constant (and
// with it how contractive the fixed-point iteration is) stays under the recipe's control.
#pragma once

#include <memory>

#include "nn/transformer.h"

namespace ponder::models {

// γ = γ_max·sigmoid(raw), per channel: [dim] parameter `raw`, initialised so that γ = γ_init.
// γ_init = γ_max has no finite raw; it starts the gate just below γ_max instead (ratio 0.999).
class LayerScaleGate : public nn::Module {
 public:
  LayerScaleGate(int64_t dim, double gamma_init, double gamma_max);
  Tensor gamma() const;
  Tensor forward(const Tensor& branch) const;  // branch · γ, broadcast over the rows

  Tensor raw;
  double gamma_max;
};

// Children: blocks (a Stack without exit norm: layers.{i}.*), attn_gates.{i}.raw, mlp_gates.{i}.raw.
class FPHead : public nn::Module {
 public:
  FPHead(const nn::BlockConfig& block, int64_t n_blocks, double gamma_init, double gamma_max, Generator& gen);
  // x [N, dim] -> x + the gated branches of every block, in order.
  Tensor forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec) const;

  std::shared_ptr<nn::Stack> blocks;
  std::shared_ptr<nn::ModuleList<LayerScaleGate>> attn_gates, mlp_gates;
};

}  // namespace ponder::models
