#include "train/benchmark.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "data/packing.h"
#include "models/hrm_text/hrm_text.h"
#include "tensor/allocator.h"
#include "tensor/cuda_context.h"
#include "train/family.h"
#include "train/session.h"
#include "train/trainer.h"

namespace ponder::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kTopKernels = 16;     // rows of the per-kernel table
constexpr size_t kTopBlockSizes = 12;  // rows of the memory census

double gib(int64_t bytes) { return double(bytes) / double(1ll << 30); }

void wait_for(Device device) {
#if PONDER_WITH_CUDA
  if (device.is_cuda()) cuda::synchronize(device.index);
#else
  (void)device;
#endif
}

// One row of random tokens cut into 2-8 samples (fewer when the row is short), each with a random
// instruction length: the packing of the 1B run's instruction data, not its statistics.
std::vector<data::Sample> random_row(int64_t row_len, int64_t vocab, std::mt19937_64& gen) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); };
  const int64_t samples = uniform(std::min<int64_t>(2, row_len / 2), std::max<int64_t>(1, std::min<int64_t>(8, row_len / 2)));
  std::vector<int64_t> cuts = {0, row_len};
  while (int64_t(cuts.size()) < samples + 1) {
    const int64_t cut = uniform(1, row_len - 1);
    // Samples of at least 2 tokens (a one-token instruction and response).
    bool near = false;
    for (int64_t c : cuts) near = near || std::abs(c - cut) < 2;
    if (!near) cuts.push_back(cut);
  }
  std::sort(cuts.begin(), cuts.end());
  std::vector<data::Sample> row;
  for (size_t s = 1; s < cuts.size(); ++s) {
    const int64_t occupied = cuts[s] - cuts[s - 1];  // = instruction + response - 1
    const int64_t instruction = uniform(1, occupied);
    data::Sample sample;
    sample.instruction.resize(instruction);
    sample.response.resize(occupied + 1 - instruction);
    for (auto& t : sample.instruction) t = int32_t(uniform(0, vocab - 1));
    for (auto& t : sample.response) t = int32_t(uniform(0, vocab - 1));
    row.push_back(std::move(sample));
  }
  return row;
}

// The same random micro-batch every time, built once in host memory like the loader's batches
// (the trainer copies it to the device, a few hundred kB).
class ResidentBatch final : public BatchSource {
 public:
  explicit ResidentBatch(const io::Recipe& r) {
    std::mt19937_64 gen(r.runtime.seed);
    std::vector<std::vector<data::Sample>> rows;
    for (int64_t i = 0; i < r.rows_per_micro_batch(); ++i) rows.push_back(random_row(r.data.seq_len, vocab_size(r.model), gen));
    const data::PackOptions pack{.row_len = r.data.seq_len,
                                 .mask = r.data.attention_mask(),
                                 .loss_on_response_only = r.data.loss == "response"};
    batch_ = data::pack_rows(rows, pack);
  }
  models::PackedBatch next() override { return batch_; }
  std::string state() const override { return {}; }
  void restore(const std::string&) override {}

 private:
  models::PackedBatch batch_;
};

// A run directory for the Trainer's log and metrics files, removed when the benchmark ends.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device entropy;
    path_ = fs::temp_directory_path() / ("ponder_bench_" + std::to_string(entropy()));
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Seconds per step of `steps` steps run back to back, waiting for the device only at the ends.
double time_steps(Trainer& trainer, Device device, int64_t steps, double* last_loss) {
  wait_for(device);
  const auto start = Clock::now();
  for (int64_t i = 0; i < steps; ++i) *last_loss = trainer.train_step().loss;
  wait_for(device);
  return std::chrono::duration<double>(Clock::now() - start).count() / double(std::max<int64_t>(steps, 1));
}

// Adds `more` into `sums` by kernel name.
void add_kernel_times(backend::KernelTimes& sums, const backend::KernelTimes& more) {
  for (const backend::KernelTime& k : more) {
    auto it = std::find_if(sums.begin(), sums.end(), [&](const backend::KernelTime& s) { return s.kernel == k.kernel; });
    if (it == sums.end()) it = sums.insert(sums.end(), {k.kernel, 0, 0});
    it->calls += k.calls;
    it->seconds += k.seconds;
  }
}

