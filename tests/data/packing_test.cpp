#include "data/packing.h"

#include <gtest/gtest.h>

#include <numeric>

#include "ops/loss.h"

namespace ponder::data {
namespace {

constexpr double I = kIgnoreIndex;

TEST(Packing, InstructionResponseLayout) {
  models::PackedBatch b = pack_rows({{{{1, 2, 3}, {4, 5}}, {{6}, {7, 8, 9}}}}, {.row_len = 10});
  // sample 1: inputs 1 2 3 4, labels - - 4 5; sample 2: inputs 6 7 8, labels 7 8 9; padding 3
  EXPECT_EQ(b.tokens.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 4, 6, 7, 8, 0, 0, 0}));
  EXPECT_EQ(b.labels.to_vector<double>(), (std::vector<double>{I, I, 4, 5, 7, 8, 9, I, I, I}));
  EXPECT_EQ(b.positions.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(b.attn.cu_seqlens.to_vector<int32_t>(), (std::vector<int32_t>{0, 4, 7, 10}));
  EXPECT_EQ(b.attn.prefix_len.to_vector<int32_t>(), (std::vector<int32_t>{3, 1, 0}));
  EXPECT_EQ(b.loss_tokens, 5);
  EXPECT_EQ(b.rows, 1);
}

TEST(Packing, PlainLanguageModellingCountsEveryNextToken) {
  models::PackedBatch b = pack_rows({{{{}, {5, 6, 7, 8}}}, {{{1, 2}, {3}}}},
                                    {.row_len = 4, .mask = AttentionMask::causal, .loss_on_response_only = false});
  EXPECT_EQ(b.tokens.to_vector<int64_t>(), (std::vector<int64_t>{5, 6, 7, 0, 1, 2, 0, 0}));
  EXPECT_EQ(b.labels.to_vector<double>(), (std::vector<double>{6, 7, 8, I, 2, 3, I, I}));
  EXPECT_EQ(b.loss_tokens, 5);
  EXPECT_FALSE(b.attn.prefix_len.defined());
  EXPECT_EQ(b.attn.cu_seqlens.to_vector<int32_t>(), (std::vector<int32_t>{0, 3, 4, 6, 8}));
}

TEST(Packing, OverfullRowsAndEmptyResponsesAreRejected) {
  EXPECT_THROW(pack_rows({{{{1, 2, 3}, {4, 5}}}}, {.row_len = 3}), ValueError);
  EXPECT_THROW(pack_rows({{{{1, 2}, {}}}}, {.row_len = 8}), ValueError);
  EXPECT_THROW(pack_rows({}, {.row_len = 0}), ValueError);
}

// Lengths from a fixed linear congruential sequence in [1, max_len].
std::vector<int64_t> pseudo_random_lengths(int n, int64_t max_len, uint64_t seed) {
  std::vector<int64_t> lengths;
  for (int i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    lengths.push_back(1 + static_cast<int64_t>((seed >> 33) % static_cast<uint64_t>(max_len)));
  }
  return lengths;
}

// Every sample placed exactly once, no row over row_len, a truncated sample alone in its row.
void expect_valid_plan(const RowPlan& plan, const std::vector<int64_t>& lengths, int64_t row_len) {
  std::vector<int> seen(lengths.size(), 0);
  int64_t truncated = 0;
  for (int64_t r = 0; r < plan.rows(); ++r) {
    int64_t used = 0;
    ASSERT_FALSE(plan.row(r).empty()) << "row " << r;
    for (int64_t i : plan.row(r)) {
      ++seen.at(i);
      used += std::min(lengths[i], row_len);
      if (lengths[i] > row_len) {
        ++truncated;
        EXPECT_EQ(plan.row(r).size(), 1u) << "a truncated sample shares row " << r;
      }
    }
    EXPECT_LE(used, row_len) << "row " << r;
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "sample " << i;
  EXPECT_EQ(plan.truncated, truncated);
}

TEST(PlanRows, InvariantsHoldForBothStrategies) {
  const int64_t row_len = 64;
  const std::vector<int64_t> lengths = pseudo_random_lengths(2000, 80, 3);
  for (PackStrategy strategy : {PackStrategy::greedy, PackStrategy::longest_first}) {
    for (int64_t window : {1, 7, 256, 5000}) {
      SCOPED_TRACE(::testing::Message() << "strategy " << int(strategy) << " window " << window);
      expect_valid_plan(plan_rows(lengths, row_len, strategy, window), lengths, row_len);
    }
  }
  expect_valid_plan(plan_rows({}, 8, PackStrategy::longest_first), {}, 8);
  EXPECT_EQ(plan_rows({}, 8, PackStrategy::greedy).rows(), 0);
}

TEST(PlanRows, GreedyKeepsOrderAndOpensARowOnlyWhenTheNextSampleDoesNotFit) {
  const int64_t row_len = 50;
  const std::vector<int64_t> lengths = pseudo_random_lengths(500, 60, 11);
  const RowPlan plan = plan_rows(lengths, row_len, PackStrategy::greedy);
  std::vector<int64_t> in_order(lengths.size());
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_EQ(plan.items, in_order);
  for (int64_t r = 1; r < plan.rows(); ++r) {
    int64_t used = 0;
    for (int64_t i : plan.row(r - 1)) used += std::min(lengths[i], row_len);
    EXPECT_GT(used + std::min(lengths[plan.row(r)[0]], row_len), row_len) << "row " << r;
  }
}

TEST(PlanRows, LongestFirstIsFirstFitDecreasing) {
  const std::vector<int64_t> lengths = {3, 8, 3, 8, 3, 8, 2, 2};
  const RowPlan greedy = plan_rows(lengths, 10, PackStrategy::greedy);
  const RowPlan ffd = plan_rows(lengths, 10, PackStrategy::longest_first);
  EXPECT_EQ(greedy.rows(), 7);
  ASSERT_EQ(ffd.rows(), 4);
  EXPECT_EQ(ffd.items, (std::vector<int64_t>{1, 6, 3, 7, 5, 0, 2, 4}));
  EXPECT_EQ(ffd.row_begin, (std::vector<int64_t>{0, 2, 4, 5, 8}));
  EXPECT_DOUBLE_EQ(fill_rate(greedy, lengths, 10), 37.0 / 70.0);
  EXPECT_DOUBLE_EQ(fill_rate(ffd, lengths, 10), 37.0 / 40.0);
}

TEST(PlanRows, LongestFirstFillsRowsBetterThanGreedy) {
  const int64_t row_len = 128;
  const std::vector<int64_t> lengths = pseudo_random_lengths(4000, 100, 5);
  const double greedy = fill_rate(plan_rows(lengths, row_len, PackStrategy::greedy), lengths, row_len);
  const double ffd = fill_rate(plan_rows(lengths, row_len, PackStrategy::longest_first, 512), lengths, row_len);
  EXPECT_GT(ffd, greedy + 0.1) << "greedy " << greedy << ", longest_first " << ffd;
  EXPECT_GT(ffd, 0.95);
}

TEST(PlanRows, WindowsDoNotMix) {
  const std::vector<int64_t> lengths = pseudo_random_lengths(100, 10, 9);
  const RowPlan plan = plan_rows(lengths, 16, PackStrategy::longest_first, 10);
  for (int64_t r = 0; r < plan.rows(); ++r)
    for (int64_t i : plan.row(r)) EXPECT_EQ(i / 10, plan.row(r)[0] / 10) << "row " << r;
}

TEST(PlanRows, OversizedSamplesTakeARowAlone) {
  const RowPlan plan = plan_rows({5, 25, 3}, 10, PackStrategy::greedy);
  EXPECT_EQ(plan.truncated, 1);
  EXPECT_EQ(plan.items, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(plan.row_begin, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_THROW(plan_rows({3, 0}, 10, PackStrategy::greedy), ValueError);
  EXPECT_THROW(plan_rows({3}, 0, PackStrategy::greedy), ValueError);
  EXPECT_THROW(plan_rows({3}, 10, PackStrategy::longest_first, 0), ValueError);
  EXPECT_THROW(plan.row(3), ValueError);
}

TEST(FitToRow, CutsTheResponseEndThenTheInstructionStart) {
  const Sample fits{{1, 2}, {3, 4}};
  EXPECT_EQ(fit_to_row(fits, 3).response, fits.response);
  const Sample long_response = fit_to_row({{1, 2, 3}, {4, 5, 6, 7, 8}}, 5);
  EXPECT_EQ(long_response.instruction, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(long_response.response, (std::vector<int32_t>{4, 5, 6}));
  EXPECT_EQ(long_response.packed_length(), 5);
  const Sample long_instruction = fit_to_row({{1, 2, 3, 4, 5, 6, 7, 8}, {9, 10}}, 4);
  EXPECT_EQ(long_instruction.instruction, (std::vector<int32_t>{5, 6, 7, 8}));
  EXPECT_EQ(long_instruction.response, (std::vector<int32_t>{9}));
  EXPECT_EQ(long_instruction.packed_length(), 4);
  const Sample text = fit_to_row({{}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}, 4);
  EXPECT_EQ(text.response, (std::vector<int32_t>{1, 2, 3, 4, 5}));
  // A truncated sample packs into exactly one full row.
  models::PackedBatch b = pack_rows({{long_instruction}}, {.row_len = 4});
  EXPECT_EQ(b.tokens.to_vector<int64_t>(), (std::vector<int64_t>{5, 6, 7, 8}));
  EXPECT_EQ(b.loss_tokens, 1);
  EXPECT_THROW(fit_to_row({{1, 2}, {}}, 4), ValueError);
}

}  // namespace
}  // namespace ponder::data
