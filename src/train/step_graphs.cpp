#include "train/step_graphs.h"

#include <algorithm>
#include <vector>

#include "backend/kernels.h"
#include "backend/profiler.h"
#include "ops/creation.h"
#include "ops/inplace.h"

namespace ponder::train {

int64_t sample_capacity(int64_t samples, int64_t rows) {
  int64_t capacity = 8 * std::max<int64_t>(rows, 1);
  while (capacity < samples) capacity *= 2;
  return capacity;
}

AttentionSpec padded_spec(const AttentionSpec& spec, int64_t capacity) {
  std::vector<int32_t> cu = spec.cu_seqlens.to_vector<int32_t>();
  const int64_t samples = static_cast<int64_t>(cu.size()) - 1;
  PONDER_CHECK(samples <= capacity, ValueError, "padded_spec: ", samples, " samples exceed the capacity ", capacity);
  AttentionSpec out = spec;
  cu.resize(static_cast<size_t>(capacity + 1), cu.back());  // empty samples at the end of the batch
  out.cu_seqlens = Tensor::empty({capacity + 1}, {DType::i32, Device::cpu()});
  std::copy(cu.begin(), cu.end(), out.cu_seqlens.data<int32_t>());
  if (spec.prefix_len.defined()) {
    std::vector<int32_t> prefix = spec.prefix_len.to_vector<int32_t>();
    prefix.resize(static_cast<size_t>(capacity), 0);
    out.prefix_len = Tensor::empty({capacity}, {DType::i32, Device::cpu()});
    std::copy(prefix.begin(), prefix.end(), out.prefix_len.data<int32_t>());
  }
  return out;
}

namespace {

// The batch's tensors in the buffers `into` holds (same shapes), queued as copies.
void copy_batch(const models::PackedBatch& into, const models::PackedBatch& from) {
  backend::copy(into.tokens, from.tokens);
  backend::copy(into.positions, from.positions);
  backend::copy(into.labels, from.labels);
  backend::copy(into.attn.cu_seqlens, from.attn.cu_seqlens);
  if (from.attn.prefix_len.defined()) backend::copy(into.attn.prefix_len, from.attn.prefix_len);
}

}  // namespace

// A recorded micro-step: its input buffers, its gradient scale, the loss it leaves, the graph.
struct StepGraphs::Recorded {
  models::PackedBatch inputs;
  Tensor scale, loss;
  std::unique_ptr<cuda::Graph> graph;
};

StepGraphs::StepGraphs(Device device, bool record, MicroStep step, std::function<std::optional<int64_t>()> variant)
    : device_(device), record_(record && device.is_cuda()), step_(std::move(step)), variant_(std::move(variant)) {}

StepGraphs::~StepGraphs() = default;

Tensor StepGraphs::run_eagerly(const models::PackedBatch& batch, double scale) {
  return step_(models::to_device(batch, device_), full({}, scale, {DType::f64, device_}));
}

Tensor StepGraphs::run(const models::PackedBatch& batch, double scale) {
  const std::optional<int64_t> variant = variant_();
  const bool profiling = backend::detail::active_profiler != nullptr;
  if (profiling) clear();
  if (!record_ || !variant || !enabled() || profiling) return run_eagerly(batch, scale);
  const int64_t capacity = sample_capacity(batch.attn.cu_seqlens.numel() - 1, batch.rows);
  models::PackedBatch padded = batch;
  padded.attn = padded_spec(batch.attn, capacity);
  const Key key{*variant, batch.tokens.numel(), batch.rows, capacity, static_cast<int>(batch.attn.mask)};
  if (!pool_) pool_ = std::make_unique<cuda::MemoryPool>(device_.index);
  if (++seen_[key] == 1) {
    cuda::MemoryPool::Use use(*pool_);
    return run_eagerly(padded, scale);
  }
  Recorded* r = find_or_record(key, padded);
  if (!r) {  // the step cannot be recorded: eagerly from now on, in the shared pool
    clear();
    return run_eagerly(padded, scale);
  }
  copy_batch(r->inputs, padded);
  fill_(r->scale, scale);
  r->graph->replay();
  ++replays_;
  return r->loss;
}

StepGraphs::Recorded* StepGraphs::find_or_record(const Key& key, const models::PackedBatch& batch) {
  if (auto it = recorded_.find(key); it != recorded_.end()) return it->second.get();
  // The inputs live outside the pool, where no other graph's replay writes; the loss, made inside,
  // is read after each replay, before another graph runs.
  auto r = std::make_unique<Recorded>();
  r->inputs = models::to_device(batch, device_);
  r->scale = Tensor::empty({}, {DType::f64, device_});
  try {
    cuda::MemoryPool::Use use(*pool_);
    r->graph = cuda::Graph::record(device_.index, [&] { r->loss = step_(r->inputs, r->scale); });
  } catch (const Error& e) {
    failure_ = e.what();
    return nullptr;
  }
  ++recordings_;
  return (recorded_[key] = std::move(r)).get();
}

std::string StepGraphs::status() const {
  if (!record_) return "off";
  if (!variant_()) return "off (this family's step reads values back to the host)";
  if (!enabled()) return "failed (" + failure_ + ")";
  return std::to_string(replays_) + " micro-steps replayed from " + std::to_string(recordings_) + " recordings";
}

void StepGraphs::clear() {
  recorded_.clear();
  seen_.clear();
  pool_.reset();
}

}  // namespace ponder::train
