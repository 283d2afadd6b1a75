#include "data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "tensor/error.h"

namespace ponder::data {
namespace {

bool is_permutation_of_range(std::vector<int64_t> order) {
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] != static_cast<int64_t>(i)) return false;
  return true;
}

TEST(EpochOrder, IsADeterministicPermutation) {
  const std::vector<int64_t> a = epoch_order(1000, 42, 3);
  EXPECT_TRUE(is_permutation_of_range(a));
  EXPECT_EQ(a, epoch_order(1000, 42, 3));
  EXPECT_NE(a, epoch_order(1000, 42, 4));
  EXPECT_NE(a, epoch_order(1000, 43, 3));
  std::vector<int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(epoch_order(1000, 42, 3, false), identity);
  EXPECT_TRUE(epoch_order(0, 1, 0).empty());
  EXPECT_EQ(epoch_order(1, 1, 0), (std::vector<int64_t>{0}));
}

// The shuffle is ponder's own (Philox + Fisher-Yates), so these values are the same on every
// platform and standard library (checked against an independent Python implementation); a change
// here changes every run's data order.
TEST(EpochOrder, PinnedValues) {
  EXPECT_EQ(epoch_order(10, 1234, 0), (std::vector<int64_t>{1, 3, 9, 4, 6, 7, 2, 8, 0, 5}));
  EXPECT_EQ(epoch_order(10, 1234, 1), (std::vector<int64_t>{5, 0, 4, 3, 7, 6, 2, 9, 8, 1}));
}

TEST(EpochOrder, EveryPermutationIsEquallyLikely) {
  std::map<std::vector<int64_t>, int> counts;
  const int epochs = 6000;
  for (int e = 0; e < epochs; ++e) ++counts[epoch_order(3, 7, e)];
  ASSERT_EQ(counts.size(), 6u);
  for (const auto& [order, n] : counts) EXPECT_NEAR(n, epochs / 6, 150);  // about 4 standard deviations
}

TEST(Sampler, GlobalBatchesContinueAcrossEpochs) {
  Sampler s(5, 9);
  const std::vector<int64_t> e0 = s.order(0), e1 = s.order(1);
  EXPECT_EQ(s.next_global_batch(3), (std::vector<int64_t>{e0[0], e0[1], e0[2]}));
  EXPECT_EQ(s.next_global_batch(3), (std::vector<int64_t>{e0[3], e0[4], e1[0]}));
  EXPECT_EQ(s.cursor(), 6);
  EXPECT_THROW(s.next_global_batch(0), ValueError);
  EXPECT_THROW(Sampler(0, 1), ValueError);
}

TEST(Sampler, RestoredCursorContinuesTheSameStream) {
  Sampler a(37, 5);
  for (int i = 0; i < 3; ++i) a.next_global_batch(8);
  Sampler b(37, 5);
  b.set_cursor(a.cursor());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_global_batch(8), b.next_global_batch(8)) << "batch " << i;
  EXPECT_THROW(b.set_cursor(-1), ValueError);
}

TEST(Sampler, RankPartsAreDisjointAndMakeTheGlobalBatch) {
  Sampler s(100, 3);
  const std::vector<int64_t> global = s.next_global_batch(12);
  for (int world : {1, 2, 3, 4, 6, 12}) {
    std::vector<int64_t> joined;
    for (int rank = 0; rank < world; ++rank) {
      const std::vector<int64_t> part = Sampler::rank_part(global, rank, world);
      EXPECT_EQ(part.size(), 12u / world);
      joined.insert(joined.end(), part.begin(), part.end());
    }
    EXPECT_EQ(joined, global) << "world " << world;
  }
  EXPECT_THROW(Sampler::rank_part(global, 0, 5), ValueError);
  EXPECT_THROW(Sampler::rank_part(global, 2, 2), ValueError);
}

TEST(Sampler, ResumingWithAnotherWorldSizeKeepsTheGlobalOrder) {
  // Two ranks take three global batches, then the run resumes on three ranks.
  Sampler two(50, 8);
  for (int i = 0; i < 3; ++i) two.next_global_batch(6);
  Sampler three(50, 8);
  three.set_cursor(two.cursor());
  const std::vector<int64_t> expected = two.next_global_batch(6);
  const std::vector<int64_t> global = three.next_global_batch(6);
  std::vector<int64_t> joined;
  for (int rank = 0; rank < 3; ++rank) {
    const std::vector<int64_t> part = Sampler::rank_part(global, rank, 3);
    joined.insert(joined.end(), part.begin(), part.end());
  }
  EXPECT_EQ(joined, expected);
}

}  // namespace
}  // namespace ponder::data
