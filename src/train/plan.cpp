#include "train/plan.h"

#include <cstdio>
#include <sstream>

namespace ponder::train {
namespace {

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1 << 30));
  return buf;
}

std::string si(double v) {
  char buf[32];
  const char* units[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (v >= 1000 && u < 5) {
    v /= 1000;
    ++u;
  }
  std::snprintf(buf, sizeof buf, "%.3g%s", v, units[u]);
  return buf;
}

}  // namespace

MicroBatchChoice choose_micro_batch(const io::Recipe& recipe, const PlanOptions& o, double available_bytes) {
  const int64_t seq = recipe.data.seq_len, ranks = recipe.distributed.world_size;
  PONDER_CHECK(recipe.batch.global_tokens % (seq * ranks) == 0, io::ConfigError, "batch.global_tokens: ",
               recipe.batch.global_tokens, " is not a multiple of data.seq_len × world size (", seq, " × ", ranks, ")");
  const int64_t rows = recipe.batch.global_tokens / (seq * ranks);
  io::Recipe r = recipe;
  MicroBatchChoice choice{.available_bytes = available_bytes};
  for (int64_t k = rows; k >= 1; --k) {
    if (rows % k != 0) continue;
    r.batch.micro_tokens = k * seq;
    choice.micro_tokens = k * seq;
    choice.estimated_bytes = make_plan(r, o).memory.total();
    if (choice.estimated_bytes <= kUsableMemory * available_bytes) return choice;
  }
  throw io::ConfigError("batch.micro_tokens: auto, but one row of " + std::to_string(seq) + " tokens needs an estimated " +
                        gib(choice.estimated_bytes) + ", more than " + std::to_string(int(kUsableMemory * 100)) +
                        "% of the " + gib(available_bytes) +
                        " available; set runtime.recompute, distributed.zero: 1 with more GPUs, or a shorter data.seq_len");
}

std::string describe(const MicroBatchChoice& c, const io::Recipe& r) {
  const int64_t share = r.batch.global_tokens / r.distributed.world_size;
  const int64_t rows = c.micro_tokens / r.data.seq_len;
  return "auto: " + std::to_string(c.micro_tokens) + " tokens (" + std::to_string(rows) + (rows == 1 ? " row" : " rows") +
         ") of " + std::to_string(share) + " per rank, estimated " + gib(c.estimated_bytes) + " of " +
         gib(c.available_bytes) + " available";
}

Plan make_plan(const io::Recipe& r, const PlanOptions& o) {
  Plan p;
  p.cost = model_cost(r.model, r.data.seq_len, nn::parse_recompute(r.runtime.recompute));
  const double params = double(p.cost.parameters);
  const bool sharded = r.distributed.zero == 1 && o.gpus > 1;  // as the trainer: one rank does not shard
  const double zero_shards = sharded ? double(o.gpus) : 1.0;
  // momentum / (m, v); muon keeps only a momentum for hidden weights, so 2 bounds it from above
  const double state_tensors = r.optim.name == "sgd" ? 1.0 : 2.0;
  p.memory.weights = 2 * params;
  p.memory.master = 4 * params / zero_shards;
  p.memory.gradients = 4 * params;
  p.memory.optimizer = 4 * state_tensors * params / zero_shards + (r.optim.ema > 0 ? 4 * params / zero_shards : 0);
  p.memory.activations = p.cost.activation_bytes_per_token * double(r.micro_tokens());
  p.memory.gather = sharded ? 2 * params : 0;
  p.memory.shards = sharded ? (4 + 2) * params / zero_shards : 0;
  p.steps = r.train.steps;
  p.tokens = r.train.steps * r.batch.global_tokens;
  p.estimated_rate = o.tokens_per_s_per_gpu <= 0;
  p.tokens_per_s_per_gpu = p.estimated_rate ? o.assumed_mfu * o.peak_flops / p.cost.train_flops_per_token
                                            : o.tokens_per_s_per_gpu;
  p.hours = double(p.tokens) / (p.tokens_per_s_per_gpu * double(o.gpus)) / 3600.0;
  p.price = p.hours * double(o.gpus) * o.gpu_hour_price;
  return p;
}

std::string format_plan(const io::Recipe& r, const PlanOptions& o, const Plan& p) {
  std::ostringstream s;
  char buf[160];
  s << "model        " << r.family << ", " << p.cost.parameters << " parameters (" << si(double(p.cost.parameters)) << ")\n";
  s << "compute      " << si(p.cost.forward_flops_per_token) << "FLOP/token forward, "
    << si(p.cost.train_flops_per_token) << "FLOP/token training (rows of " << r.data.seq_len << " tokens)\n";
  s << "budget       " << p.steps << " steps x " << r.batch.global_tokens << " tokens = " << si(double(p.tokens)) << " tokens\n";
  s << "memory/GPU   weights " << gib(p.memory.weights) << ", master " << gib(p.memory.master) << ", grads "
    << gib(p.memory.gradients) << ", optimizer " << gib(p.memory.optimizer) << ", activations " << gib(p.memory.activations)
    << " (micro-batch " << r.micro_tokens() << " tokens" << (p.memory.gather > 0 ? ", ZeRO-1" : "")
    << (r.runtime.recompute != "none" ? ", recompute " + r.runtime.recompute : "") << ")";
  if (p.memory.gather > 0) s << ", all-gather buffer " << gib(p.memory.gather) << ", shards " << gib(p.memory.shards);
  s << "\n";
  s << "             total " << gib(p.memory.total()) << "\n";
  std::snprintf(buf, sizeof buf, "throughput   %.0f tokens/s per GPU%s\n", p.tokens_per_s_per_gpu,
                p.estimated_rate ? (" (estimated at " + std::to_string(int(o.assumed_mfu * 100)) + "% MFU; pass --tokens-per-s)").c_str() : "");
  s << buf;
  std::snprintf(buf, sizeof buf, "time         %.1f hours on %lld GPU(s)\n", p.hours, static_cast<long long>(o.gpus));
  s << buf;
  if (o.gpu_hour_price > 0) {
    std::snprintf(buf, sizeof buf, "cost         $%.0f at $%.2f per GPU-hour\n", p.price, o.gpu_hour_price);
    s << buf;
  }
  return s.str();
}

}  // namespace ponder::train
