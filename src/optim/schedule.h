// Learning-rate schedules: the multiplier of the peak learning rate at each step.
//
// Steps are 0-based and count the updates already made: schedule(s) is the multiplier for the
// update that follows s completed steps, so a training loop calls
//   optimizer.set_lr(peak * schedule(optimizer.steps())); optimizer.step();
// With W warmup steps, the first update (s = 0) uses 1/W and the W-th (s = W − 1) the full rate;
// the last update of a T-step run (s = T − 1) uses the final value (min_ratio for cosine and wsd),
// which also holds for any later step.
#pragma once

#include <cstdint>
#include <string_view>

namespace ponder::optim {

enum class ScheduleKind {
  constant,  // linear warmup, then 1
  cosine,    // linear warmup, then a half cosine from 1 to min_ratio at total_steps
  wsd,       // warmup–stable–decay: warmup, 1, then linear from 1 to min_ratio over the final
             // decay_fraction of total_steps; with warmup 0, decay_fraction 0.5 and min_ratio 0 it
             // is the "trapezoid" of the Muon and Attractor recipes
};

struct ScheduleOptions {
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;      // cosine and wsd
  double min_ratio = 0.0;       // cosine and wsd, in [0, 1]
  double decay_fraction = 0.2;  // wsd, in [0, 1]
};

// "constant", "cosine" or "wsd"; anything else is a ValueError that lists the known names.
ScheduleKind parse_schedule_kind(std::string_view name);

class Schedule {
 public:
  // Invalid options are ValueErrors: negative warmup, a fraction or ratio outside [0, 1], cosine
  // with total_steps <= warmup_steps, wsd whose warmup and decay do not fit in total_steps.
  Schedule(ScheduleKind kind, const ScheduleOptions& options);
  Schedule(std::string_view name, const ScheduleOptions& options) : Schedule(parse_schedule_kind(name), options) {}

  double operator()(int64_t step) const;
  ScheduleKind kind() const { return kind_; }
  const ScheduleOptions& options() const { return options_; }

 private:
  ScheduleKind kind_;
  ScheduleOptions options_;
  int64_t decay_steps_ = 0;  // wsd: length of the final linear decay
};

}  // namespace ponder::optim
