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
  double loss = 0;        // the fused LM-head loss at the end of a micro-batch's forward (ModelCost::loss_bytes)
  double gather = 0;      // ZeRO-1: the working-dtype buffer every parameter is all-gathered into
  double shards = 0;      // ZeRO-1: this rank's reduced gradients (fp32) and parameters (working dtype)
  double total() const { return weights + master + gradients + optimizer + activations + loss + gather + shards; }
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

// batch.micro_tokens: auto and runtime.recompute: auto, chosen by the estimated memory (make_plan)
// against kUsableMemory of `available_bytes`. A micro-batch is whole rows dividing one rank's share
// of the global batch. Recomputation is tried cheapest first (none, elementwise, mlp,
// attention_mlp): the first level with which the micro-batch reaches kFillTokens (or the whole
// share, or the recipe's micro-batch, when smaller) is taken, with the largest micro-batch it
// fits; when no level reaches it, the cheapest with which one row fits. A setting the recipe fixes
// is kept. The estimate leaves out the allocator's rounding, library workspaces and the gradients
// in flight during backward, hence the margin: on an H100 the XL benchmark's peaks came out 0.7–0.8%
// over the estimate (60.35 GiB for 59.88 with elementwise, 70.66 for 70.20 without), leaving
// 8 GiB of the 78.66 available at 90%. A ConfigError when nothing fits.
constexpr double kUsableMemory = 0.90;
// Measured on an H100 with the XL recipe: one micro-batch of 3 rows of 4096 tokens trained 12%
// faster than 3 micro-batches of one row (a fuller attention grid, a third of the launches), while
// recomputing elementwise products costs 2%, the MLP 10% and the attention too 23%.
constexpr int64_t kFillTokens = 12288;
struct MemoryChoice {
  int64_t micro_tokens = 0;
  std::string recompute;
  double estimated_bytes = 0;  // make_plan's total with both
  double available_bytes = 0;
};
MemoryChoice choose_by_memory(const io::Recipe& recipe, const PlanOptions& options, double available_bytes);
// "batch.micro_tokens auto: 8192 tokens (2 rows) of 24576 per rank, runtime.recompute auto: none,
// estimated 41.20 GiB of 79.00 GiB available" — what `recipe` left to auto, for logs.
std::string describe(const MemoryChoice& choice, const io::Recipe& recipe);
// `recipe` with the choice filled in.
void apply(const MemoryChoice& choice, io::Recipe& recipe);

Plan make_plan(const io::Recipe& recipe, const PlanOptions& options);
std::string format_plan(const io::Recipe& recipe, const PlanOptions& options, const Plan& plan);

}  // namespace ponder::train
