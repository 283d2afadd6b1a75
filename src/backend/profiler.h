// Opt-in timing of kernel dispatches by phase, for benchmarks (ponder bench): while an OpProfiler
// is alive on a thread, every PONDER_DISPATCH on that thread is timed — by a pair of CUDA events
// on the compute stream for a GPU profiler, by the wall clock for a CPU one — and the times are
// resolved only when collect() is called, so a step is never synchronised per op. Without a
// profiler a dispatch pays one test of a thread-local pointer.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/device.h"

namespace ponder::backend {

enum class OpPhase { gemm, attention, norm_elementwise, loss, optimizer };
inline constexpr int kOpPhases = 5;
using PhaseSeconds = std::array<double, kOpPhases>;

const char* op_phase_name(OpPhase phase);
// The phase a kernel counts toward, by its name as PONDER_DISPATCH spells it.
OpPhase op_phase_of(std::string_view kernel);

// The dispatches of one kernel name: how many and their summed time.
struct KernelTime {
  std::string kernel;
  int64_t calls = 0;
  double seconds = 0;
};
using KernelTimes = std::vector<KernelTime>;  // longest total first

PhaseSeconds by_phase(const KernelTimes& kernels);

class OpProfiler {
 public:
  // Starts timing this thread's dispatches on `device` (one profiler per thread at a time).
  explicit OpProfiler(Device device);
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Time per kernel name of the dispatches since construction or the previous collect();
  // waits for a GPU to finish them.
  KernelTimes collect();

  // Brackets one dispatch (DispatchScope calls these); a dispatch inside another counts once.
  void begin(const char* kernel);
  void end();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

namespace detail {
inline thread_local OpProfiler* active_profiler = nullptr;
}

// Times the dispatch it brackets when a profiler is active. PONDER_DISPATCH makes one as a
// temporary, which lives until the end of the statement that launches the kernel.
class DispatchScope {
 public:
  explicit DispatchScope(const char* kernel) : profiler_(detail::active_profiler) {
    if (profiler_) profiler_->begin(kernel);
  }
  ~DispatchScope() {
    if (profiler_) profiler_->end();
  }
  DispatchScope(const DispatchScope&) = delete;
  DispatchScope& operator=(const DispatchScope&) = delete;

 private:
  OpProfiler* profiler_;
};

}  // namespace ponder::backend
