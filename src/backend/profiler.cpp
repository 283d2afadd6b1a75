#include "backend/profiler.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "tensor/error.h"

#if PONDER_WITH_CUDA
#include <cuda_runtime.h>

#include "tensor/cuda_context.h"
#endif

namespace ponder::backend {

const char* op_phase_name(OpPhase phase) {
  switch (phase) {
    case OpPhase::gemm: return "gemm";
    case OpPhase::attention: return "attention";
    case OpPhase::norm_elementwise: return "norm_elementwise";
    case OpPhase::loss: return "loss";
    case OpPhase::optimizer: return "optimizer";
  }
  return "?";
}

OpPhase op_phase_of(std::string_view kernel) {
  if (kernel == "linear" || kernel == "linear_backward" || kernel == "linear_weight_grads" || kernel == "matmul") {
    return OpPhase::gemm;
  }
  if (kernel.starts_with("attention_")) return OpPhase::attention;
  if (kernel.starts_with("cross_entropy_")) return OpPhase::loss;
  // Updates, EMA and the gradient clipping (global norm, its factor, and scaling where not folded).
  if (kernel.ends_with("_update") || kernel.ends_with("_update_list") || kernel == "sum_of_squares_list" ||
      kernel == "clip_factor" || kernel == "scale")
    return OpPhase::optimizer;
  return OpPhase::norm_elementwise;
}

PhaseSeconds by_phase(const KernelTimes& kernels) {
  PhaseSeconds total{};
  for (const KernelTime& k : kernels) total[static_cast<int>(op_phase_of(k.kernel))] += k.seconds;
  return total;
}

namespace {

using Clock = std::chrono::steady_clock;

// Sums (kernel, seconds) records by kernel name, longest total first.
KernelTimes sum_by_kernel(const std::vector<std::pair<const char*, double>>& records) {
  std::map<std::string_view, KernelTime> sums;
  for (const auto& [kernel, seconds] : records) {
    KernelTime& k = sums[kernel];
    k.kernel = kernel;
    k.calls += 1;
    k.seconds += seconds;
  }
  KernelTimes out;
  for (auto& [name, k] : sums) out.push_back(std::move(k));
  std::stable_sort(out.begin(), out.end(), [](const KernelTime& a, const KernelTime& b) { return a.seconds > b.seconds; });
  return out;
}

#if PONDER_WITH_CUDA
cudaEvent_t new_event() {
  cudaEvent_t e;
  cuda::check(cudaEventCreate(&e), "cudaEventCreate (op profiler)");
  return e;
}
#endif

}  // namespace

struct OpProfiler::Impl {
  Device device;
  int depth = 0;
  std::vector<const char*> kernels;  // of the dispatches since the last collect()
  // CPU: the open dispatch's start and each dispatch's seconds.
  Clock::time_point start;
  std::vector<double> seconds;
#if PONDER_WITH_CUDA
  // GPU: events[2i], events[2i + 1] bracket dispatch i; kept across collect() for reuse.
  std::vector<cudaEvent_t> events;
  cudaStream_t stream = nullptr;

  void record(size_t i) {
    if (i == events.size()) events.push_back(new_event());
    cuda::check(cudaEventRecord(events[i], stream), "cudaEventRecord (op profiler)");
  }
#endif
};

OpProfiler::OpProfiler(Device device) : impl_(std::make_unique<Impl>()) {
  PONDER_CHECK(detail::active_profiler == nullptr, ValueError, "an op profiler is already active on this thread");
  impl_->device = device;
#if PONDER_WITH_CUDA
  if (device.is_cuda()) impl_->stream = cuda::compute_stream(device.index);
#endif
  detail::active_profiler = this;
}

OpProfiler::~OpProfiler() {
  detail::active_profiler = nullptr;
#if PONDER_WITH_CUDA
  if (impl_->device.is_cuda()) {
    cudaStreamSynchronize(impl_->stream);  // no throwing from a destructor; the events are idle after it
    for (cudaEvent_t e : impl_->events) cudaEventDestroy(e);
  }
#endif
}

void OpProfiler::begin(const char* kernel) {
  if (impl_->depth++ > 0) return;
  impl_->kernels.push_back(kernel);
#if PONDER_WITH_CUDA
  if (impl_->device.is_cuda()) return impl_->record(2 * (impl_->kernels.size() - 1));
#endif
  impl_->start = Clock::now();
}

void OpProfiler::end() {
  if (--impl_->depth > 0) return;
#if PONDER_WITH_CUDA
  if (impl_->device.is_cuda()) return impl_->record(2 * impl_->kernels.size() - 1);
#endif
  impl_->seconds.push_back(std::chrono::duration<double>(Clock::now() - impl_->start).count());
}

KernelTimes OpProfiler::collect() {
  Impl& p = *impl_;
  std::vector<std::pair<const char*, double>> records;
  records.reserve(p.kernels.size());
#if PONDER_WITH_CUDA
  if (p.device.is_cuda() && !p.kernels.empty()) {
    cuda::check(cudaEventSynchronize(p.events[2 * p.kernels.size() - 1]), "cudaEventSynchronize (op profiler)");
    for (size_t i = 0; i < p.kernels.size(); ++i) {
      float ms = 0;
      cuda::check(cudaEventElapsedTime(&ms, p.events[2 * i], p.events[2 * i + 1]), "cudaEventElapsedTime (op profiler)");
      records.emplace_back(p.kernels[i], ms / 1e3);
    }
  }
#endif
  for (size_t i = 0; i < p.seconds.size(); ++i) records.emplace_back(p.kernels[i], p.seconds[i]);
  p.kernels.clear();
  p.seconds.clear();
  return sum_by_kernel(records);
}

}  // namespace ponder::backend
