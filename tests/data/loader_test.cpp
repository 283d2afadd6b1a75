#include "data/loader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include "data/data_test_util.h"
#include "io/errors.h"
#include "support/test_util.h"

namespace ponder::data {
namespace {

using models::PackedBatch;
using ponder::testing::error_message;
using testing::has_substr;

constexpr int32_t kTagBase = 1000;

// n samples whose first packed token is a tag naming the sample (kTagBase + i); instructions of
// 0..6 tokens (0: plain text), responses of 1..12.
std::vector<Sample> tagged_samples(int n) {
  std::vector<Sample> samples;
  for (int i = 0; i < n; ++i) {
    Sample s;
    const int inst = (i * 5) % 7, resp = 1 + (i * 7) % 12;
    for (int k = 0; k < inst; ++k) s.instruction.push_back(k == 0 ? kTagBase + i : 10 + k);
    for (int k = 0; k < resp; ++k) s.response.push_back(inst == 0 && k == 0 ? kTagBase + i : 20 + k);
    if (s.packed_length() < 1) s.response.push_back(21);
    samples.push_back(std::move(s));
  }
  return samples;
}

// The tags of the samples in a batch (padding segments start with pad 0 and are skipped).
std::vector<int64_t> tags(const PackedBatch& b) {
  const std::vector<int64_t> tokens = b.tokens.to_vector<int64_t>();
  const std::vector<int32_t> cu = b.attn.cu_seqlens.to_vector<int32_t>();
  std::vector<int64_t> out;
  for (size_t s = 0; s + 1 < cu.size(); ++s)
    if (tokens[cu[s]] >= kTagBase) out.push_back(tokens[cu[s]] - kTagBase);
  return out;
}

::testing::AssertionResult same_batch(const PackedBatch& a, const PackedBatch& b) {
  if (a.rows != b.rows || a.row_len != b.row_len || a.loss_tokens != b.loss_tokens || a.attn.mask != b.attn.mask)
    return ::testing::AssertionFailure() << "shapes, masks or loss token counts differ";
  if (a.tokens.to_vector<int64_t>() != b.tokens.to_vector<int64_t>()) return ::testing::AssertionFailure() << "tokens differ";
  if (a.positions.to_vector<int64_t>() != b.positions.to_vector<int64_t>())
    return ::testing::AssertionFailure() << "positions differ";
  if (a.labels.to_vector<int64_t>() != b.labels.to_vector<int64_t>()) return ::testing::AssertionFailure() << "labels differ";
  if (a.attn.cu_seqlens.to_vector<int32_t>() != b.attn.cu_seqlens.to_vector<int32_t>())
    return ::testing::AssertionFailure() << "cu_seqlens differ";
  if (a.attn.prefix_len.defined() != b.attn.prefix_len.defined() ||
      (a.attn.prefix_len.defined() && a.attn.prefix_len.to_vector<int32_t>() != b.attn.prefix_len.to_vector<int32_t>()))
    return ::testing::AssertionFailure() << "prefix lengths differ";
  return ::testing::AssertionSuccess();
}

std::vector<PackedBatch> take(BatchLoader& loader, int n) {
  std::vector<PackedBatch> out;
  for (int i = 0; i < n; ++i) {
    std::optional<PackedBatch> b = loader.next();
    EXPECT_TRUE(b.has_value()) << "micro-batch " << i;
    if (!b) break;
    out.push_back(std::move(*b));
  }
  return out;
}

LoaderOptions small_options() {
  return {.row_len = 16, .rows_per_micro_batch = 2, .micro_batches_per_step = 2, .pack_window = 16, .seed = 77};
}

class Loader : public ::testing::Test {
 protected:
  InMemorySource source_{tagged_samples(60)};
};

TEST_F(Loader, BuildsPackedMicroBatches) {
  BatchLoader loader(source_, small_options());
  const PackedBatch b = *loader.next();
  EXPECT_EQ(b.rows, 2);
  EXPECT_EQ(b.row_len, 16);
  EXPECT_EQ(b.tokens.numel(), 32);
  EXPECT_EQ(b.attn.mask, AttentionMask::prefix_lm);
  EXPECT_TRUE(b.attn.prefix_len.defined());
  EXPECT_GT(b.loss_tokens, 0);
  EXPECT_EQ(loader.rows_per_step(), 4);

  LoaderOptions lm = small_options();
  lm.mask = AttentionMask::causal;
  lm.loss_on_response_only = false;
  BatchLoader plain(source_, lm);
  const PackedBatch c = *plain.next();
  EXPECT_FALSE(c.attn.prefix_len.defined());
  EXPECT_EQ(c.tokens.to_vector<int64_t>(), b.tokens.to_vector<int64_t>());  // same rows, other labels
  EXPECT_GT(c.loss_tokens, b.loss_tokens);
}

TEST_F(Loader, EachEpochPlacesEverySampleOnce) {
  for (PackStrategy strategy : {PackStrategy::greedy, PackStrategy::longest_first}) {
    LoaderOptions o = small_options();
    o.strategy = strategy;
    o.epochs = 2;
    BatchLoader loader(source_, o);
    std::map<int64_t, int> seen;
    int batches = 0;
    while (std::optional<PackedBatch> b = loader.next()) {
      ++batches;
      for (int64_t t : tags(*b)) ++seen[t];
    }
    EXPECT_EQ(batches % o.micro_batches_per_step, 0);
    ASSERT_EQ(seen.size(), 60u);
    for (const auto& [tag, n] : seen) EXPECT_EQ(n, 2) << "sample " << tag;
    EXPECT_FALSE(loader.next().has_value());  // and stays ended
    EXPECT_EQ(loader.state().samples, 120);
    EXPECT_EQ(loader.state().epoch, 2);
  }
}

TEST_F(Loader, RanksSplitEachStepAndTogetherEqualWorldSizeOne) {
  LoaderOptions one = small_options();
  one.micro_batches_per_step = 6;  // world 3 x 2 micro-batches
  BatchLoader single(source_, one);
  std::vector<std::unique_ptr<BatchLoader>> ranks;
  for (int r = 0; r < 3; ++r) {
    LoaderOptions o = small_options();
    o.rank = r;
    o.world = 3;
    ranks.push_back(std::make_unique<BatchLoader>(source_, o));
  }
  for (int step = 0; step < 8; ++step) {  // crosses epoch boundaries (an epoch is ~35 rows)
    const std::vector<PackedBatch> expected = take(single, 6);
    for (int r = 0; r < 3; ++r) {
      const std::vector<PackedBatch> mine = take(*ranks[r], 2);
      for (int m = 0; m < 2; ++m)
        EXPECT_TRUE(same_batch(mine[m], expected[r * 2 + m])) << "step " << step << " rank " << r << " micro " << m;
    }
    for (int r = 0; r < 3; ++r) EXPECT_EQ(ranks[r]->state().samples, single.state().samples);
  }
}

TEST_F(Loader, RanksTakeDisjointSamplesThatCoverTheEpoch) {
  std::map<int64_t, int> seen;
  for (int r = 0; r < 3; ++r) {
    LoaderOptions o = small_options();
    o.rank = r;
    o.world = 3;
    o.epochs = 1;
    BatchLoader loader(source_, o);
    while (std::optional<PackedBatch> b = loader.next())
      for (int64_t t : tags(*b)) ++seen[t];
  }
  ASSERT_EQ(seen.size(), 60u);
  for (const auto& [tag, n] : seen) EXPECT_EQ(n, 1) << "sample " << tag;
}

TEST_F(Loader, ResumedMidEpochSeesExactlyTheUninterruptedBatches) {
  for (int64_t prefetch : {0, 1, 3}) {
    LoaderOptions o = small_options();
    o.prefetch = prefetch;
    BatchLoader uninterrupted(source_, o);
    take(uninterrupted, 3 * 2);
    const LoaderState saved = uninterrupted.state();
    EXPECT_EQ(saved.steps, 3);
    EXPECT_EQ(saved.epoch, 0);
    EXPECT_GT(saved.row, 0);
    const std::vector<PackedBatch> expected = take(uninterrupted, 20 * 2);  // runs into later epochs

    BatchLoader resumed(source_, o);
    take(resumed, 5);  // wherever it stands, restore moves it
    resumed.restore(saved);
    const std::vector<PackedBatch> got = take(resumed, 20 * 2);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same_batch(got[i], expected[i])) << "prefetch " << prefetch << " micro-batch " << i;
    EXPECT_EQ(resumed.state().samples, uninterrupted.state().samples);
    EXPECT_EQ(resumed.state().epoch, uninterrupted.state().epoch);
    EXPECT_GT(resumed.state().epoch, 0);
  }
}

TEST_F(Loader, ResumeWithAnotherWorldSizeContinuesTheRowStream) {
  LoaderOptions two = small_options();
  two.world = 2;
  BatchLoader rank0(source_, two);
  take(rank0, 2 * 3);
  const LoaderState saved = rank0.state();
  // The uninterrupted two-rank run, from here on.
  std::vector<std::vector<PackedBatch>> expected(2);
  expected[0] = take(rank0, 2 * 4);
  two.rank = 1;
  BatchLoader rank1(source_, two);
  rank1.restore(saved);
  expected[1] = take(rank1, 2 * 4);
  // One rank with twice the accumulation.
  LoaderOptions one = small_options();
  one.micro_batches_per_step = 4;
  BatchLoader single(source_, one);
  single.restore(saved);
  const std::vector<PackedBatch> got = take(single, 4 * 4);
  for (int step = 0; step < 4; ++step)
    for (int m = 0; m < 4; ++m)
      EXPECT_TRUE(same_batch(got[step * 4 + m], expected[m / 2][step * 2 + m % 2])) << "step " << step << " micro " << m;
}

TEST_F(Loader, StateIsTakenAtStepBoundariesAndBelongsToOnePlan) {
  BatchLoader loader(source_, small_options());
  loader.next();
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { loader.state(); }), "1 of a step's 2 micro-batches"));
  loader.next();
  LoaderState state = loader.state();
  EXPECT_TRUE(has_substr(state.plan, "row_len=16"));

  LoaderOptions other = small_options();
  other.row_len = 32;
  BatchLoader wider(source_, other);
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { wider.restore(state); }), "another data plan"));
  other = small_options();
  other.seed = 78;
  BatchLoader reseeded(source_, other);
  EXPECT_THROW(reseeded.restore(state), ValueError);
  InMemorySource fewer(tagged_samples(59));
  BatchLoader smaller(fewer, small_options());
  EXPECT_THROW(smaller.restore(state), ValueError);

  state.row = 10'000;
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { loader.restore(state); }), "row 10000 is past the"));
  EXPECT_TRUE(loader.next().has_value());  // a refused restore leaves the loader working
}

