// In-place writes (optimizer updates, gradient buffers). Not recorded on the tape: writing into a
// tensor that requires grad is allowed only with grad mode off. Each bumps the version counter so
// a stale tensor saved for backward is detected.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

// dst = src (broadcast to dst's shape, converted to dst's dtype, across devices).
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);

}  // namespace ponder
