// Losses.
#pragma once

#include "tensor/tensor.h"

namespace ponder {

enum class Reduction { mean, sum, none };
inline constexpr int64_t kIgnoreIndex = -100;

// logits [..., V]; targets with the leading shape of logits, dtype i64 or i32. Loss is computed in
// f32 for f32/bf16 logits (f64 for f64 logits): log-sum-exp in the accumulation type, never
// materialising softmax for the forward. mean = sum over non-ignored targets / their count (0 when
// none are counted, not NaN); none = per-position losses (0 at ignored positions).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = kIgnoreIndex,
                     Reduction reduction = Reduction::mean);

}  // namespace ponder
