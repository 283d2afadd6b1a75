#include "optim/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "support/test_util.h"

namespace ponder::optim {
namespace {

using testing::error_message;

TEST(Schedule, ConstantAfterLinearWarmup) {
  Schedule s("constant", {.warmup_steps = 4});
  EXPECT_DOUBLE_EQ(s(0), 0.25);
  EXPECT_DOUBLE_EQ(s(1), 0.5);
  EXPECT_DOUBLE_EQ(s(3), 1.0);  // end of warmup
  EXPECT_DOUBLE_EQ(s(1000), 1.0);
  EXPECT_DOUBLE_EQ(Schedule("constant", {})(0), 1.0);  // no warmup
}

TEST(Schedule, CosineFromTheEndOfWarmupToTheMinimum) {
  Schedule s("cosine", {.warmup_steps = 10, .total_steps = 110, .min_ratio = 0.1});
  EXPECT_DOUBLE_EQ(s(0), 0.1);
  EXPECT_DOUBLE_EQ(s(9), 1.0);      // end of warmup
  EXPECT_NEAR(s(59), 0.55, 1e-15);  // halfway through the decay: (1 + min) / 2
  EXPECT_NEAR(s(34), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25)), 1e-15);
  EXPECT_DOUBLE_EQ(s(109), 0.1);  // last update
  EXPECT_DOUBLE_EQ(s(500), 0.1);
  EXPECT_LT(s(10), 1.0);
}

TEST(Schedule, WarmupStableDecayIsATrapezoid) {
  Schedule s("wsd", {.warmup_steps = 10, .total_steps = 100, .min_ratio = 0.1, .decay_fraction = 0.2});
  EXPECT_DOUBLE_EQ(s(0), 0.1);
  EXPECT_DOUBLE_EQ(s(9), 1.0);   // end of warmup
  EXPECT_DOUBLE_EQ(s(50), 1.0);  // stable
  EXPECT_DOUBLE_EQ(s(79), 1.0);  // last stable update
  EXPECT_NEAR(s(89), 0.55, 1e-15);  // halfway through the final 20 updates
  EXPECT_DOUBLE_EQ(s(99), 0.1);     // end
  EXPECT_DOUBLE_EQ(s(120), 0.1);
  Schedule no_decay("wsd", {.total_steps = 10, .decay_fraction = 0.0});
  EXPECT_DOUBLE_EQ(no_decay(9), 1.0);
}

// The Muon and Attractor recipes' trapezoid (no warmup, linear cooldown to 0 over the last 50%)
// is wsd with warmup_steps 0, decay_fraction 0.5 and min_ratio 0.
TEST(Schedule, WsdGivesTheTrapezoid) {
  Schedule s("wsd", {.warmup_steps = 0, .total_steps = 100, .min_ratio = 0.0, .decay_fraction = 0.5});
  for (int64_t step = 0; step < 50; ++step) EXPECT_DOUBLE_EQ(s(step), 1.0) << step;  // full rate from the start
  for (int64_t step = 50; step < 100; ++step) EXPECT_NEAR(s(step), (99 - step) / 50.0, 1e-15) << step;
}

TEST(Schedule, NamesAndParametersAreValidated) {
  EXPECT_EQ(parse_schedule_kind("wsd"), ScheduleKind::wsd);
  EXPECT_EQ(error_message<ValueError>([] { parse_schedule_kind("linear"); }),
            "unknown learning-rate schedule 'linear' (expected constant, cosine or wsd)");
  auto rejects = [](const char* name, ScheduleOptions o, const std::string& what) {
    EXPECT_NE(error_message<ValueError>([&] { Schedule(name, o); }).find(what), std::string::npos) << what;
  };
  rejects("constant", {.warmup_steps = -1}, "warmup_steps must be >= 0");
  rejects("cosine", {.total_steps = 10, .min_ratio = 1.5}, "min_ratio must lie in [0, 1]");
  rejects("cosine", {.total_steps = 10, .min_ratio = -0.1}, "min_ratio must lie in [0, 1]");
  rejects("cosine", {.warmup_steps = 10, .total_steps = 10}, "must exceed warmup_steps");
  rejects("wsd", {.total_steps = 10, .decay_fraction = 1.2}, "decay_fraction must lie in [0, 1]");
  rejects("wsd", {.warmup_steps = 9, .total_steps = 10, .decay_fraction = 0.5}, "must fit in total_steps");
  EXPECT_NE(error_message<ValueError>([] { Schedule("constant", {})(-1); }).find("step must be >= 0"),
            std::string::npos);
}

}  // namespace
}  // namespace ponder::optim
