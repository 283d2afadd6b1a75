// The attractor's training memory on the device does not grow with the number of solver
// iterations (the forward solve keeps no iterates, the implicit gradient one application of the
// head); skipped where no CUDA device is visible.
#include <gtest/gtest.h>

#include <map>

#include "data/packing.h"
#include "models/attractor/attractor.h"
#include "tensor/allocator.h"

namespace ponder {
namespace {

class CudaAttractor : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

// Peak device bytes of one training step with a tolerance no solve reaches, so every one of
// max_iter iterations runs (in the forward, and in the Anderson adjoint when asked for).
int64_t step_peak_bytes(int max_iter, solvers::BackwardMode backward) {
  const Device cuda = Device::cuda(0);
  models::AttractorConfig c{.vocab_size = 64, .dim = 128, .heads = 2, .ffn_hidden = 512, .n_backbone_layers = 1,
                            .n_fp_blocks = 1, .attention = AttentionMask::prefix_lm, .gamma_init = 0.25,
                            .gamma_max = 0.5, .seed = 3};
  c.solver = {.kind = solvers::SolverKind::anderson, .tol = 1e-30, .min_iter = 0, .max_iter = max_iter};
  c.backward = {.mode = backward, .adjoint = {.tol = 1e-30, .max_iter = max_iter}};
  models::Attractor m(c);
  m.to(cuda);
  std::vector<std::vector<data::Sample>> rows(4);
  for (int32_t r = 0; r < 4; ++r) rows[r] = {{{1, 2, 3, r}, {4, 5, 6, 7, 8, 9}}, {{10 + r, 11}, {12, 13, 14, 15}}};
  const models::PackedBatch batch = models::to_device(data::pack_rows(rows, {.row_len = 16}), cuda);
  const int64_t before = memory_stats(cuda).current_bytes;
  reset_peak_memory(cuda);
  m.loss_sum(batch).backward();
  const int64_t peak = memory_stats(cuda).peak_bytes - before;
  const std::map<std::string, double> metrics = m.take_step_metrics();
  EXPECT_EQ(metrics.at("fp_fwd_iters"), max_iter);
  return peak;
}

TEST_F(CudaAttractor, TrainingStepPeakMemoryDoesNotGrowWithIterations) {
  for (solvers::BackwardMode backward : {solvers::BackwardMode::onestep, solvers::BackwardMode::anderson}) {
    step_peak_bytes(4, backward);  // first-use allocations (cuBLAS workspaces, the cache) out of the way
    const int64_t short_solve = step_peak_bytes(4, backward);
    const int64_t long_solve = step_peak_bytes(64, backward);
    EXPECT_GT(short_solve, 0);
    EXPECT_LE(std::abs(long_solve - short_solve), short_solve / 20)
        << "4 iterations: " << short_solve << " bytes, 64 iterations: " << long_solve << " bytes";
  }
}

}  // namespace
}  // namespace ponder
