// Table lookup: the rows of a [V, D] weight selected by integer ids.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// ids: i32 or i64 of any shape, each in [0, V) -> ids.shape + [D]. The gradient scatter-adds
// into a dense [V, D] weight gradient, deterministically.
Tensor embedding(const Tensor& weight, const Tensor& ids);

}  // namespace ponder
