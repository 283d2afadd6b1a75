// Deterministic GPU training: with runtime.deterministic, a run on the GPU stopped part-way and
// resumed gives the same per-step losses and final parameters, bit for bit, as the run
// uninterrupted (which also shows that the same steps twice give identical parameters). bf16
// with fp32 masters, so the mixed-precision path is the one checked. Skipped without a device.
#include <gtest/gtest.h>

#include "support/resume_check.h"

namespace ponder {
namespace {

class CudaTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

const char* kCommon = R"(
data: {task: sort, seq_len: 64, task_eval_examples: 16}
schedule: {name: cosine, warmup_steps: 2, min_ratio: 0.1}
train: {steps: 8}
batch: {global_tokens: 256, micro_tokens: 128}
runtime: {device: cuda, precision: bf16, deterministic: true}
log: {every: 1}
eval: {exact_match: 4}
checkpoint: {every: 0}
)";

io::Recipe recipe(const std::string& model_and_optim) {
  return io::parse_recipe(model_and_optim + kCommon, "gpu.yaml");
}

TEST_F(CudaTraining, BaselineResumeIsBitIdenticalInDeterministicMode) {
  testing::expect_resume_reproduces_the_run(
      recipe("model: {family: transformer, vocab_size: 100, dim: 64, layers: 2, heads: 1, ffn_hidden: 128, "
             "attention_output_gate: true}\noptim: {name: adamw, lr: 3.0e-3}\n"),
      3);
}

TEST_F(CudaTraining, HrmTextResumeIsBitIdenticalInDeterministicMode) {
  testing::expect_resume_reproduces_the_run(
      recipe("model: {family: hrm_text, vocab_size: 100, dim: 64, layers_per_stack: 1, heads: 1, ffn_hidden: 128, "
             "H_cycles: 2, L_cycles: 2, prefix_lm: true, bp_min: 2, bp_max: 4, bp_warmup_ratio: 0.5}\n"
             "optim: {name: adam_atan2, lr: 2.0e-3, ema: 0.9}\n"),
      3);
}

}  // namespace
}  // namespace ponder
