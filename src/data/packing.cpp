#include "data/packing.h"

#include <algorithm>
#include <bit>
#include <numeric>

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
  b.rows = static_cast<int64_t>(rows.size());
  b.row_len = o.row_len;
  b.loss_tokens = c.loss_tokens;
  return b;
}

std::span<const int64_t> RowPlan::row(int64_t r) const {
  PONDER_CHECK(r >= 0 && r < rows(), ValueError, "RowPlan: row ", r, " is out of range (", rows(), " rows)");
  return {items.data() + row_begin[r], items.data() + row_begin[r + 1]};
}

namespace {

// First fit in O(log n): a max-tree over the remaining room of `slots` rows finds the leftmost
// row with room for a sample. Unopened rows have full room and lie right of every opened one, so
// the leftmost fit is an open row when one has room and the next unopened row otherwise.
class FirstFit {
 public:
  FirstFit(int64_t slots, int64_t room) : leaves_(static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(slots)))) {
    tree_.assign(2 * leaves_, 0);
    std::fill(tree_.begin() + leaves_, tree_.begin() + leaves_ + slots, room);
    for (int64_t node = leaves_ - 1; node >= 1; --node) tree_[node] = std::max(tree_[2 * node], tree_[2 * node + 1]);
  }

  // Takes `need` tokens of room from the leftmost row that has them; returns that row.
  int64_t take(int64_t need) {
    int64_t node = 1;
    while (node < leaves_) node = tree_[2 * node] >= need ? 2 * node : 2 * node + 1;
    tree_[node] -= need;
    for (int64_t up = node / 2; up >= 1; up /= 2) tree_[up] = std::max(tree_[2 * up], tree_[2 * up + 1]);
    return node - leaves_;
  }

 private:
  int64_t leaves_;
  std::vector<int64_t> tree_;
};

void plan_greedy(const std::vector<int64_t>& fitted, int64_t row_len, RowPlan& plan) {
  int64_t used = 0;
  for (size_t i = 0; i < fitted.size(); ++i) {
    if (used > 0 && used + fitted[i] > row_len) {
      plan.row_begin.push_back(static_cast<int64_t>(plan.items.size()));
      used = 0;
    }
    plan.items.push_back(static_cast<int64_t>(i));
    used += fitted[i];
  }
  if (used > 0) plan.row_begin.push_back(static_cast<int64_t>(plan.items.size()));
}

void plan_longest_first(const std::vector<int64_t>& fitted, int64_t row_len, int64_t window, RowPlan& plan) {
  const auto n = static_cast<int64_t>(fitted.size());
  for (int64_t start = 0; start < n; start += window) {
    const int64_t end = std::min(n, start + window);
    std::vector<int64_t> order(end - start);
    std::iota(order.begin(), order.end(), start);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return fitted[a] > fitted[b]; });
    FirstFit slots(end - start, row_len);
    std::vector<std::vector<int64_t>> rows;
    for (int64_t i : order) {
      const auto r = static_cast<size_t>(slots.take(fitted[i]));
      if (r == rows.size()) rows.emplace_back();
      rows[r].push_back(i);
    }
    for (const auto& row : rows) {
      plan.items.insert(plan.items.end(), row.begin(), row.end());
      plan.row_begin.push_back(static_cast<int64_t>(plan.items.size()));
    }
  }
}

}  // namespace

RowPlan plan_rows(const std::vector<int64_t>& lengths, int64_t row_len, PackStrategy strategy, int64_t window) {
  PONDER_CHECK(row_len > 0, ValueError, "plan_rows: row_len must be positive, got ", row_len);
  PONDER_CHECK(window > 0, ValueError, "plan_rows: window must be positive, got ", window);
  RowPlan plan;
  std::vector<int64_t> fitted(lengths.size());
  for (size_t i = 0; i < lengths.size(); ++i) {
    PONDER_CHECK(lengths[i] >= 1, ValueError, "plan_rows: sample ", i, " has packed length ", lengths[i],
                 "; every sample needs at least 1");
    fitted[i] = std::min(lengths[i], row_len);
    plan.truncated += lengths[i] > row_len;
  }
  if (strategy == PackStrategy::greedy) plan_greedy(fitted, row_len, plan);
  else plan_longest_first(fitted, row_len, window, plan);
  return plan;
}

Sample fit_to_row(const Sample& sample, int64_t row_len) {
  PONDER_CHECK(row_len > 0, ValueError, "fit_to_row: row_len must be positive, got ", row_len);
  PONDER_CHECK(!sample.response.empty(), ValueError, "fit_to_row: the sample has no response");
  if (sample.packed_length() <= row_len) return sample;
  const auto inst = static_cast<int64_t>(sample.instruction.size());
  Sample out;
  if (inst < row_len) {
    out.instruction = sample.instruction;
    out.response.assign(sample.response.begin(), sample.response.begin() + (row_len - inst + 1));
  } else {
    out.instruction.assign(sample.instruction.end() - row_len, sample.instruction.end());
    out.response = {sample.response.front()};
  }
  return out;
}

double fill_rate(const RowPlan& plan, const std::vector<int64_t>& lengths, int64_t row_len) {
  if (plan.rows() == 0) return 0.0;
  int64_t used = 0;
  for (int64_t i : plan.items) used += std::min(lengths.at(i), row_len);
  return static_cast<double>(used) / static_cast<double>(plan.rows() * row_len);
}

}  // namespace ponder::data
