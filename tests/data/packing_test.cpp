#include "data/packing.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(b.attn.max_seqlen, 4);
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

}  // namespace
}  // namespace ponder::data
