// The training loop: micro-batches with gradient accumulation, clipping, the optimizer and its
// schedule, EMA, periodic evaluation, metrics, checkpoints, non-finite step skipping and graceful
// stops. One Trainer drives one run directory:
//   RUN_DIR/recipe.yaml  metrics.jsonl  log.txt  checkpoints/step_XXXXXXXX/
#pragma once

#include <filesystem>
#include <memory>

#include "data/tokenizer.h"
#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "dist/zero.h"
#include "io/recipe.h"
#include "models/language_model.h"
#include "optim/ema.h"
#include "optim/grad_buffer.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "train/batch_source.h"
#include "train/checkpoint.h"
#include "train/evaluation.h"
#include "train/metrics.h"
#include "train/step_graphs.h"

namespace ponder::train {

struct TrainContext {
  io::Recipe recipe;
  std::filesystem::path run_dir;
  Device device;
  DType param_dtype = DType::f32;  // working copy (bf16 on the GPU); masters and grads are fp32
  std::shared_ptr<models::LanguageModel> model;
  std::unique_ptr<BatchSource> train_data;
  std::unique_ptr<Evaluation> evaluation;  // may be null
  // The job's ranks (Local for one process). Only rank 0 logs, evaluates and writes checkpoints.
  std::shared_ptr<dist::Communicator> comm;
  std::vector<std::string> notes;  // choices made while setting up (batch.micro_tokens: auto), logged at the start
  // What made the training data, when known; the trainer saves it into run_dir/tokenizer, for exports.
  std::shared_ptr<const data::Tokenizer> tokenizer;
};

// How a run ended (the same on every rank), and the process exit status it implies.
enum class RunEnd { finished, stopped, diverged };

class Trainer {
 public:
  explicit Trainer(TrainContext context);
  ~Trainer();

  // Continues from a checkpoint of this run (model, optimizer, EMA, step, data cursor, RNG).
  void restore(const LoadedCheckpoint& checkpoint);
  RunEnd run();
  const TrainerState& state() const { return state_; }
  // Whether micro-steps replay CUDA graphs (runtime.cuda_graph), as StepGraphs::status says.
  std::string cuda_graph_status() const { return steps_->status(); }
  // Drops the recorded graphs and their memory (later steps record them again).
  void release_cuda_graphs() { steps_->clear(); }
  models::LanguageModel& model() { return *ctx_.model; }

  struct StepResult {
    double loss = 0;
    double grad_norm = 0;
    std::string skipped;  // why the update was not applied (non-finite values, a loss spike); empty if it was
    double exposed_comm_s = 0;  // waiting for the gradient all-reduce (or reduce-scatter) after backward
  };
  // One optimizer step without logging, evaluation or checkpoints (run() calls it; so does the
  // training benchmark, which times it).
  StepResult train_step();

 private:
  void log_step(const StepResult& r, double seconds);
  void evaluate();
  void save_checkpoint();
  std::string first_non_finite_gradient() const;
  // Why `loss` counts as a spike (train.spike_zscore), or empty when it does not.
  std::string loss_spike(double loss) const;
  void remember_loss(double loss);
  double sum_over_ranks(double value);
  void message(const std::string& text);
  void tell_graph_failure();
  bool leader() const { return ctx_.comm->rank() == 0; }

  TrainContext ctx_;
  TrainerState state_;
  std::unique_ptr<optim::GradBuffer> grads_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::unique_ptr<dist::GradSync> sync_;    // without ZeRO-1
  std::unique_ptr<dist::ZeroShards> zero_;  // distributed.zero: 1
  bool overlap_sync_ = true;  // sync_ reduces buckets during the last backward
  std::unique_ptr<optim::Ema> ema_;
  std::unique_ptr<StepGraphs> steps_;  // each micro-batch's forward and backward
  bool told_graph_failure_ = false;
  optim::Schedule schedule_;
  std::unique_ptr<MetricsLog> metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<Progress> progress_;  // rank 0 only, like metrics_ and log_
  double flops_per_token_ = 0;
  int64_t first_step_ = 0;
  std::string first_skip_;  // why the first step of the current run of skipped steps was skipped
};

// Builds the optimizer a recipe asks for over a model's parameters.
std::unique_ptr<optim::Optimizer> make_optimizer(const io::OptimRecipe& recipe, const nn::NamedTensors& params);

}  // namespace ponder::train