TEST_F(Loader, FinalStepIsPaddedOnEveryRank) {
  LoaderOptions o = small_options();
  o.epochs = 1;
  o.world = 2;
  o.rows_per_micro_batch = 3;
  std::vector<int> counts(2, 0);
  int64_t loss_tokens = 0, samples = 0;
  for (int r = 0; r < 2; ++r) {
    o.rank = r;
    BatchLoader loader(source_, o);
    while (std::optional<PackedBatch> b = loader.next()) {
      ++counts[r];
      loss_tokens += b->loss_tokens;
      samples += static_cast<int64_t>(tags(*b).size());
      EXPECT_EQ(b->rows, 3);
    }
  }
  EXPECT_EQ(counts[0], counts[1]);
  EXPECT_EQ(samples, 60);
  int64_t expected_loss_tokens = 0;
  for (const Sample& s : tagged_samples(60)) {
    // Response-only loss: every response token is a target, except a plain text's first.
    const Sample fitted = fit_to_row(s, 16);
    expected_loss_tokens += static_cast<int64_t>(fitted.response.size()) - (fitted.instruction.empty() ? 1 : 0);
  }
  EXPECT_EQ(loss_tokens, expected_loss_tokens);
}

TEST_F(Loader, ShutsDownCleanlyWhateverItIsDoing) {
  LoaderOptions o = small_options();
  o.prefetch = 4;
  { BatchLoader idle(source_, o); }  // destroyed while its thread fills the queue
  {
    BatchLoader busy(source_, o);
    busy.next();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the thread now waits on a full queue
  }
  {
    BatchLoader restarted(source_, o);
    take(restarted, 2);
    restarted.restore(restarted.state());
    take(restarted, 2);
  }
  SUCCEED();
}

