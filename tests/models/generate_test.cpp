// Generation with KV caches against recomputation: the same tokens as greedy_decode (which runs
// the whole sequence again for every token) and the same logits as the full forward.
#include "models/generate.h"

#include <gtest/gtest.h>

#include <memory>

#include "models/decode.h"
#include "models/hrm_text/hrm_text.h"
#include "models/transformer/transformer.h"
#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder::models {
namespace {
using ponder::testing::all_close;
using ponder::testing::error_message;

constexpr int64_t kVocab = 40, kNewTokens = 24;

std::shared_ptr<LanguageModel> baseline() {
  return std::make_shared<Transformer>(TransformerConfig{
      .vocab_size = kVocab, .dim = 32, .layers = 2, .heads = 4, .kv_heads = 2, .ffn_hidden = 64, .seed = 3});
}

std::shared_ptr<LanguageModel> hrm_text() {
  return std::make_shared<HrmText>(HrmTextConfig{.vocab_size = kVocab, .dim = 32, .layers_per_stack = 2, .heads = 2,
                                                 .ffn_hidden = 64, .h_cycles = 2, .l_cycles = 2, .seed = 4});
}

const std::vector<std::vector<int32_t>> kPrompts = {{7}, {1, 3, 9, 27, 2}, {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 39}};

struct Family {
  const char* name;
  std::shared_ptr<LanguageModel> (*make)();
};
const Family kFamilies[] = {{"transformer", baseline}, {"hrm_text", hrm_text}};

// One sequence as a batch whose first `prompt` tokens form the PrefixLM prefix.
PackedBatch whole_sequence(const std::vector<int32_t>& ids, int64_t prompt, AttentionMask mask) {
  const int64_t n = int64_t(ids.size());
  PackedBatch b;
  b.tokens = tensor(std::vector<double>(ids.begin(), ids.end()), {n}, {.dtype = DType::i64});
  b.positions = arange(0, n);
  b.attn.mask = mask;
  b.attn.cu_seqlens = tensor({0, double(n)}, {2}, {.dtype = DType::i32});
  if (mask == AttentionMask::prefix_lm) b.attn.prefix_len = tensor({double(prompt)}, {1}, {.dtype = DType::i32});
  b.rows = 1;
  b.row_len = n;
  return b;
}

TEST(Generate, KvCachesGiveTheTokensOfRecomputation) {
  for (const Family& family : kFamilies) {
    auto model = family.make();
    for (AttentionMask mask : {AttentionMask::prefix_lm, AttentionMask::causal}) {
      const auto recomputed = greedy_decode(*model, kPrompts, {.max_new_tokens = kNewTokens, .mask = mask});
      for (size_t i = 0; i < kPrompts.size(); ++i) {
        const Generation g = generate(*model, kPrompts[i], {.max_new_tokens = kNewTokens, .prompt_mask = mask});
        EXPECT_EQ(g.tokens.size(), size_t(kNewTokens));
        EXPECT_FALSE(g.stopped_at_eos);
        EXPECT_EQ(g.tokens, recomputed[i]) << family.name << ", prompt " << i << ", mask " << int(mask);
      }
    }
  }
}

// At another test-time depth the caches hold that depth's attention calls.
TEST(Generate, KvCachesFollowTheEvalDepth) {
  auto model = hrm_text();
  for (const EvalDepth& depth : model->eval_depths()) {
    model->set_eval_depth(depth.label);
    const auto recomputed = greedy_decode(*model, {kPrompts[1]}, {.max_new_tokens = 6});
    EXPECT_EQ(generate(*model, kPrompts[1], {.max_new_tokens = 6}).tokens, recomputed[0]) << depth.label;
  }
}

TEST(Generate, CachedLogitsEqualTheLastRowOfTheFullForward) {
  for (const Family& family : kFamilies) {
    auto model = family.make();
    model->train(false);
    NoGrad no_grad;
    for (const auto& prompt : kPrompts) {
      DecodeCache cache;
      std::vector<int32_t> sequence = prompt;
      Tensor input = tensor(std::vector<double>(prompt.begin(), prompt.end()), {int64_t(prompt.size())},
                            {.dtype = DType::i64});
      for (int64_t t = 0; t < kNewTokens; ++t) {
        const Tensor cached = model->next_token_logits(input, cache);
        const Tensor full = model->logits(whole_sequence(sequence, int64_t(prompt.size()), AttentionMask::prefix_lm));
        ASSERT_TRUE(all_close(cached, narrow(full, 0, full.size(0) - 1, 1), 1e-5, 1e-5))
            << family.name << ", step " << t;
        const int32_t next = static_cast<int32_t>(argmax(cached, -1).item<int64_t>());
        sequence.push_back(next);
        input = tensor({double(next)}, {1}, {.dtype = DType::i64});
      }
      EXPECT_EQ(cache.length, int64_t(sequence.size()) - 1);
    }
  }
}

// HRM-Text keeps one cache per attention call of the recurrence: H·(L+1) stack calls of
// layers_per_stack layers each, every one holding the whole sequence.
TEST(Generate, HrmTextKeepsACachePerStackCallAndLayer) {
  auto model = hrm_text();
  NoGrad no_grad;
  DecodeCache cache;
  model->next_token_logits(tensor({1, 2, 3}, {3}, {.dtype = DType::i64}), cache);
  model->next_token_logits(tensor({4}, {1}, {.dtype = DType::i64}), cache);
  ASSERT_EQ(cache.attention.size(), size_t(2 * (2 + 1) * 2));
  for (const nn::KVCache& call : cache.attention) EXPECT_EQ(call.length(), 4);
}

TEST(Generate, StopsAtEosWithoutReturningIt) {
  auto model = baseline();
  const Generation free = generate(*model, kPrompts[1], {.max_new_tokens = kNewTokens});
  const int32_t eos = free.tokens[5];
  const auto first = std::find(free.tokens.begin(), free.tokens.end(), eos);
  const Generation stopped = generate(*model, kPrompts[1], {.max_new_tokens = kNewTokens, .eos = eos});
  EXPECT_TRUE(stopped.stopped_at_eos);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(free.tokens.begin(), first));
  std::vector<int32_t> streamed;
  generate(*model, kPrompts[1], {.max_new_tokens = 6}, [&](int32_t t) { streamed.push_back(t); });
  EXPECT_EQ(streamed, std::vector<int32_t>(free.tokens.begin(), free.tokens.begin() + 6));
}

