// A training micro-step — a micro-batch's forward, summed loss and backward into the gradient
// buffer — replayed from a CUDA graph (runtime.cuda_graph). Launching the few thousand kernels of
// an HRM-Text step one by one costs the host more than the GPU needs for the small ones; a graph
// launches them at once.
//
// A graph repeats fixed shapes on fixed addresses, so each micro-batch is copied into input
// buffers the graph owns, and its samples are padded with empty ones to a capacity (8 per row,
// doubled until the samples fit): cu_seqlens and prefix_len get a fixed length, and the
// attention kernels skip empty samples. A graph is recorded per (model step variant, tokens, rows,
// sample capacity, mask) — a run sees a handful — the second time that key comes: the first
// runs eagerly, which also settles GEMM algorithm choices and caches that recording cannot make.
// These eager micro-steps and the recordings (so the replays) take their temporaries from one
// private pool: the graphs share it (a replay leaves nothing behind but its loss), so they hold
// the activations of one micro-step, not of one per graph. Micro-steps run eagerly compute
// exactly what a replay does (same kernels, same order), so a run gives the same numbers with
// graphs on or off.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "models/batch.h"
#include "tensor/cuda_graph.h"

namespace ponder::train {

// How many samples the graph of a batch of `samples` samples in `rows` rows is recorded for.
int64_t sample_capacity(int64_t samples, int64_t rows);
// cu_seqlens and prefix_len (host tensors) followed by empty samples up to `capacity` samples.
AttentionSpec padded_spec(const AttentionSpec& spec, int64_t capacity);

// The micro-step: the summed loss of a device batch (returned detached), with its backward seeded
// by `scale` (0-d f64 on the device) queued too.
using MicroStep = std::function<Tensor(const models::PackedBatch& batch, const Tensor& scale)>;

class StepGraphs {
 public:
  // `variant` says what, besides the batch, decides the step's kernels (LanguageModel::step_variant).
  // Without `record` (or on the CPU) every micro-step runs eagerly, unpadded.
  StepGraphs(Device device, bool record, MicroStep step, std::function<std::optional<int64_t>()> variant);
  ~StepGraphs();

  // Runs the micro-step for `batch` (on the host) with gradient scale `scale`, eagerly or from a
  // graph; returns the summed loss, a device tensor valid until the next call. While an op
  // profiler times dispatches (ponder bench --profile-steps), steps run eagerly and graphs are
  // dropped: a replay has no dispatches to time.
  Tensor run(const models::PackedBatch& batch, double scale);
  // Drops every graph and hands their memory back (before evaluation, which needs it).
  void clear();
  // Whether graphs are used: false once a recording failed (the reason is in failure()).
  bool enabled() const { return failure_.empty(); }
  const std::string& failure() const { return failure_; }
  // "off", "off (why)", "failed (why)" or how many micro-steps were replayed from how many
  // recordings, for reports.
  std::string status() const;

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int>;  // variant, tokens, rows, capacity, mask
  struct Recorded;
  Tensor run_eagerly(const models::PackedBatch& batch, double scale);
  Recorded* find_or_record(const Key& key, const models::PackedBatch& batch);

  Device device_;
  bool record_;
  MicroStep step_;
  std::function<std::optional<int64_t>()> variant_;
  std::unique_ptr<cuda::MemoryPool> pool_;  // made on the first micro-step that may be recorded
  std::map<Key, int> seen_;                 // keys run eagerly once, waiting for their second call
  std::map<Key, std::unique_ptr<Recorded>> recorded_;
  std::string failure_;
  int64_t recordings_ = 0, replays_ = 0;
};

}  // namespace ponder::train
