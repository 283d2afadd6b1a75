// Exponential moving average of parameters: fp32 shadow copies (f64 for f64 parameters), updated
// after each optimizer step, swapped in for evaluation or copied out for export.
#pragma once

#include <map>
#include <string>

#include "nn/module.h"

namespace ponder::optim {

class Ema {
 public:
  // Shadows start as copies of the parameters. decay in [0, 1].
  Ema(const nn::NamedTensors& params, double decay);

  // shadow ← decay·shadow + (1−decay)·param, for every parameter.
  void update();
  // Toggles what the parameters hold: the first call saves their values and writes the shadows in
  // (rounded to the parameter dtype), the second restores the saved values exactly. update() is
  // refused while the shadows are swapped in.
  void swap();
  bool swapped() const { return !saved_.empty(); }
  // Writes the shadows into `params` (same order and shapes as the tracked ones, any dtype).
  void copy_to(const TensorList& params) const;
  double decay() const { return decay_; }

  // The shadows by parameter name (aliasing the live state).
  nn::NamedTensors state() const;
  // Copies every shadow in; the names must be exactly those of the tracked parameters.
  void load_state(const std::map<std::string, Tensor>& state);

 private:
  nn::NamedTensors params_;
  TensorList shadows_;
  TensorList saved_;  // the parameters' own values while swapped
  double decay_;
};

}  // namespace ponder::optim
