// A recipe: one YAML file describing a training run (model, data, optimizer, schedule, batch,
// precision, runtime, distribution, checkpointing, logging, evaluation). It is read strictly —
// unknown keys, wrong types, out-of-range values and inconsistent combinations are errors that
// name the key and its line — before anything runs.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "backend/attention_spec.h"
#include "io/config_reader.h"
#include "models/attractor/attractor.h"
#include "models/hrm_text/hrm_text.h"
#include "models/sst/sst.h"
#include "models/transformer/transformer.h"

namespace ponder::io {

// Model section: `family` plus that family's hyperparameters.
using ModelConfig = std::variant<models::TransformerConfig, models::HrmTextConfig, models::AttractorConfig,
                                 models::SstConfig>;

struct DataRecipe {
  std::vector<std::string> train;  // HDF5 shards (files or directories)
  std::vector<std::string> eval;
  std::string task;                // a synthetic task spec ("sort", "maze:n=11,loops=2"), generated on the fly
  int64_t task_train_examples = 0; // 0 = unlimited (fresh examples every step)
  int64_t task_eval_examples = 256;
  int64_t seq_len = 512;           // row length in tokens
  std::string packing = "greedy";  // greedy | longest_first
  std::string loss = "response";   // response | all
  std::string mask = "prefix_lm";  // prefix_lm | causal | bidirectional
  int64_t prefetch = 4;            // batches prepared ahead by the loader thread

  AttentionMask attention_mask() const;
};

// With name muon (MuonAdamW, optim/muon.h): lr, momentum and nesterov are Muon's (defaults 0.02,
// 0.95, true); adam_lr, beta1, beta2 and eps are AdamW's, for embeddings, lm_head and 1-D tensors.
struct OptimRecipe {
  std::string name = "adamw";      // adamw | adam_atan2 | sgd | muon
  double lr = 3e-4;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double momentum = 0.9;           // sgd, muon
  bool nesterov = false;           // sgd, muon
  int64_t ns_steps = 5;            // muon: Newton–Schulz iterations
  double adam_lr = 3e-4;           // muon: AdamW's peak learning rate
  double weight_decay = 0.1;
  bool decay_1d = false;           // also decay 1-D tensors (norm weights, biases)
  double clip_grad_norm = 1.0;     // 0 = off
  double ema = 0.0;                // 0 = no EMA, else its decay
};

struct ScheduleRecipe {
  std::string name = "constant";   // constant | cosine | wsd
  int64_t warmup_steps = 0;
  double min_ratio = 0.0;
  double decay_fraction = 0.2;
};

struct TrainRecipe {
  int64_t steps = 0;               // total optimizer steps (or derived from tokens)
  int64_t tokens = 0;              // alternative budget
  int64_t max_consecutive_skips = 5;  // skipped (non-finite or spiking) steps in a row before stopping
  // Loss-spike guard: a step whose loss lies more than spike_zscore standard deviations above the
  // mean of the last spike_window good steps is skipped like a non-finite one (0 = off).
  double spike_zscore = 0;
  int64_t spike_window = 50;
};

struct BatchRecipe {
  int64_t global_tokens = 0;       // tokens per optimizer step across all ranks
  // Tokens per forward/backward on one rank, or kAuto ("auto" in the file): the largest that the
  // memory of the device allows, chosen when the run starts (train::resolve_by_memory).
  int64_t micro_tokens = 0;
  static constexpr int64_t kAuto = -1;
  bool micro_auto() const { return micro_tokens == kAuto; }
  // Derived: rows per micro-batch and accumulation steps (see Recipe::accumulation).
};

struct RuntimeRecipe {
  uint64_t seed = 0;
  std::string device = "auto";     // auto | cpu | cuda
  bool deterministic = false;
  std::string precision = "auto";  // auto (bf16 on GPU, f32 on CPU) | bf16 | f32
  // What blocks recompute in backward: none | elementwise | mlp | attention_mlp, or auto: the least
  // that lets the micro-batch reach a good size in the device's memory, chosen when the run starts
  // (train::resolve_by_memory).
  std::string recompute = "none";
  bool recompute_auto() const { return recompute == "auto"; }
  // Replay each micro-batch's forward and backward from a CUDA graph (train/step_graphs.h), on one
  // GPU, for the families whose step can be recorded (HRM-Text, the transformer baseline).
  bool cuda_graph = true;
};

struct DistributedRecipe {
  int64_t world_size = 1;          // filled from the launch, not the file
  int64_t zero = 0;                // ZeRO stage: 0 or 1
  int64_t bucket_mb = 25;
};

struct CheckpointRecipe {
  int64_t every = 0;               // steps; 0 = only at the end
  int64_t keep = 3;                // newest checkpoints kept
  int64_t keep_every = 0;          // also keep every M-th step forever (0 = none)
};

struct LogRecipe {
  int64_t every = 10;
};

struct EvalRecipe {
  int64_t every = 0;               // steps; 0 = only at the end
  int64_t batches = 8;             // loss batches per evaluation
  int64_t exact_match = 0;         // held-out examples answered by greedy decoding (tasks)
  bool use_ema = true;
};

struct Recipe {
  std::string family;
  ModelConfig model;
  DataRecipe data;
  OptimRecipe optim;
  ScheduleRecipe schedule;
  TrainRecipe train;
  BatchRecipe batch;
  RuntimeRecipe runtime;
  DistributedRecipe distributed;
  CheckpointRecipe checkpoint;
  LogRecipe log;
  EvalRecipe eval;
  std::string resolved_yaml;       // every value, defaults included

  // batch.micro_tokens once resolved; a ValueError while it is still auto.
  int64_t micro_tokens() const;
  int64_t rows_per_micro_batch() const { return micro_tokens() / data.seq_len; }
  // Micro-batches per optimizer step on each rank.
  int64_t accumulation() const { return batch.global_tokens / (micro_tokens() * distributed.world_size); }
  // runtime.recompute once resolved; a ValueError while it is still auto.
  nn::Recompute recompute() const;
};

// Reads and validates a recipe file with `--set key=value` overrides applied first.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {},
                   int64_t world_size = 1);
// The same from YAML text (tests, resolved recipes stored in checkpoints).
Recipe parse_recipe(const std::string& yaml, const std::string& origin,
                    const std::vector<std::string>& overrides = {}, int64_t world_size = 1);

}  // namespace ponder::io
