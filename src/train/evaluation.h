// Held-out evaluation during and after training.
#pragma once

#include <nlohmann/json.hpp>

#include "models/language_model.h"

namespace ponder::train {

class Evaluation {
 public:
  virtual ~Evaluation() = default;
  // Metrics of the model as it is now, keyed "eval.loss", "eval.exact_match", ...
  virtual nlohmann::json run(models::LanguageModel& model, Device device) = 0;
  // A few lines for the final report (e.g. generated answers beside their references).
  virtual std::string report() const { return ""; }
};

}  // namespace ponder::train