void profile(Trainer& trainer, Device device, int64_t steps, BenchResult& r) {
  if (steps == 0) return;
  trainer.release_cuda_graphs();  // profiled steps run eagerly; dropping the graphs is not their time
  backend::OpProfiler profiler(device);
  begin_memory_census(device);
  for (int64_t i = 0; i < steps; ++i) {
    double loss = 0;
    r.profiled_step_s += time_steps(trainer, device, 1, &loss);
    add_kernel_times(r.kernels, profiler.collect());
  }
  r.census = end_memory_census(device);
  r.profiled_step_s /= double(steps);
  for (backend::KernelTime& k : r.kernels) {
    k.calls /= steps;
    k.seconds /= double(steps);
  }
  std::stable_sort(r.kernels.begin(), r.kernels.end(),
                   [](const backend::KernelTime& a, const backend::KernelTime& b) { return a.seconds > b.seconds; });
  r.phase_s = backend::by_phase(r.kernels);
  double kernels = 0;
  for (double s : r.phase_s) kernels += s;
  r.idle_s = std::max(0.0, r.profiled_step_s - kernels);
}

}  // namespace

BenchResult benchmark_training(io::Recipe recipe, const BenchOptions& options) {
  auto* hrm = std::get_if<models::HrmTextConfig>(&recipe.model);
  if (hrm && hrm->bp.fixed == 0) hrm->bp.fixed = hrm->bp.bp_max;
  BenchResult r;
  const Device device = resolve_device(recipe);
  dist::LocalCommunicator local(device);
  r.memory_choice = resolve_by_memory(recipe, device, local);
  const ModelCost cost = model_cost(recipe.model, recipe.data.seq_len);
  r.parameters = cost.parameters;
  r.flops_per_token = cost.train_flops_per_token;
  r.backprop_depth = hrm ? hrm->bp.fixed : 0;
  r.tokens_per_step = recipe.batch.global_tokens;
  r.rows_per_micro_batch = recipe.rows_per_micro_batch();
  r.row_len = recipe.data.seq_len;
  r.accumulation = recipe.accumulation();

  ScratchDir scratch;
  TrainContext ctx;
  ctx.recipe = recipe;
  ctx.run_dir = scratch.path();
  ctx.device = device;
  ctx.param_dtype = resolve_precision(recipe, ctx.device);
  ctx.model = build_training_model(recipe);
  ctx.train_data = std::make_unique<ResidentBatch>(recipe);
  r.family = ctx.model->family();
  r.device = ctx.device;
  r.dtype = ctx.param_dtype;
  Trainer trainer(std::move(ctx));

  time_steps(trainer, r.device, options.warmup_steps, &r.last_loss);
  r.step_s = time_steps(trainer, r.device, options.steps, &r.last_loss);
  r.cuda_graphs = trainer.cuda_graph_status();
  r.tokens_per_s = double(r.tokens_per_step) / r.step_s;
  r.tflops = r.flops_per_token * r.tokens_per_s / 1e12;
  r.mfu = r.tflops / kBf16GemmCeilingTflops;
  profile(trainer, r.device, options.profile_steps, r);
  r.peak_bytes = memory_stats(r.device).peak_bytes;
  return r;
}

