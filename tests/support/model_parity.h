// Whole-model parity with a PyTorch reference script (tests/parity/*.py): the model's logits,
// summed loss and every parameter's gradient on a packed batch, f32, within 1e-5 relative.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/language_model.h"

namespace ponder::testing {

struct ModelParity {
  std::string script;                            // tests/parity/<script>: reads inputs, writes reference
  std::string name;                              // scratch directory and printed label
  std::map<std::string, std::string> metadata;   // the hyperparameters the script needs
  io::NamedTensors extra_inputs;                 // besides the batch and the parameters
};

// Runs the forward and backward of `model` on `batch`, the reference on the same batch and
// parameters, and expects agreement. A parameter the reference gives an all-zero gradient must get
// none (or zeros) here too; their names are returned.
std::vector<std::string> expect_model_parity(models::LanguageModel& model, const models::PackedBatch& batch,
                                             const ModelParity& reference);

}  // namespace ponder::testing
