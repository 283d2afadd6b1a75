#include "data/packing.h"

#include "ops/creation.h"
#include "ops/loss.h"

namespace ponder::data {

int64_t Sample::packed_length() const {
  return static_cast<int64_t>(instruction.size() + response.size()) - 1;
}

namespace {

// The host-side columns of a batch, appended sample by sample.
struct Columns {
  std::vector<double> tokens, positions, labels, cu_seqlens{0}, prefix_len;
  int64_t loss_tokens = 0;

  void add(const Sample& s, const PackOptions& o) {
    const int64_t n = s.packed_length();
    const int64_t inst = static_cast<int64_t>(s.instruction.size());
    for (int64_t i = 0; i < n; ++i) {
      tokens.push_back(i < inst ? s.instruction[i] : s.response[i - inst]);
      positions.push_back(static_cast<double>(i));
      // Input i predicts token i + 1 of I ++ R; only predictions of R count unless plain LM.
      const int64_t target = i + 1;
      const bool counted = target >= inst || !o.loss_on_response_only;
      double label = target < inst ? s.instruction[target] : s.response[target - inst];
      labels.push_back(counted ? label : static_cast<double>(kIgnoreIndex));
      loss_tokens += counted;
    }
    cu_seqlens.push_back(cu_seqlens.back() + static_cast<double>(n));
    prefix_len.push_back(static_cast<double>(inst));
  }

  void pad(int64_t n, const PackOptions& o) {
    if (n == 0) return;
    for (int64_t i = 0; i < n; ++i) {
      tokens.push_back(o.pad_id);
      positions.push_back(static_cast<double>(i));
      labels.push_back(static_cast<double>(kIgnoreIndex));
    }
    cu_seqlens.push_back(cu_seqlens.back() + static_cast<double>(n));
    prefix_len.push_back(0);
  }
};

}  // namespace

models::PackedBatch pack_rows(const std::vector<std::vector<Sample>>& rows, const PackOptions& o) {
  PONDER_CHECK(o.row_len > 0, ValueError, "pack_rows: row_len must be positive, got ", o.row_len);
  Columns c;
  for (size_t r = 0; r < rows.size(); ++r) {
    int64_t used = 0;
    for (const Sample& s : rows[r]) {
      PONDER_CHECK(!s.response.empty() && s.packed_length() >= 1, ValueError, "pack_rows: row ", r,
                   " has a sample without a response to predict");
      c.add(s, o);
      used += s.packed_length();
    }
    PONDER_CHECK(used <= o.row_len, ValueError, "pack_rows: the samples of row ", r, " need ", used,
                 " tokens but rows hold ", o.row_len);
    c.pad(o.row_len - used, o);
  }
  const int64_t n = static_cast<int64_t>(c.tokens.size());
  const int64_t samples = static_cast<int64_t>(c.prefix_len.size());
  models::PackedBatch b;
  b.tokens = tensor(c.tokens, {n}, {.dtype = DType::i64});
  b.positions = tensor(c.positions, {n}, {.dtype = DType::i64});
  b.labels = tensor(c.labels, {n}, {.dtype = DType::i64});
  b.attn.mask = o.mask;
  b.attn.cu_seqlens = tensor(c.cu_seqlens, {samples + 1}, {.dtype = DType::i32});
  if (o.mask == AttentionMask::prefix_lm) b.attn.prefix_len = tensor(c.prefix_len, {samples}, {.dtype = DType::i32});
  int64_t longest = 0;
  for (int64_t s = 0; s < samples; ++s) longest = std::max<int64_t>(longest, int64_t(c.cu_seqlens[s + 1] - c.cu_seqlens[s]));
  b.attn.max_seqlen = longest;
  b.rows = static_cast<int64_t>(rows.size());
  b.row_len = o.row_len;
  b.loss_tokens = c.loss_tokens;
  return b;
}

}  // namespace ponder::data
