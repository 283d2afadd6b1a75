#include "models/language_model.h"

#include "ops/loss.h"

namespace ponder::models {

Tensor LanguageModel::loss_sum(const PackedBatch& batch) {
  return cross_entropy(logits(batch), batch.labels, kIgnoreIndex, Reduction::sum);
}

}  // namespace ponder::models
