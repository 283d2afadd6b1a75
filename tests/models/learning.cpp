#include "models/learning.h"

#include <chrono>
#include <cstdio>

#include "data/packing.h"
#include "ops/ops.h"

namespace ponder::testing {
namespace {

std::vector<std::vector<data::Sample>> reversal_rows(std::mt19937& rng, int rows, int per_row) {
  std::uniform_int_distribution<int32_t> digit(2, 11);
  std::vector<std::vector<data::Sample>> out(rows);
  for (auto& row : out) {
    for (int s = 0; s < per_row; ++s) {
      data::Sample smp;
      for (int i = 0; i < 6; ++i) smp.instruction.push_back(digit(rng));
      smp.response.assign(smp.instruction.rbegin(), smp.instruction.rend());
      row.push_back(smp);
    }
  }
  return out;
}

}  // namespace

double train_reversal(models::LanguageModel& model, optim::Optimizer& optimizer, const ReversalTraining& t) {
  const auto start = std::chrono::steady_clock::now();
  optim::Schedule schedule("cosine", {.warmup_steps = t.warmup_steps, .total_steps = t.steps, .min_ratio = 0.05});
  std::mt19937 rng(t.seed);
  double loss = 0;
  for (int step = 0; step < t.steps; ++step) {
    model.begin_step(step, t.steps);
    optimizer.set_lr(t.peak_lr * schedule(step));
    models::PackedBatch batch = data::pack_rows(reversal_rows(rng, t.rows, t.samples_per_row), {.row_len = 11 * t.samples_per_row});
    Tensor l = model.loss_sum(batch) / double(batch.loss_tokens);
    l.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    optimizer.step();
    optimizer.zero_grad();
    loss = l.item<float>();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: final loss %.4f after %d steps in %.1f s\n", model.family().c_str(), loss, t.steps, seconds);
  return loss;
}

}  // namespace ponder::testing
