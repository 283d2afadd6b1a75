#include "models/attractor/fp_head.h"

#include <algorithm>
#include <cmath>

#include "ops/creation.h"
#include "ops/elementwise.h"

namespace ponder::models {

LayerScaleGate::LayerScaleGate(int64_t dim, double gamma_init, double gamma_max) : gamma_max(gamma_max) {
  PONDER_CHECK(gamma_max > 0 && gamma_init > 0 && gamma_init <= gamma_max, ValueError,
               "LayerScaleGate: gamma_init must be in (0, gamma_max = ", gamma_max, "], got ", gamma_init);
  const double ratio = std::min(gamma_init / gamma_max, 0.999);
  raw = full({dim}, std::log(ratio / (1 - ratio)), {.dtype = DType::f32});
  register_parameter("raw", raw);
}

Tensor LayerScaleGate::gamma() const { return sigmoid(raw) * gamma_max; }

Tensor LayerScaleGate::forward(const Tensor& branch) const { return branch * gamma(); }

FPHead::FPHead(const nn::BlockConfig& block, int64_t n_blocks, double gamma_init, double gamma_max, Generator& gen) {
  blocks = register_module("blocks", std::make_shared<nn::Stack>(block, n_blocks, std::nullopt, gen));
  attn_gates = register_module("attn_gates", std::make_shared<nn::ModuleList<LayerScaleGate>>());
  mlp_gates = register_module("mlp_gates", std::make_shared<nn::ModuleList<LayerScaleGate>>());
  for (size_t i = 0; i < blocks->layers->size(); ++i) {
    attn_gates->push_back(std::make_shared<LayerScaleGate>(block.attn.dim, gamma_init, gamma_max));
    mlp_gates->push_back(std::make_shared<LayerScaleGate>(block.attn.dim, gamma_init, gamma_max));
    // The hooks reach the gates through their modules (owned here, as the blocks are), never
    // through a Tensor handle that Module::to would replace.
    nn::TransformerBlock& b = (*blocks->layers)[i];
    b.attn_branch_hook = [gate = &(*attn_gates)[i]](const Tensor& x) { return gate->forward(x); };
    b.mlp_branch_hook = [gate = &(*mlp_gates)[i]](const Tensor& x) { return gate->forward(x); };
  }
}

Tensor FPHead::forward(const Tensor& x, const Tensor& positions, const AttentionSpec& spec) const {
  return blocks->forward(x, positions, spec);
}

}  // namespace ponder::models
