#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/error.h"

namespace ponder::optim {
namespace {

bool in_unit_interval(double x) { return x >= 0 && x <= 1; }

}  // namespace

ScheduleKind parse_schedule_kind(std::string_view name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "wsd") return ScheduleKind::wsd;
  fail<ValueError>("unknown learning-rate schedule '", name, "' (expected constant, cosine or wsd)");
}

Schedule::Schedule(ScheduleKind kind, const ScheduleOptions& options) : kind_(kind), options_(options) {
  const ScheduleOptions& o = options;
  PONDER_CHECK(o.warmup_steps >= 0, ValueError, "schedule: warmup_steps must be >= 0, got ", o.warmup_steps);
  if (kind == ScheduleKind::constant) return;
  PONDER_CHECK(in_unit_interval(o.min_ratio), ValueError, "schedule: min_ratio must lie in [0, 1], got ",
               o.min_ratio);
  if (kind == ScheduleKind::cosine) {
    PONDER_CHECK(o.total_steps > o.warmup_steps, ValueError, "schedule cosine: total_steps (", o.total_steps,
                 ") must exceed warmup_steps (", o.warmup_steps, ")");
    return;
  }
  PONDER_CHECK(in_unit_interval(o.decay_fraction), ValueError, "schedule wsd: decay_fraction must lie in [0, 1], got ",
               o.decay_fraction);
  decay_steps_ = std::llround(o.decay_fraction * double(o.total_steps));
  PONDER_CHECK(o.total_steps > 0 && o.warmup_steps + decay_steps_ <= o.total_steps, ValueError,
               "schedule wsd: warmup_steps (", o.warmup_steps, ") plus decay steps (", decay_steps_,
               ") must fit in total_steps (", o.total_steps, ")");
}

double Schedule::operator()(int64_t step) const {
  PONDER_CHECK(step >= 0, ValueError, "schedule: step must be >= 0, got ", step);
  const ScheduleOptions& o = options_;
  const double update = double(step + 1);  // the 1-based number of the update this rate is for
  if (update <= double(o.warmup_steps)) return update / double(o.warmup_steps);
  switch (kind_) {
    case ScheduleKind::constant: return 1.0;
    case ScheduleKind::cosine: {
      const double progress =
          std::min(1.0, (update - double(o.warmup_steps)) / double(o.total_steps - o.warmup_steps));
      return o.min_ratio + (1.0 - o.min_ratio) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    }
    case ScheduleKind::wsd: {
      const double decay_start = double(o.total_steps - decay_steps_);
      if (update <= decay_start) return 1.0;
      const double progress = std::min(1.0, (update - decay_start) / double(decay_steps_));
      return 1.0 - (1.0 - o.min_ratio) * progress;
    }
  }
  return 1.0;
}

}  // namespace ponder::optim
