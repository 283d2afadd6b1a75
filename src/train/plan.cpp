#include "train/plan.h"

#include <cstdio>
#include <optional>
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

// The micro-batches a rank may run, in rows, largest first: the recipe's, or with auto every
// divisor of the rank's share.
std::vector<int64_t> candidate_rows(const io::Recipe& recipe) {
  const int64_t seq = recipe.data.seq_len, ranks = recipe.distributed.world_size;
  if (!recipe.batch.micro_auto()) return {recipe.batch.micro_tokens / seq};
  PONDER_CHECK(recipe.batch.global_tokens % (seq * ranks) == 0, io::ConfigError, "batch.global_tokens: ",
               recipe.batch.global_tokens, " is not a multiple of data.seq_len × world size (", seq, " × ", ranks,
               ")");
  const int64_t share = recipe.batch.global_tokens / (seq * ranks);
  std::vector<int64_t> rows;
  for (int64_t k = share; k >= 1; --k)
    if (share % k == 0) rows.push_back(k);
  return rows;
}

// The smallest candidate that reaches kFillTokens, or the largest when none does.
int64_t fill_rows(const std::vector<int64_t>& rows, int64_t seq) {
  int64_t fill = rows.front();
  for (int64_t k : rows)
    if (k * seq >= kFillTokens) fill = k;
  return fill;
}

std::vector<std::string> candidate_recomputes(const io::Recipe& recipe) {
  if (!recipe.runtime.recompute_auto()) return {recipe.runtime.recompute};
  return {"none", "elementwise", "mlp", "attention_mlp"};
}

std::string nothing_fits(const io::Recipe& recipe, const MemoryChoice& last) {
  const std::string needs = " needs an estimated " + gib(last.estimated_bytes) + ", more than " +
                            std::to_string(int(kUsableMemory * 100)) + "% of the " + gib(last.available_bytes) +
                            " available";
  const std::string with = recipe.runtime.recompute_auto() ? " even with runtime.recompute attention_mlp" : "";
  if (!recipe.batch.micro_auto()) {
    return "batch.micro_tokens: " + std::to_string(recipe.batch.micro_tokens) + " tokens" + with + needs +
           "; make it smaller or auto";
  }
  return "batch.micro_tokens: auto, but one row of " + std::to_string(recipe.data.seq_len) + " tokens" + with + needs +
         (with.empty() ? "; set runtime.recompute" : "; use") +
         ", distributed.zero: 1 with more GPUs, or a shorter data.seq_len";
}

}  // namespace

MemoryChoice choose_by_memory(const io::Recipe& recipe, const PlanOptions& o, double available_bytes) {
  const std::vector<int64_t> rows = candidate_rows(recipe);
  const int64_t seq = recipe.data.seq_len, fill = fill_rows(rows, seq);
  io::Recipe r = recipe;
  MemoryChoice last{.micro_tokens = 0, .recompute = "", .estimated_bytes = 0, .available_bytes = available_bytes};
  // The largest micro-batch that fits with `recompute`, or nothing.
  auto largest = [&](const std::string& recompute) -> std::optional<MemoryChoice> {
    for (int64_t k : rows) {
      r.runtime.recompute = recompute;
      r.batch.micro_tokens = k * seq;
      last = {k * seq, recompute, make_plan(r, o).memory.total(), available_bytes};
      if (last.estimated_bytes <= kUsableMemory * available_bytes) return last;
    }
    return std::nullopt;
  };
  std::optional<MemoryChoice> fallback;
  for (const std::string& recompute : candidate_recomputes(recipe)) {
    const std::optional<MemoryChoice> c = largest(recompute);
    if (c && c->micro_tokens >= fill * seq) return *c;
    if (c && !fallback) fallback = c;
  }
  if (fallback) return *fallback;
  throw io::ConfigError(nothing_fits(recipe, last));
}

std::string describe(const MemoryChoice& c, const io::Recipe& r) {
  std::string text;
  if (r.batch.micro_auto()) {
    const int64_t share = r.batch.global_tokens / r.distributed.world_size;
    const int64_t rows = c.micro_tokens / r.data.seq_len;
    text = "batch.micro_tokens auto: " + std::to_string(c.micro_tokens) + " tokens (" + std::to_string(rows) +
           (rows == 1 ? " row" : " rows") + ") of " + std::to_string(share) + " per rank, ";
  }
  if (r.runtime.recompute_auto()) text += "runtime.recompute auto: " + c.recompute + ", ";
  return text + "estimated " + gib(c.estimated_bytes) + " of " + gib(c.available_bytes) + " available";
}

void apply(const MemoryChoice& choice, io::Recipe& recipe) {
  recipe.batch.micro_tokens = choice.micro_tokens;
  recipe.runtime.recompute = choice.recompute;
}

Plan make_plan(const io::Recipe& r, const PlanOptions& o) {
  Plan p;
  p.cost = model_cost(r.model, r.data.seq_len, r.recompute());
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
  p.memory.loss = p.cost.loss_bytes(r.micro_tokens());
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
    << (r.recompute() != nn::Recompute::none ? ", recompute " + r.runtime.recompute : "") << "), loss "
    << gib(p.memory.loss);
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
