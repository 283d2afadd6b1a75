// Training throughput of a recipe (ponder bench): full optimizer steps through the Trainer —
// forward, backward, clipping, optimizer, EMA — on one random packed batch that stays in device
// memory (no data stall), after warm-up steps. HRM-Text runs at its steady-state backprop depth
// (bp = bp_max unless the recipe pins model.bp). A second set of steps runs under the op profiler
// for the per-phase breakdown, so the throughput numbers carry no profiling cost, and under a
// memory census: what fills the device at the step's peak.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "backend/profiler.h"
#include "io/recipe.h"
#include "tensor/allocator.h"

namespace ponder::train {

struct BenchOptions {
  int64_t warmup_steps = 2;
  int64_t steps = 5;          // timed back to back: tokens/s, TFLOP/s
  int64_t profile_steps = 2;  // timed one by one under the op profiler: the breakdown
};

struct BenchResult {
  std::string family;
  Device device;
  DType dtype = DType::f32;
  int64_t parameters = 0;
  int64_t tokens_per_step = 0, rows_per_micro_batch = 0, row_len = 0, accumulation = 0, backprop_depth = 0;
  std::string memory_choice;  // how batch.micro_tokens / runtime.recompute: auto were resolved (empty when given)
  double flops_per_token = 0;   // model FLOPs of a training step (train::model_cost)
  double step_s = 0;            // mean over the timed steps
  double tokens_per_s = 0;
  double tflops = 0;            // model TFLOP/s
  double mfu = 0;               // of kBf16GemmCeilingTflops
  int64_t peak_bytes = 0;       // the device allocator's high-water mark over the whole run
  std::string cuda_graphs;      // Trainer::cuda_graph_status() after the timed steps
  double last_loss = 0;
  // Breakdown: mean over the profiled steps of the step's wall time and its kernels' time by phase;
  // idle (launch gaps, host work, synchronisation) is the step's time not covered by kernels.
  double profiled_step_s = 0;
  backend::PhaseSeconds phase_s{};
  double idle_s = 0;
  backend::KernelTimes kernels;  // per kernel name, calls and seconds per step, longest first
  MemoryCensus census;           // over the profiled steps: held before them, and live at their peak by size
};

// Measured bf16 cuBLAS GEMM rate of an H100 (shared/GPU.md), the roofline MFU is reported against.
inline constexpr double kBf16GemmCeilingTflops = 796.0;

// Runs the benchmark in a scratch run directory that is removed afterwards.
BenchResult benchmark_training(io::Recipe recipe, const BenchOptions& options);

// The report as a table, and as one JSON object with the same numbers (seconds, bytes).
std::string format_bench(const BenchResult& result, const BenchOptions& options);
nlohmann::json bench_json(const BenchResult& result, const BenchOptions& options);

}  // namespace ponder::train