// A tokenizer with fewer ids than the model's (padded) vocabulary: both decoders choose among its ids.
TEST(Generate, ChoicesStayInsideTheTokenizersVocabulary) {
  auto model = baseline();
  constexpr int64_t kTokenizerVocab = 8;
  auto inside = [](const std::vector<int32_t>& ids) {
    return std::all_of(ids.begin(), ids.end(), [](int32_t id) { return id >= 0 && id < kTokenizerVocab; });
  };
  const auto free = greedy_decode(*model, kPrompts, {.max_new_tokens = kNewTokens});
  ASSERT_FALSE(std::all_of(free.begin(), free.end(), inside));  // else the limit would go untested
  for (const auto& ids : greedy_decode(*model, kPrompts, {.max_new_tokens = kNewTokens, .vocab = kTokenizerVocab}))
    EXPECT_TRUE(inside(ids));
  const SamplingOptions hot{.temperature = 1.5, .seed = 11};
  EXPECT_FALSE(inside(generate(*model, kPrompts[1], {.max_new_tokens = kNewTokens, .sampling = hot}).tokens));
  EXPECT_TRUE(inside(
      generate(*model, kPrompts[1], {.max_new_tokens = kNewTokens, .sampling = hot, .vocab = kTokenizerVocab}).tokens));
}

TEST(Generate, SamplingReplaysUnderASeedAndTopKOneIsGreedy) {
  auto model = hrm_text();
  const SamplingOptions hot{.temperature = 1.5, .seed = 11};
  const auto sampled = [&](SamplingOptions s) {
    return generate(*model, kPrompts[2], {.max_new_tokens = kNewTokens, .sampling = s}).tokens;
  };
  EXPECT_EQ(sampled(hot), sampled(hot));
  EXPECT_NE(sampled(hot), sampled({.temperature = 1.5, .seed = 12}));
  const auto greedy = sampled({});
  EXPECT_NE(sampled(hot), greedy);
  EXPECT_EQ(sampled({.temperature = 1.5, .top_k = 1, .seed = 11}), greedy);
}

TEST(Generate, BadRequestsAreRefused) {
  auto model = baseline();
  NoGrad no_grad;
  EXPECT_THROW(generate(*model, {}, {}), ValueError);
  DecodeCache bidirectional(AttentionMask::bidirectional);
  EXPECT_THROW(model->next_token_logits(tensor({1, 2}, {2}, {.dtype = DType::i64}), bidirectional), ValueError);
  DecodeCache cache;
  model->next_token_logits(tensor({1, 2}, {2}, {.dtype = DType::i64}), cache);
  EXPECT_NE(error_message<ValueError>([&] { model->next_token_logits(tensor({3, 4}, {2}, {.dtype = DType::i64}), cache); })
                .find("one at a time"),
            std::string::npos);
}

// A family that has not implemented KV caches says so instead of producing something else.
TEST(Generate, FamiliesWithoutCachesRefuse) {
  struct Plain : LanguageModel {
    std::string family() const override { return "plain"; }
    Tensor features(const PackedBatch& b) override { return zeros({b.tokens.size(0), 2}); }
    Tensor head(const Tensor& f) const override { return zeros({f.size(0), 4}); }
  } plain;
  EXPECT_EQ(error_message<ValueError>([&] { generate(plain, {1, 2}, {}); }),
            "plain: this model family has no KV-cache decoding");
}

}  // namespace
}  // namespace ponder::models