// A source whose sample `bad` cannot be read, like a shard with a corrupt sample.
class FailingSource : public InMemorySource {
 public:
  FailingSource(std::vector<Sample> samples, int64_t bad) : InMemorySource(std::move(samples)), bad_(bad) {}
  Sample get(int64_t i) const override {
    PONDER_CHECK(i != bad_, io::FormatError, "shard_000003.h5: dataset \"tokens\": sample ", i, " is corrupt");
    return InMemorySource::get(i);
  }

 private:
  int64_t bad_;
};

TEST(LoaderErrors, ReachTheCallerAndStay) {
  FailingSource source(tagged_samples(40), 17);
  for (int64_t prefetch : {0, 2}) {
    LoaderOptions o = small_options();
    o.prefetch = prefetch;
    BatchLoader loader(source, o);
    std::string message;
    for (int i = 0; i < 100 && message.empty(); ++i) {
      try {
        loader.next();
      } catch (const io::FormatError& e) {
        message = e.what();
      }
    }
    EXPECT_TRUE(has_substr(message, "sample 17 is corrupt")) << "prefetch " << prefetch;
    EXPECT_THROW(loader.next(), io::FormatError);
  }
}

TEST(LoaderErrors, ImpossibleOptions) {
  InMemorySource source(tagged_samples(5));
  auto with = [](auto change) {
    LoaderOptions o = small_options();
    change(o);
    return o;
  };
  EXPECT_THROW(BatchLoader(source, with([](LoaderOptions& o) { o.row_len = 0; })), ValueError);
  EXPECT_THROW(BatchLoader(source, with([](LoaderOptions& o) { o.rank = 2; o.world = 2; })), ValueError);
  EXPECT_THROW(BatchLoader(source, with([](LoaderOptions& o) { o.rows_per_micro_batch = 0; })), ValueError);
  EXPECT_THROW(BatchLoader(source, with([](LoaderOptions& o) { o.prefetch = -1; })), ValueError);
  InMemorySource empty(std::vector<Sample>{});
  EXPECT_THROW(BatchLoader(empty, small_options()), ValueError);
  EXPECT_THROW(InMemorySource(std::vector<Sample>{Sample{{1}, {}}}), ValueError);
}

}  // namespace
}  // namespace ponder::data
