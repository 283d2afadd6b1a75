// The feed-forward half of a transformer block (HF Llama parameter names).
#pragma once

#include <memory>
#include <string>

#include "nn/linear.h"

namespace ponder::nn {

enum class Activation { swiglu, relu2 };
// "swiglu" or "relu2"; ValueError naming the choices otherwise.
Activation parse_activation(const std::string& name);

struct MlpConfig {
  int64_t dim = 0;
  int64_t hidden = 0;
  Activation activation = Activation::swiglu;
  bool bias = false;
};

// Llama's SwiGLU width: round(multiplier * dim * 2/3) rounded up to a multiple of `multiple_of`
// (4096 for dim 1536 with the defaults).
int64_t swiglu_hidden(int64_t dim, double multiplier = 4.0, int64_t multiple_of = 256);

// swiglu: down_proj(silu(gate_proj(x)) * up_proj(x)), children gate_proj, up_proj, down_proj.
// relu2:  down_proj(relu(up_proj(x))^2),             children up_proj, down_proj.
class Mlp : public Module {
 public:
  Mlp(const MlpConfig& config, Generator& gen);
  Tensor forward(const Tensor& x) const;
  const MlpConfig& config() const { return config_; }
  // Whether backward makes the activation's output (down_proj's input) again from the gate and up
  // products instead of keeping it.
  void set_recompute_activation(bool on) { recompute_activation_ = on; }

  std::shared_ptr<Linear> gate_proj, up_proj, down_proj;

 private:
  MlpConfig config_;
  bool recompute_activation_ = false;
};

}  // namespace ponder::nn
