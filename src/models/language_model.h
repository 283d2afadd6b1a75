// What every model family offers the trainer: a pure function from a packed batch to the summed
// next-token loss (the trainer divides by the number of loss tokens of the whole step, across
// micro-batches and ranks, so the mean is exact), plus the logits for evaluation and generation.
#pragma once

#include <string>

#include "models/batch.h"
#include "nn/module.h"

namespace ponder::models {

class LanguageModel : public nn::Module {
 public:
  virtual std::string family() const = 0;
  // [N, vocab] next-token logits.
  virtual Tensor logits(const PackedBatch& batch) = 0;
  // Sum over the batch's loss tokens of the cross-entropy (0-d, f32; f64 for an f64 model).
  virtual Tensor loss_sum(const PackedBatch& batch);
  // Called by the trainer before each optimizer step, for schedules that live inside a model
  // (HRM-Text's backprop depth).
  virtual void begin_step(int64_t /*step*/, int64_t /*total_steps*/) {}
};

}  // namespace ponder::models
