// The op profiler behind `ponder bench`: CPU dispatches timed and summed by phase, nothing
// counted outside a profiler's life, a dispatch inside another counted once.
#include "backend/profiler.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "ops/ops.h"
#include "tensor/error.h"

namespace ponder {
namespace {

using backend::OpPhase;
using backend::OpProfiler;

double seconds(const backend::KernelTimes& k, OpPhase phase) { return backend::by_phase(k)[static_cast<int>(phase)]; }

TEST(OpProfiler, ClassifiesKernelsByName) {
  EXPECT_EQ(backend::op_phase_of("linear"), OpPhase::gemm);
  EXPECT_EQ(backend::op_phase_of("linear_backward"), OpPhase::gemm);
  EXPECT_EQ(backend::op_phase_of("matmul"), OpPhase::gemm);
  EXPECT_EQ(backend::op_phase_of("attention_backward"), OpPhase::attention);
  EXPECT_EQ(backend::op_phase_of("cross_entropy_forward"), OpPhase::loss);
  EXPECT_EQ(backend::op_phase_of("adam_atan2_update_list"), OpPhase::optimizer);
  EXPECT_EQ(backend::op_phase_of("ema_update"), OpPhase::optimizer);
  EXPECT_EQ(backend::op_phase_of("sum_of_squares_list"), OpPhase::optimizer);
  EXPECT_EQ(backend::op_phase_of("clip_factor"), OpPhase::optimizer);
  EXPECT_EQ(backend::op_phase_of("add_rms_norm_forward"), OpPhase::norm_elementwise);
  EXPECT_EQ(backend::op_phase_of("binary"), OpPhase::norm_elementwise);
}

TEST(OpProfiler, SumsCpuDispatchesByPhaseUntilCollected) {
  Generator gen(1);
  Tensor a = randn({256, 256}, gen), b = randn({256, 256}, gen);
  matmul(a, b);  // before any profiler: not counted anywhere
  OpProfiler profiler(Device::cpu());
  matmul(a, b);
  Tensor c = a + b;
  const backend::KernelTimes s = profiler.collect();
  EXPECT_GT(seconds(s, OpPhase::gemm), 0);
  EXPECT_GT(seconds(s, OpPhase::norm_elementwise), 0);
  EXPECT_EQ(seconds(s, OpPhase::attention), 0);
  EXPECT_EQ(seconds(s, OpPhase::loss), 0);
  EXPECT_EQ(seconds(s, OpPhase::optimizer), 0);
  EXPECT_TRUE(profiler.collect().empty());  // collect() starts over
}

TEST(OpProfiler, CountsCallsPerKernelLongestFirst) {
  Generator gen(1);
  Tensor a = randn({384, 384}, gen), b = randn({384, 384}, gen);
  OpProfiler profiler(Device::cpu());
  for (int i = 0; i < 3; ++i) matmul(a, b);
  Tensor c = a + b;
  const backend::KernelTimes s = profiler.collect();
  ASSERT_EQ(s.size(), 2u);  // one entry per kernel name, whatever the calls
  auto calls_of = [&](const std::string& kernel) {
    auto it = std::find_if(s.begin(), s.end(), [&](const backend::KernelTime& k) { return k.kernel == kernel; });
    return it == s.end() ? int64_t(-1) : int64_t(it->calls);
  };
  EXPECT_EQ(calls_of("matmul"), 3);
  EXPECT_EQ(calls_of("binary"), 1);
  // Longest first (which kernel that is depends on the machine's load: wall-clock times on a CPU).
  EXPECT_GE(s[0].seconds, s[1].seconds);
}

TEST(OpProfiler, CountsANestedDispatchOnceAsTheOuterOne) {
  Generator gen(1);
  Tensor a = randn({256, 256}, gen), b = randn({256, 256}, gen);
  OpProfiler profiler(Device::cpu());
  profiler.begin("matmul");
  Tensor c = a + b;  // dispatched inside the "matmul" bracket
  profiler.end();
  const backend::KernelTimes s = profiler.collect();
  EXPECT_GT(seconds(s, OpPhase::gemm), 0);
  EXPECT_EQ(seconds(s, OpPhase::norm_elementwise), 0);
}

TEST(OpProfiler, OnePerThreadAtATime) {
  {
    OpProfiler profiler(Device::cpu());
    EXPECT_THROW(OpProfiler second(Device::cpu()), ValueError);
  }
  OpProfiler again(Device::cpu());  // the first one's end made room
  EXPECT_TRUE(again.collect().empty());
}

}  // namespace
}  // namespace ponder
