// CUDA side of backend/id_check.h: the recording kernel and the per-device record of the first
// bad id (position, value, bound, which check).
#pragma once

#include <optional>

#include "backend/id_check.h"

namespace ponder::backend::cuda {

// Queues the check; throws at once unless checks are deferred (backend/id_check.h).
void check_ids(IdCheck check, const Tensor& ids, int64_t bound, std::optional<int64_t> allowed);
void raise_deferred_id_checks(int device);
// Forgets what was recorded (queued on the compute stream; never throws).
void clear_id_checks(int device) noexcept;

}  // namespace ponder::backend::cuda
