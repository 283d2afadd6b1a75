// CPU gather and scatter-add along one dimension, driven by a 1-D i32/i64 index. Both throw
// ValueError for an index outside [0, size of the indexed dimension).
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// out[..., j, ...] = x[..., index[j], ...] along `dim`; x of any dtype and strides, out contiguous.
void index_select(const Tensor& out, const Tensor& x, int dim, const Tensor& index);
// dst[..., index[j], ...] += src[..., j, ...] along `dim`; dst and src contiguous and floating.
// Repeated indices accumulate in index order (in acc_t), so the result is deterministic.
void index_add(const Tensor& dst, int dim, const Tensor& index, const Tensor& src);

}  // namespace ponder::backend::cpu
