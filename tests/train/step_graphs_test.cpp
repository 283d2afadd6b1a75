// What makes a micro-batch fit a recorded CUDA graph, checked on the CPU: the sample capacity,
// the padding of cu_seqlens and prefix_len with empty samples, and that attention over the padded
// spec is the same attention. (Recording and replaying are checked on a GPU: tests/gpu/training_test.cpp.)
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "support/test_util.h"
#include "train/step_graphs.h"

namespace ponder {
namespace {
using train::padded_spec;
using train::sample_capacity;

std::vector<int32_t> values(const Tensor& t) { return t.to_vector<int32_t>(); }

TEST(StepGraphs, SampleCapacityIsEightPerRowDoubledUntilTheSamplesFit) {
  EXPECT_EQ(sample_capacity(6, 3), 24);
  EXPECT_EQ(sample_capacity(24, 3), 24);
  EXPECT_EQ(sample_capacity(25, 3), 48);
  EXPECT_EQ(sample_capacity(1, 1), 8);
  EXPECT_EQ(sample_capacity(100, 1), 128);
  EXPECT_EQ(sample_capacity(128, 1), 128);
}

TEST(StepGraphs, PaddingAppendsEmptySamples) {
  AttentionSpec spec;
  spec.mask = AttentionMask::prefix_lm;
  spec.cu_seqlens = tensor({0, 3, 7, 10}, {4}, {.dtype = DType::i32});
  spec.prefix_len = tensor({1, 4, 0}, {3}, {.dtype = DType::i32});
  const AttentionSpec padded = padded_spec(spec, 5);
  EXPECT_EQ(values(padded.cu_seqlens), (std::vector<int32_t>{0, 3, 7, 10, 10, 10}));
  EXPECT_EQ(values(padded.prefix_len), (std::vector<int32_t>{1, 4, 0, 0, 0}));
  EXPECT_EQ(padded.mask, AttentionMask::prefix_lm);
  EXPECT_EQ(values(spec.cu_seqlens), (std::vector<int32_t>{0, 3, 7, 10}));  // the batch's own spec is untouched

  AttentionSpec causal;
  causal.cu_seqlens = tensor({0, 6}, {2}, {.dtype = DType::i32});
  EXPECT_EQ(values(padded_spec(causal, 3).cu_seqlens), (std::vector<int32_t>{0, 6, 6, 6}));
  EXPECT_FALSE(padded_spec(causal, 3).prefix_len.defined());
  EXPECT_EQ(testing::error_message<ValueError>([&] { padded_spec(spec, 2); }),
            "padded_spec: 3 samples exceed the capacity 2");
}

TEST(StepGraphs, AttentionOverThePaddedSpecIsTheSame) {
  AttentionSpec spec;
  spec.mask = AttentionMask::prefix_lm;
  spec.cu_seqlens = tensor({0, 5, 6, 13}, {4}, {.dtype = DType::i32});
  spec.prefix_len = tensor({2, 1, 7}, {3}, {.dtype = DType::i32});
  const Tensor q = testing::random_tensor({13, 2, 8}, 1), k = testing::random_tensor({13, 2, 8}, 2),
               v = testing::random_tensor({13, 2, 8}, 3);
  const Tensor plain = attention(q, k, v, spec, 0.35), padded = attention(q, k, v, padded_spec(spec, 16), 0.35);
  EXPECT_EQ(plain.to_vector<double>(), padded.to_vector<double>());
}

TEST(StepGraphs, OnTheCpuEveryMicroStepRunsEagerly) {
  int calls = 0;
  train::StepGraphs steps(Device::cpu(), /*record=*/true,
                          [&](const models::PackedBatch&, const Tensor& scale) {
                            ++calls;
                            return scale * 2.0;
                          },
                          [] { return std::optional<int64_t>(0); });
  models::PackedBatch batch;
  batch.tokens = zeros({4}, {.dtype = DType::i64});
  batch.positions = batch.labels = batch.tokens;
  batch.attn.cu_seqlens = tensor({0, 4}, {2}, {.dtype = DType::i32});
  batch.rows = 1;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(steps.run(batch, 0.25).item<double>(), 0.5);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(steps.status(), "off");
}

}  // namespace
}  // namespace ponder
