#include "train/trainer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "backend/id_check.h"
#include "io/safetensors.h"
#include "ops/cast.h"
#include "ops/elementwise.h"
#include "ops/inplace.h"
#include "ops/reduce.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/muon.h"
#include "optim/sgd.h"
#include "tensor/allocator.h"
#include "train/family.h"
#include "train/stop_signal.h"

namespace ponder::train {
namespace {

using Clock = std::chrono::steady_clock;

// Peak dense bf16 matmul rate of the GPU MFU is reported against (H100/H200 SXM datasheet).
constexpr double kPeakBf16Flops = 989.4e12;

optim::ScheduleOptions schedule_options(const io::Recipe& r) {
  return {r.schedule.warmup_steps, r.train.steps, r.schedule.min_ratio, r.schedule.decay_fraction};
}

bool is_finite(double v) { return std::isfinite(v); }

}  // namespace

std::unique_ptr<optim::Optimizer> make_optimizer(const io::OptimRecipe& o, const nn::NamedTensors& params) {
  if (o.name == "muon") {
    const optim::MuonAdamWOptions options{.muon = {o.lr, o.momentum, o.nesterov, o.ns_steps},
                                          .adamw = {o.adam_lr, o.beta1, o.beta2, o.eps},
                                          .weight_decay = o.weight_decay,
                                          .decay_1d = o.decay_1d};
    return std::make_unique<optim::MuonAdamW>(params, options);
  }
  auto groups = optim::decay_groups(params, o.weight_decay, o.decay_1d);
  if (o.name == "adamw") return std::make_unique<optim::AdamW>(groups, optim::AdamWOptions{o.lr, o.beta1, o.beta2, o.eps});
  if (o.name == "adam_atan2") return std::make_unique<optim::AdamATan2>(groups, optim::AdamAtan2Options{o.lr, o.beta1, o.beta2});
  return std::make_unique<optim::Sgd>(groups, optim::SgdOptions{o.lr, o.momentum, 0.0, o.nesterov});
}

Trainer::Trainer(TrainContext context)
    : ctx_(std::move(context)), schedule_(ctx_.recipe.schedule.name, schedule_options(ctx_.recipe)) {
  const io::Recipe& r = ctx_.recipe;
  ctx_.model->to(ctx_.device);
  ctx_.model->to(ctx_.param_dtype);
  ctx_.model->train(true);
  if (!ctx_.comm) ctx_.comm = std::make_shared<dist::LocalCommunicator>(ctx_.device);
  PONDER_CHECK(ctx_.comm->world_size() == r.distributed.world_size, ValueError, "the recipe was read for ",
               r.distributed.world_size, " ranks but the job has ", ctx_.comm->world_size());
  {
    // Every rank starts from rank 0's weights, whatever its own initialisation gave.
    NoGrad no_grad;
    for (const Tensor& p : ctx_.model->parameters()) ctx_.comm->broadcast(p, 0);
  }
  // ZeRO-1 lays the gradients out for its reduce-scatter and sends nothing during backward. One
  // rank has nothing to shard: its reduce-scatter and all-gather buffers would only copy the
  // gradients and parameters (6 bytes per parameter).
  if (r.distributed.zero == 1 && r.distributed.world_size > 1) {
    zero_ = std::make_unique<dist::ZeroShards>(ctx_.model->parameters(), *ctx_.comm);
    grads_ = std::make_unique<optim::GradBuffer>(zero_->layout());
  } else {
    grads_ = std::make_unique<optim::GradBuffer>(ctx_.model->parameters());
    sync_ = std::make_unique<dist::GradSync>(*grads_, *ctx_.comm, r.distributed.bucket_mb << 20);
    // A recomputed region's backward adds into its parameters on its own, so a weight-shared one
    // (HRM-Text's stacks) grows after its bucket was complete: then reduce after backward.
    overlap_sync_ = r.recompute() < nn::Recompute::mlp;
  }
  // CUDA graphs on one process only: a data-parallel step sends gradients from backward's hooks.
  steps_ = std::make_unique<StepGraphs>(
      ctx_.device, r.runtime.cuda_graph && r.distributed.world_size == 1,
      [this](const models::PackedBatch& batch, const Tensor& scale) {
        Tensor l = ctx_.model->loss_sum(batch);
        (l * scale.to(l.dtype())).backward();
        return l.detach();
      },
      [this] { return ctx_.model->step_variant(); });
  optimizer_ = make_optimizer(r.optim, ctx_.model->named_parameters());
  if (r.optim.ema > 0) ema_ = std::make_unique<optim::Ema>(ctx_.model->named_parameters(), r.optim.ema);
  state_.world_size = r.distributed.world_size;
  if (leader()) {
    std::filesystem::create_directories(ctx_.run_dir / "tokenizer");
    if (ctx_.tokenizer) ctx_.tokenizer->save(ctx_.run_dir / "tokenizer");
    metrics_ = std::make_unique<MetricsLog>(ctx_.run_dir / "metrics.jsonl");
    log_ = make_run_logger(ctx_.run_dir / "log.txt");
    progress_ = std::make_unique<Progress>(log_, r.train.steps);
  }
  for (const std::string& note : ctx_.notes) message(note);
  flops_per_token_ = model_cost(r.model, r.data.seq_len).train_flops_per_token;
}

Trainer::~Trainer() = default;

void Trainer::restore(const LoadedCheckpoint& c) {
  {
    NoGrad no_grad;
    for (auto& [name, p] : ctx_.model->named_parameters()) {
      auto it = c.model.find(name);
      PONDER_CHECK(it != c.model.end(), ValueError, c.dir.string(), ": model.safetensors has no tensor \"", name, "\"");
      copy_(p, it->second);
    }
  }
  if (!c.optimizer.empty()) {
    // One file per rank that wrote it; with ZeRO-1 each rank takes its own parameters' entries.
    std::map<std::string, Tensor> state;
    if (zero_) {
      state = zero_->own_state(*optimizer_, c.optimizer);
    } else {
      for (const auto& shard : c.optimizer) state.insert(shard.begin(), shard.end());
    }
    optimizer_->load_state(state);
  }
  // The masters hold the exact fp32 weights; the working copies are their rounding.
  {
    NoGrad no_grad;
    for (auto& [name, p] : ctx_.model->named_parameters()) {
      Tensor m = optimizer_->master_of(p);
      if (!m.is_same(p)) copy_(m, c.model.at(name));
    }
  }
  if (ema_) {
    PONDER_CHECK(!c.ema.empty(), ValueError, c.dir.string(), ": the recipe keeps an EMA but the checkpoint has none");
    ema_->load_state(c.ema);
  }
  state_ = c.state;
  state_.world_size = ctx_.recipe.distributed.world_size;
  ctx_.train_data->restore(c.state.data_state);
  message("resumed from " + c.dir.string() + " at step " + std::to_string(state_.step));
}

Trainer::StepResult Trainer::train_step() {
  const io::Recipe& r = ctx_.recipe;
  std::vector<models::PackedBatch> micro;
  int64_t loss_tokens = 0;
  for (int64_t i = 0; i < r.accumulation(); ++i) {
    micro.push_back(ctx_.train_data->next());
    loss_tokens += micro.back().loss_tokens;
  }
  StepResult res;
  ctx_.model->begin_step(state_.step, r.train.steps);
  // Summed on the device: reading each micro-batch's loss would stall the host on every backward.
  Tensor loss_sum;
  // Normalised by the tokens of the global batch, so summing the ranks' gradients gives its mean.
  const double scale = 1.0 / std::max(sum_over_ranks(double(loss_tokens)), 1.0);
  {
    backend::DeferIdChecks defer(ctx_.device);  // raised below, where the step waits for its loss anyway
    for (size_t i = 0; i < micro.size(); ++i) {
      // The gradients are complete after this backward. One rank has nothing to send (and a
      // micro-step being recorded, which may fail and rerun eagerly, runs backward's hooks too).
      if (i + 1 == micro.size() && sync_ && overlap_sync_ && ctx_.comm->world_size() > 1) sync_->arm();
      Tensor l64 = steps_->run(micro[i], scale).to(DType::f64);
      loss_sum = loss_sum.defined() ? loss_sum + l64 : l64;
    }
  }
  tell_graph_failure();
  res.exposed_comm_s = zero_ ? zero_->reduce_gradients(*grads_) : sync_->finish();
  const double max_norm = r.optim.clip_grad_norm > 0 ? r.optim.clip_grad_norm : std::numeric_limits<double>::infinity();
  // Queued before the loss is read, so the one wait for the loss (which the skip decisions need)
  // also covers the norm; the optimizer applies the clip factor as it reads the gradients. With
  // ZeRO-1 only the owned gradients are summed: the norm combines every rank's share on the host.
  const optim::GradClip clip =
      zero_ ? optim::grad_clip(zero_->owned(), max_norm, [&](double s) { return sum_over_ranks(s); })
            : optim::grad_clip(grads_->params(), max_norm);
  const double local_loss = loss_sum.item<double>();
  backend::raise_deferred_id_checks(ctx_.device);  // before anything is updated
  res.loss = sum_over_ranks(local_loss) * scale;
  res.grad_norm = clip.norm();
  if (!is_finite(res.loss) || !is_finite(res.grad_norm)) {
    res.skipped = "non-finite values in " + (!is_finite(res.loss) ? std::string("the loss") : first_non_finite_gradient());
  } else {
    res.skipped = loss_spike(res.loss);
  }
  if (res.skipped.empty()) {
    optimizer_->set_lr(r.optim.lr * schedule_(state_.step));
    if (zero_) {
      zero_->step(*optimizer_, clip.factor);
    } else {
      optimizer_->step(clip.factor);
    }
    if (ema_) ema_->update();
    remember_loss(res.loss);
    state_.consecutive_skips = 0;
  } else {
    ++state_.skipped_steps;
    if (++state_.consecutive_skips == 1) first_skip_ = res.skipped;
  }
  grads_->zero();
  ++state_.step;
  state_.tokens += r.batch.global_tokens;
  return res;
}

double Trainer::sum_over_ranks(double value) {
  if (ctx_.comm->world_size() == 1) return value;
  Tensor t = Tensor::empty({1}, {DType::f64, ctx_.comm->device()});
  fill_(t, value);
  ctx_.comm->all_reduce(t);
  return t.item<double>();
}

void Trainer::message(const std::string& text) {
  if (progress_) progress_->message(text);
}

void Trainer::tell_graph_failure() {
  if (steps_->enabled() || told_graph_failure_) return;
  told_graph_failure_ = true;
  message("runtime.cuda_graph: the training step could not be recorded (" + steps_->failure() +
          "); it runs without CUDA graphs");
}

std::string Trainer::first_non_finite_gradient() const {
  for (const auto& [name, p] : ctx_.model->named_parameters()) {
    if (p.grad().defined() && !std::isfinite(norm(p.grad().to(DType::f32)).item<float>())) return "the gradient of " + name;
  }
  return "a gradient";
}

std::string Trainer::loss_spike(double loss) const {
  const io::TrainRecipe& t = ctx_.recipe.train;
  const std::vector<double>& window = state_.recent_losses;
  if (t.spike_zscore <= 0 || int64_t(window.size()) < t.spike_window) return "";
  double mean = 0, var = 0;
  for (double l : window) mean += l;
  mean /= double(window.size());
  for (double l : window) var += (l - mean) * (l - mean);
  const double sd = std::sqrt(var / double(window.size()));
  const double z = (loss - mean) / sd;
  if (!(sd > 0) || !(z > t.spike_zscore)) return "";
  return fmt::format("a loss spike (loss {:.4g} is {:.1f} standard deviations above the mean of the last {} steps)",
                     loss, z, window.size());
}

// The spike guard's window of good steps' losses (kept in checkpoints, so a resume sees it too).
void Trainer::remember_loss(double loss) {
  const io::TrainRecipe& t = ctx_.recipe.train;
  if (t.spike_zscore <= 0) return;
  std::vector<double>& window = state_.recent_losses;
  window.push_back(loss);
  if (int64_t(window.size()) > t.spike_window) window.erase(window.begin(), window.end() - t.spike_window);
}

void Trainer::log_step(const StepResult& res, double seconds) {
  if (!leader()) return;
  const io::Recipe& r = ctx_.recipe;
  nlohmann::json rec = {{"step", state_.step},
                        {"tokens", state_.tokens},
                        {"loss", res.loss},
                        {"lr", optimizer_->lr()},
                        {"grad_norm", res.grad_norm},
                        {"tokens_per_s", double(r.batch.global_tokens) / std::max(seconds, 1e-9)},
                        {"skipped_steps", state_.skipped_steps},
                        {"exposed_comm_s", res.exposed_comm_s},
                        {"first_step", first_step_}};
  if (ctx_.device.is_cuda()) {
    rec["mfu"] = flops_per_token_ * rec["tokens_per_s"].get<double>() / (kPeakBf16Flops * double(r.distributed.world_size));
    rec["mem_bytes"] = memory_stats(ctx_.device).peak_bytes;
  }
  for (const auto& [name, value] : ctx_.model->take_step_metrics()) rec[name] = value;
  progress_->step(rec);
  rec.erase("first_step");
  metrics_->write(rec);
}

void Trainer::evaluate() {
  if (!ctx_.evaluation || !leader()) return;
  steps_->clear();  // evaluation needs the memory the graphs hold (and may swap in the EMA weights)
  const bool swap = ema_ && ctx_.recipe.eval.use_ema;
  if (swap) ema_->swap();
  nlohmann::json rec = ctx_.evaluation->run(*ctx_.model, ctx_.device);
  if (swap) ema_->swap();
  rec["step"] = state_.step;
  rec["tokens"] = state_.tokens;
  progress_->eval(rec);
  metrics_->write(rec);
}

void Trainer::save_checkpoint() {
  // Without ZeRO every rank holds the same model and optimizer state and rank 0 writes it alone;
  // with ZeRO the masters come from their owners and each rank's optimizer shard reaches rank 0
  // through a file beside the checkpoints. The data cursor is global.
  if (!zero_ && !leader()) return;
  const auto dir = ctx_.run_dir / "checkpoints";
  CheckpointContents c;
  for (auto& [name, p] : ctx_.model->named_parameters())
    c.model.emplace_back(name, zero_ ? zero_->master(p, *optimizer_) : optimizer_->master_of(p).to(DType::f32));
  auto shard_path = [&](int rank) { return dir / (".zero_shard.rank" + std::to_string(rank) + ".safetensors"); };
  if (zero_) {
    if (!leader()) {
      std::filesystem::create_directories(dir);
      io::save_safetensors(shard_path(ctx_.comm->rank()), optimizer_->state());
    }
    ctx_.comm->barrier();
    if (!leader()) return;
  }
  c.optimizer.push_back(optimizer_->state());
  for (int rank = 1; zero_ && rank < ctx_.comm->world_size(); ++rank) {
    auto shard = io::load_safetensors(shard_path(rank)).tensors;
    c.optimizer.emplace_back(shard.begin(), shard.end());
  }
  for (auto& [name, b] : ctx_.model->named_buffers()) c.model.emplace_back(name, b);
  if (ema_) c.ema = ema_->state();
  state_.data_state = ctx_.train_data->state();
  c.state = state_;
  c.recipe_yaml = ctx_.recipe.resolved_yaml;
  auto written = write_checkpoint(dir, c);
  for (int rank = 1; zero_ && rank < ctx_.comm->world_size(); ++rank) std::filesystem::remove(shard_path(rank));
  prune_checkpoints(dir, ctx_.recipe.checkpoint.keep, ctx_.recipe.checkpoint.keep_every);
  message("checkpoint " + written.filename().string());
}

RunEnd Trainer::run() {
  const io::Recipe& r = ctx_.recipe;
  install_stop_handlers();
  first_step_ = state_.step;
  auto last_log = Clock::now();
  int64_t since_log = 0;
  StepResult last;
  while (state_.step < r.train.steps) {
    last = train_step();
    ++since_log;
    if (!last.skipped.empty()) {
      message("step " + std::to_string(state_.step) + " skipped: " + last.skipped);
      if (state_.consecutive_skips >= r.train.max_consecutive_skips) {
        save_checkpoint();
        if (!leader()) return RunEnd::diverged;
        progress_->finish();
        log_->error("stopping: {} consecutive skipped steps (the first: {}); the last good state is saved",
                    state_.consecutive_skips, first_skip_);
        return RunEnd::diverged;
      }
    }
    const bool last_step = state_.step == r.train.steps;
    if (state_.step % r.log.every == 0 || last_step) {
      double seconds = std::chrono::duration<double>(Clock::now() - last_log).count() / double(since_log);
      log_step(last, seconds);
      last_log = Clock::now();
      since_log = 0;
    }
    if (r.eval.every > 0 && state_.step % r.eval.every == 0 && !last_step) evaluate();
    if (r.checkpoint.every > 0 && state_.step % r.checkpoint.every == 0 && !last_step) save_checkpoint();
    if (dist::any_rank(*ctx_.comm, stop_requested())) {  // all ranks stop at the same step
      message("stop requested: saving a checkpoint at step " + std::to_string(state_.step));
      save_checkpoint();
      if (progress_) progress_->finish();
      return RunEnd::stopped;
    }
  }
  evaluate();
  save_checkpoint();
  if (!leader()) return RunEnd::finished;
  if (ctx_.evaluation && !ctx_.evaluation->report().empty()) {
    progress_->message("held-out examples:\n" + ctx_.evaluation->report());
  }
  progress_->finish();
  return RunEnd::finished;
}

}  // namespace ponder::train
