// A small learning problem the model tests share: reverse 6 random digits (the instruction) in the
// response. Chance level is log(10) ≈ 2.3 per response token; a model that trains reaches ~0.
#pragma once

#include <random>

#include "models/language_model.h"
#include "optim/optim.h"

namespace ponder::testing {

struct ReversalTraining {
  int steps = 1000;
  double peak_lr = 6e-3;
  int warmup_steps = 50;
  int rows = 8, samples_per_row = 4;  // 11 tokens per sample
  uint32_t seed = 5;
};

// Trains `model` with `optimizer` (cosine schedule, grad clip 1) and returns the mean response loss
// of the last step. Calls begin_step every step, so in-model schedules run as in the trainer.
double train_reversal(models::LanguageModel& model, optim::Optimizer& optimizer, const ReversalTraining& t);

}  // namespace ponder::testing
