// Softmax and log-softmax along one dimension (numerically stable: the row maximum is
// subtracted before exponentiating).
#pragma once

#include "tensor/tensor.h"

namespace ponder {

Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

}  // namespace ponder