std::string format_bench(const BenchResult& r, const BenchOptions& o) {
  std::string out;
  auto line = [&out](const char* format, auto... values) {
    char buf[256];
    std::snprintf(buf, sizeof buf, format, values...);
    out += buf;
  };
  line("%s, %lld parameters, %s %s\n", r.family.c_str(), (long long)r.parameters, r.device.str().c_str(),
       std::string(dtype_name(r.dtype)).c_str());
  line("step: %lld tokens = %lld micro-batch(es) of %lld rows x %lld tokens", (long long)r.tokens_per_step,
       (long long)r.accumulation, (long long)r.rows_per_micro_batch, (long long)r.row_len);
  if (r.backprop_depth > 0) line(", backprop through %lld calls", (long long)r.backprop_depth);
  if (!r.memory_choice.empty()) line("\n%s", r.memory_choice.c_str());
  line("\n%lld timed steps after %lld warm-up: %.4f s/step, loss %.4f\n", (long long)o.steps,
       (long long)o.warmup_steps, r.step_s, r.last_loss);
  line("%-16s %12.0f\n", "tokens/s", r.tokens_per_s);
  line("%-16s %12.4g   (%.4g GFLOP/token)\n", "model TFLOP/s", r.tflops, r.flops_per_token / 1e9);
  line("%-16s %11.1f%%   of %.0f TFLOP/s (bf16 GEMM ceiling)\n", "MFU", 100 * r.mfu, kBf16GemmCeilingTflops);
  line("%-16s %12.2f GiB\n", "peak memory", double(r.peak_bytes) / double(1ll << 30));
  line("%-16s %s\n", "CUDA graphs", r.cuda_graphs.c_str());
  if (o.profile_steps == 0) return out;
  line("breakdown, mean of %lld profiled step(s) of %.4f s (run without CUDA graphs, whose kernels cannot be "
       "timed one by one):\n", (long long)o.profile_steps, r.profiled_step_s);
  line("  %-18s %10s %7s\n", "phase", "ms", "share");
  auto row = [&](const char* name, double s) { line("  %-18s %10.3f %6.1f%%\n", name, 1e3 * s, 100 * s / r.profiled_step_s); };
  for (int p = 0; p < backend::kOpPhases; ++p) row(backend::op_phase_name(backend::OpPhase(p)), r.phase_s[p]);
  row("idle", r.idle_s);
  line("kernels with the most time per step:\n");
  line("  %-28s %-17s %6s %10s %7s\n", "kernel", "phase", "calls", "ms", "share");
  for (size_t i = 0; i < std::min<size_t>(r.kernels.size(), kTopKernels); ++i) {
    const backend::KernelTime& k = r.kernels[i];
    line("  %-28s %-17s %6lld %10.3f %6.1f%%\n", k.kernel.c_str(), backend::op_phase_name(backend::op_phase_of(k.kernel)),
         (long long)k.calls, 1e3 * k.seconds, 100 * k.seconds / r.profiled_step_s);
  }
  line("memory at the profiled steps' peak, %.2f GiB: %.2f GiB held before them, and live blocks they allocated:\n",
       gib(r.census.peak), gib(r.census.held_before));
  line("  %6s x %-12s %10s\n", "count", "block", "GiB");
  int64_t rest = 0;
  for (size_t i = 0; i < r.census.at_peak.size(); ++i) {
    const MemoryCensus::Blocks& b = r.census.at_peak[i];
    if (i < kTopBlockSizes) {
      line("  %6lld x %9.2f MiB %10.3f\n", (long long)b.count, double(b.bytes) / (1 << 20), gib(b.bytes * b.count));
    } else {
      rest += b.bytes * b.count;
    }
  }
  if (rest > 0) line("  %-21s %10.3f\n", "other sizes", gib(rest));
  return out;
}

nlohmann::json bench_json(const BenchResult& r, const BenchOptions& o) {
  nlohmann::json phases = {{"step_s", r.profiled_step_s}, {"idle_s", r.idle_s}, {"steps", o.profile_steps}};
  for (int p = 0; p < backend::kOpPhases; ++p)
    phases[std::string(backend::op_phase_name(backend::OpPhase(p))) + "_s"] = r.phase_s[p];
  nlohmann::json kernels = nlohmann::json::array();
  for (const backend::KernelTime& k : r.kernels)
    kernels.push_back({{"kernel", k.kernel}, {"calls", k.calls}, {"seconds", k.seconds}});
  phases["kernels"] = kernels;
  nlohmann::json blocks = nlohmann::json::array();
  for (const MemoryCensus::Blocks& b : r.census.at_peak) blocks.push_back({{"bytes", b.bytes}, {"count", b.count}});
  phases["memory_at_peak"] = {
      {"peak_bytes", r.census.peak}, {"held_before_bytes", r.census.held_before}, {"blocks", blocks}};
  return {{"family", r.family},
          {"device", r.device.str()},
          {"dtype", std::string(dtype_name(r.dtype))},
          {"parameters", r.parameters},
          {"tokens_per_step", r.tokens_per_step},
          {"rows_per_micro_batch", r.rows_per_micro_batch},
          {"row_len", r.row_len},
          {"accumulation", r.accumulation},
          {"memory_choice", r.memory_choice},
          {"backprop_depth", r.backprop_depth},
          {"warmup_steps", o.warmup_steps},
          {"steps", o.steps},
          {"step_s", r.step_s},
          {"loss", r.last_loss},
          {"tokens_per_s", r.tokens_per_s},
          {"flops_per_token", r.flops_per_token},
          {"tflops", r.tflops},
          {"mfu", r.mfu},
          {"peak_bytes", r.peak_bytes},
          {"cuda_graphs", r.cuda_graphs},
          {"breakdown", phases}};
}

}  // namespace ponder::train
