#include "nn/kv_cache.h"

#include <gtest/gtest.h>

#include <cmath>

#include "nn/attention.h"
#include "nn/nn_test_util.h"
#include "ops/ops.h"

namespace ponder::nn {
namespace {
using ponder::testing::all_close;
using ponder::testing::error_message;
using ponder::testing::random_tensor;
using testing::packed;

TEST(KVCache, AppendsAcrossGrowthAndKeepsEveryToken) {
  const Tensor k = random_tensor({23, 2, 4}, 1), v = random_tensor({23, 2, 4}, 2);
  KVCache cache;
  // A prompt of 3, then one token at a time: the storage grows several times on the way.
  cache.append(narrow(k, 0, 0, 3), narrow(v, 0, 0, 3));
  for (int64_t t = 3; t < 23; ++t) {
    cache.append(narrow(k, 0, t, 1), narrow(v, 0, t, 1));
    ASSERT_EQ(cache.length(), t + 1);
    ASSERT_TRUE(all_close(cache.keys(), narrow(k, 0, 0, t + 1), 0, 0)) << "after token " << t;
    ASSERT_TRUE(all_close(cache.values(), narrow(v, 0, 0, t + 1), 0, 0)) << "after token " << t;
  }
  EXPECT_THROW(cache.append(random_tensor({1, 1, 4}, 3), random_tensor({1, 1, 4}, 4)), ShapeError);
  EXPECT_THROW(cache.append(random_tensor({1, 2, 4}, 3), random_tensor({2, 2, 4}, 4)), ShapeError);
  EXPECT_THROW(KVCache().keys(), ValueError);
}

TEST(KVCache, TruncatingLetsTheNextAppendOverwrite) {
  const Tensor k = random_tensor({4, 2, 4}, 1), v = random_tensor({4, 2, 4}, 2);
  KVCache cache;
  cache.append(narrow(k, 0, 0, 3), narrow(v, 0, 0, 3));
  cache.truncate(2);
  EXPECT_EQ(cache.length(), 2);
  cache.append(narrow(k, 0, 3, 1), narrow(v, 0, 3, 1));  // takes the third slot
  EXPECT_TRUE(all_close(cache.keys(), cat({narrow(k, 0, 0, 2), narrow(k, 0, 3, 1)}, 0), 0, 0));
  EXPECT_TRUE(all_close(cache.values(), cat({narrow(v, 0, 0, 2), narrow(v, 0, 3, 1)}, 0), 0, 0));
  EXPECT_THROW(cache.truncate(4), ValueError);
  EXPECT_THROW(cache.truncate(-1), ValueError);
}

// The newest token's attention over the cache is the last row of causal attention over the whole
// sequence, with query heads sharing kv heads.
TEST(KVCache, AttentionOfTheNewestTokenIsTheLastRowOfCausalAttention) {
  for (int64_t kv_heads : {1, 2, 4}) {
    const int64_t tokens = 9, heads = 4, dim = 8;
    const Tensor q = random_tensor({tokens, heads, dim}, 5), k = random_tensor({tokens, kv_heads, dim}, 6);
    const Tensor v = random_tensor({tokens, kv_heads, dim}, 7);
    const double scale = 1.0 / std::sqrt(double(dim));
    const Tensor full = attention(q, k, v, packed({int(tokens)}).spec, scale);
    KVCache cache;
    cache.append(k, v);
    const Tensor last = attend_to_cache(narrow(q, 0, tokens - 1, 1), cache, scale);
    EXPECT_TRUE(all_close(last, narrow(full, 0, tokens - 1, 1), 1e-12, 1e-12)) << kv_heads << " kv heads";
  }
}

const AttentionConfig kFull{.dim = 16, .heads = 4, .kv_heads = 2, .rope_theta = 10000.0, .output_gate = true,
                            .qk_norm = true};

// A prompt attending as a PrefixLM prefix, then tokens one at a time through the cache, give the rows
// of the layer over the whole sequence with the prompt as its prefix.
TEST(KVCache, AttentionLayerWithACacheEqualsTheWholeSequence) {
  Generator gen(3);
  Attention layer(kFull, gen);
  layer.to(DType::f64);
  const int prompt = 5, tokens = 12;
  const Tensor x = random_tensor({tokens, kFull.dim}, 8);
  const auto whole = packed({tokens}, AttentionMask::prefix_lm, {prompt});
  const Tensor expected = layer.forward(x, whole.positions, whole.spec);

  NoGrad no_grad;
  KVCache cache;
  const auto head = packed({prompt}, AttentionMask::prefix_lm, {prompt});
  EXPECT_TRUE(all_close(layer.forward(narrow(x, 0, 0, prompt), head.positions, head.spec, &cache),
                        narrow(expected, 0, 0, prompt), 1e-12, 1e-12));
  for (int64_t t = prompt; t < tokens; ++t) {
    const Tensor position = tensor({double(t)}, {1}, {.dtype = DType::i64});
    EXPECT_TRUE(all_close(layer.forward(narrow(x, 0, t, 1), position, {}, &cache), narrow(expected, 0, t, 1), 1e-12,
                          1e-12))
        << "token " << t;
  }
  EXPECT_EQ(cache.length(), tokens);
}

TEST(KVCache, RefusesSeveralSequencesOrSeveralNewTokens) {
  Generator gen(3);
  Attention layer(kFull, gen);
  NoGrad no_grad;
  KVCache cache;
  const auto two = packed({2, 3});
  EXPECT_NE(error_message<ValueError>([&] {
              layer.forward(random_tensor({5, kFull.dim}, 1, DType::f32), two.positions, two.spec, &cache);
            }).find("one sample"),
            std::string::npos);
  const auto prompt = packed({3});
  layer.forward(random_tensor({3, kFull.dim}, 1, DType::f32), prompt.positions, prompt.spec, &cache);
  const Tensor positions = tensor({3, 4}, {2}, {.dtype = DType::i64});
  EXPECT_NE(error_message<ValueError>([&] {
              layer.forward(random_tensor({2, kFull.dim}, 2, DType::f32), positions, {}, &cache);
            }).find("one token at a time"),
            std::string::npos);
}

}  // namespace
}  // namespace ponder::nn
