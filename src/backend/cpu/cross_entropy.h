// CPU cross-entropy kernels. logits: contiguous [rows, V] (f32, f64, bf16); targets: contiguous
// [rows] (i32 or i64). Per-row values are in the loss dtype: f32 for f32/bf16 logits, f64 for f64.
#pragma once

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

// loss[r] = lse[r] - logits[r, targets[r]] with lse[r] = log(sum(exp(logits[r, :]))), both 0
// where targets[r] == ignore_index. Every other target is in [0, V) (the ops check them first,
// backend/id_check.h).
void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets, int64_t ignore_index);
// dlogits[r, :] = (exp(logits[r, :] - lse[r]) - onehot(targets[r])) * row_scale[r], zero rows
// where targets[r] == ignore_index. dlogits has the logits' dtype, row_scale the loss dtype;
// dlogits may be logits itself (the gradient overwrites the logits in place).
void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                            const Tensor& targets, const Tensor& row_scale, int64_t ignore_index);

}  // namespace ponder::backend::cpu
