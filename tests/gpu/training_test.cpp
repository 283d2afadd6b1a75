// Deterministic GPU training: with runtime.deterministic, a run on the GPU stopped part-way and
// resumed gives the same per-step losses and final parameters, bit for bit, as the run
// uninterrupted (which also shows that the same steps twice give identical parameters); and a run
// whose micro-steps replay CUDA graphs gives the same as one that runs them eagerly. bf16 with
// fp32 masters, so the mixed-precision path is the one checked. Skipped without a device.
#include <gtest/gtest.h>

#include "support/resume_check.h"
#include "support/python.h"
#include "train/session.h"
#include "tensor/allocator.h"
#include "train/trainer.h"

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

const char* kBaseline =
    "model: {family: transformer, vocab_size: 100, dim: 64, layers: 2, heads: 1, ffn_hidden: 128, "
    "attention_output_gate: true}\noptim: {name: adamw, lr: 3.0e-3}\n";
// The backprop depth warms up 2 -> 4 over the run: one graph per depth.
const char* kHrmText =
    "model: {family: hrm_text, vocab_size: 100, dim: 64, layers_per_stack: 1, heads: 1, ffn_hidden: 128, "
    "H_cycles: 2, L_cycles: 2, prefix_lm: true, bp_min: 2, bp_max: 4, bp_warmup_ratio: 0.5}\n"
    "optim: {name: adam_atan2, lr: 2.0e-3, ema: 0.9}\n";

TEST_F(CudaTraining, BaselineResumeIsBitIdenticalInDeterministicMode) {
  testing::expect_resume_reproduces_the_run(recipe(kBaseline), 3);
}

TEST_F(CudaTraining, HrmTextResumeIsBitIdenticalInDeterministicMode) {
  testing::expect_resume_reproduces_the_run(recipe(kHrmText), 3);
}

struct FinishedRun {
  std::vector<double> losses;
  std::vector<std::vector<float>> params;
  std::string graphs;  // Trainer::cuda_graph_status()
};

FinishedRun train_to_the_end(io::Recipe r, bool cuda_graph) {
  r.runtime.cuda_graph = cuda_graph;
  const std::filesystem::path dir = testing::scratch_dir(cuda_graph ? "graphs_on" : "graphs_off");
  FinishedRun out;
  {
    train::Trainer t(train::make_context(r, dir));
    EXPECT_EQ(t.run(), train::RunEnd::finished);
    for (const Tensor& p : t.model().parameters()) out.params.push_back(p.to(DType::f32).to_vector<float>());
    out.graphs = t.cuda_graph_status();
  }
  out.losses = testing::logged_losses(dir);
  std::filesystem::remove_all(dir);
  return out;
}

// The batches differ from micro-step to micro-step (so stale graph inputs would show), and the
// HRM-Text run changes its backprop depth twice (so a graph of the wrong depth would).
void expect_graphs_change_nothing(const io::Recipe& r) {
  const FinishedRun eager = train_to_the_end(r, false), graphs = train_to_the_end(r, true);
  EXPECT_EQ(eager.graphs, "off");
  EXPECT_TRUE(graphs.graphs.find(" micro-steps replayed from ") != std::string::npos) << graphs.graphs;
  EXPECT_NE(graphs.graphs.rfind("0 micro-steps", 0), 0u) << graphs.graphs;
  EXPECT_EQ(graphs.losses, eager.losses);
  EXPECT_EQ(graphs.params, eager.params);
}

TEST_F(CudaTraining, BaselineStepsReplayedFromCudaGraphsGiveTheEagerRun) { expect_graphs_change_nothing(recipe(kBaseline)); }

TEST_F(CudaTraining, HrmTextStepsReplayedFromCudaGraphsGiveTheEagerRun) { expect_graphs_change_nothing(recipe(kHrmText)); }

// Between steps a graph keeps only its inputs and loss live (a few kB): everything else it
// allocated is free for the next replay.
TEST_F(CudaTraining, CudaGraphsKeepLittleMemoryLiveBetweenSteps) {
  auto live_after_steps = [](bool cuda_graph) {
    io::Recipe r = recipe(kHrmText);
    r.runtime.cuda_graph = cuda_graph;
    const std::filesystem::path dir = testing::scratch_dir("graph_memory");
    train::Trainer t(train::make_context(r, dir));
    for (int i = 0; i < 3; ++i) t.train_step();
    const int64_t live = memory_stats(Device::cuda(0)).current_bytes;
    std::filesystem::remove_all(dir);
    return live;
  };
  const int64_t eager = live_after_steps(false), graphs = live_after_steps(true);
  EXPECT_LE(graphs - eager, 16 * 1024) << "eager " << eager << " bytes, with graphs " << graphs;
}

}  // namespace
}  // namespace ponder
