// CPU side of backend/id_check.h: scans the ids in order and throws for the first bad one.
#pragma once

#include <optional>

#include "backend/id_check.h"

namespace ponder::backend::cpu {

void check_ids(IdCheck check, const Tensor& ids, int64_t bound, std::optional<int64_t> allowed);

}  // namespace ponder::backend::cpu
