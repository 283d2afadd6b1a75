// A packed batch: `rows` rows of `row_len` tokens, each row holding several samples back to back
// (padding is a sample of its own), flattened into one token axis of N = rows * row_len.
#pragma once

#include "backend/attention_spec.h"
#include "tensor/tensor.h"

namespace ponder::models {

struct PackedBatch {
  Tensor tokens;      // i64 [N]
  Tensor positions;   // i64 [N], restarting at 0 in every sample
  Tensor labels;      // i64 [N], the next token to predict, kIgnoreIndex where no loss is taken
  AttentionSpec attn; // samples (cu_seqlens), prefix lengths and the mask mode
  int64_t rows = 0, row_len = 0;
  int64_t loss_tokens = 0;  // labels that are not ignored (known on the host when the batch is built)
};

// The same batch with its tensors on device `d` (the batch itself when it is already there).
PackedBatch to_device(const PackedBatch& batch, Device d);

}  // namespace ponder::models
