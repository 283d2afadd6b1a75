// Packing instruction->response samples into fixed-length rows (DESIGN.md §4).
//
// A sample with instruction I (length i) and response R (length r) occupies i + r - 1 tokens:
// the inputs are I ++ R[:-1] and the labels are ignored except at the last instruction token and
// the response tokens, which predict R (the last instruction token predicts R[0]). Its prefix
// (bidirectional under PrefixLM) is the instruction. A plain-text sample is a response with an
// empty instruction: inputs T[:-1], labels T[1:], no prefix. The rest of a row is padding, a
// sample of its own whose labels are all ignored.
#pragma once

#include <cstdint>
#include <vector>

#include "models/batch.h"

namespace ponder::data {

struct Sample {
  std::vector<int32_t> instruction;
  std::vector<int32_t> response;
  // Tokens the sample occupies in a row.
  int64_t packed_length() const;
};

struct PackOptions {
  int64_t row_len = 0;
  AttentionMask mask = AttentionMask::prefix_lm;
  // Loss on the response only (instruction tuning) or on every next token (plain LM).
  bool loss_on_response_only = true;
  int32_t pad_id = 0;
};

// Builds a batch from rows of samples; each row's samples must fit in row_len (ValueError
// otherwise, naming the row). Tensors are created on the CPU.
models::PackedBatch pack_rows(const std::vector<std::vector<Sample>>& rows, const PackOptions& options);

}  // namespace ponder::data
