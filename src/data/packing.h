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
#include <span>
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

// ---- planning which samples share a row ----

enum class PackStrategy {
  greedy,         // in order: a sample that does not fit the open row opens the next one
  longest_first,  // first-fit decreasing within each window of consecutive samples
};

// Rows of sample positions (indices into the planned lengths), in compressed form.
struct RowPlan {
  std::vector<int64_t> row_begin{0};  // row r holds items[row_begin[r], row_begin[r + 1])
  std::vector<int64_t> items;
  int64_t truncated = 0;  // samples longer than a row (see fit_to_row)

  int64_t rows() const { return static_cast<int64_t>(row_begin.size()) - 1; }
  std::span<const int64_t> row(int64_t r) const;
};

// Plans rows of row_len tokens for samples of the given packed lengths (each >= 1). Every
// sample is placed exactly once and no sample is split: one longer than a row gets a row of its
// own and is cut by fit_to_row. longest_first sorts each window of `window` consecutive samples by
// decreasing length (ties keep their order) and puts each into the first row of its window with
// room; a window's rows are closed when the next window starts, so the plan of a window depends
// only on its samples. Deterministic on every platform.
RowPlan plan_rows(const std::vector<int64_t>& lengths, int64_t row_len, PackStrategy strategy, int64_t window = 1024);

// The sample unchanged when it fits in row_len, else truncated to exactly row_len packed tokens:
// the instruction is kept whole and the response cut at its end; when the instruction alone
// fills the row, its last row_len tokens are kept (the part next to the response, with the
// boundary marker) and the response keeps its first token, the one they predict.
Sample fit_to_row(const Sample& sample, int64_t row_len);

// Fraction of the plan's row_len * rows token slots that hold sample tokens (after truncation).
double fill_rate(const RowPlan& plan, const std::vector<int64_t>& lengths, int64_t row_len);

}  // namespace ponder::data
