// `ponder plan`: what a recipe costs before it runs — parameters, FLOPs per token, memory per GPU,
// wall time and price of its token budget on N GPUs.
#pragma once

#include <string>

#include "io/recipe.h"
#include "train/family.h"

namespace ponder::train {

struct PlanOptions {
  int64_t gpus = 1;
  double tokens_per_s_per_gpu = 0;  // measured or given; 0 = estimate from assumed_mfu
  double assumed_mfu = 0.40;
  double peak_flops = 989.4e12;     // H100/H200 dense bf16
  double gpu_hour_price = 0;        // USD; 0 = no cost line
};

struct MemoryPlan {  // bytes per GPU
  double weights = 0;     // bf16 working copy
  double master = 0;      // fp32 master weights (sharded with ZeRO-1)
  double gradients = 0;   // fp32
  double optimizer = 0;   // fp32 state (sharded with ZeRO-1)
  double activations = 0; // saved for backward, one micro-batch
  double gather = 0;      // ZeRO-1: the working-dtype buffer every parameter is all-gathered into
  double shards = 0;      // ZeRO-1: this rank's reduced gradients (fp32) and parameters (working dtype)
  double total() const { return weights + master + gradients + optimizer + activations + gather + shards; }
};

struct Plan {
  ModelCost cost;
  MemoryPlan memory;
  int64_t tokens = 0;       // the recipe's budget: steps × global batch
  int64_t steps = 0;
  double tokens_per_s_per_gpu = 0;
  bool estimated_rate = false;
  double hours = 0;
  double price = 0;
};

// batch.micro_tokens: auto. The largest micro-batch of whole rows that divides one rank's share of
// the global batch and whose estimated memory (make_plan) fits kUsableMemory of `available_bytes`.
// The estimate leaves out the allocator's rounding, library workspaces and the gradients in
// flight during backward (the XL benchmark's peak came out 2–5% over it), hence the margin. A
// ConfigError when not even one row fits.
constexpr double kUsableMemory = 0.85;
struct MicroBatchChoice {
  int64_t micro_tokens = 0;
  double estimated_bytes = 0;  // make_plan's total at that micro-batch
  double available_bytes = 0;
};
MicroBatchChoice choose_micro_batch(const io::Recipe& recipe, const PlanOptions& options, double available_bytes);
// "auto: 8192 tokens (2 rows) of 24576 per rank, estimated 41.20 GiB of 79.00 GiB" — for logs.
std::string describe(const MicroBatchChoice& choice, const io::Recipe& recipe);

Plan make_plan(const io::Recipe& recipe, const PlanOptions& options);
std::string format_plan(const io::Recipe& recipe, const PlanOptions& options, const Plan& plan);

}  // namespace ponder::train
