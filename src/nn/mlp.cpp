#include "nn/mlp.h"

#include <cmath>

#include "autograd/saved_tensor.h"
#include "ops/elementwise.h"
#include "ops/fused.h"

namespace ponder::nn {

using autograd::SavedTensor;

Activation parse_activation(const std::string& name) {
  if (name == "swiglu") return Activation::swiglu;
  if (name == "relu2") return Activation::relu2;
  fail<ValueError>("Mlp: unknown activation \"", name, "\" (choices: swiglu, relu2)");
}

int64_t swiglu_hidden(int64_t dim, double multiplier, int64_t multiple_of) {
  PONDER_CHECK(dim > 0 && multiplier > 0 && multiple_of > 0, ValueError,
               "swiglu_hidden: dim, multiplier and multiple_of must be positive, got ", dim, ", ", multiplier, ", ",
               multiple_of);
  const auto width = static_cast<int64_t>(std::llround(multiplier * double(dim) * 2.0 / 3.0));
  return (width + multiple_of - 1) / multiple_of * multiple_of;
}

Mlp::Mlp(const MlpConfig& config, Generator& gen) : config_(config) {
  PONDER_CHECK(config.dim > 0 && config.hidden > 0, ValueError, "Mlp: dim and hidden must be positive, got dim ",
               config.dim, ", hidden ", config.hidden);
  if (config.activation == Activation::swiglu)
    gate_proj = register_module("gate_proj", std::make_shared<Linear>(config.dim, config.hidden, gen, config.bias));
  up_proj = register_module("up_proj", std::make_shared<Linear>(config.dim, config.hidden, gen, config.bias));
  down_proj = register_module("down_proj", std::make_shared<Linear>(config.hidden, config.dim, gen, config.bias));
}

Tensor Mlp::forward(const Tensor& x) const {
  const TensorList projected =
      gate_proj ? forward_shared_input(x, {gate_proj.get(), up_proj.get()}) : TensorList{up_proj->forward(x)};
  const Tensor gate = gate_proj ? projected[0] : Tensor(), up = projected.back();
  auto activation = [](const Tensor& gate, const Tensor& up) { return gate.defined() ? swiglu(gate, up) : relu2(up); };
  const Tensor h = activation(gate, up);
  if (!recompute_activation_) return down_proj->forward(h);
  // The activation's backward keeps gate and up anyway.
  return down_proj->forward_recomputing_input(
      h, [activation, gate = SavedTensor(gate), up = SavedTensor(up)] { return activation(gate.get("mlp"), up.get("mlp")); });
}

}  // namespace ponder::nn
