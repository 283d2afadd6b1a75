// Generation with KV caches on the GPU: the cache attention against its CPU twin, and greedy
// generation on CUDA against recomputation on CUDA and against the CPU (f32).
#include "gpu/twin.h"
#include "models/decode.h"
#include "models/generate.h"
#include "models/hrm_text/hrm_text.h"
#include "models/transformer/transformer.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using CudaGenerate = testing::CudaTwin;

TEST_F(CudaGenerate, CacheAttentionMatchesTheCpu) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (int64_t kv_heads : {1, 2}) {
      const Tensor q = random_tensor({1, 4, 64}, 1, dtype), k = random_tensor({37, kv_heads, 64}, 2, dtype);
      const Tensor v = random_tensor({37, kv_heads, 64}, 3, dtype);
      auto cached = [](const TensorList& x) {
        nn::KVCache cache;
        cache.append(narrow(x[1], 0, 0, 30), narrow(x[2], 0, 0, 30));
        for (int64_t t = 30; t < 37; ++t) cache.append(narrow(x[1], 0, t, 1), narrow(x[2], 0, t, 1));
        return nn::attend_to_cache(x[0], cache, 0.125);
      };
      EXPECT_TRUE(cuda_matches_cpu(cached, {q, k, v}, twin_tolerance(dtype))) << dtype_name(dtype) << ", " << kv_heads;
    }
  }
}

std::vector<std::shared_ptr<models::LanguageModel>> small_models() {
  return {std::make_shared<models::Transformer>(models::TransformerConfig{
              .vocab_size = 64, .dim = 64, .layers = 2, .heads = 2, .kv_heads = 1, .ffn_hidden = 128, .seed = 3}),
          std::make_shared<models::HrmText>(models::HrmTextConfig{
              .vocab_size = 64, .dim = 64, .layers_per_stack = 2, .heads = 1, .ffn_hidden = 128, .seed = 4})};
}

TEST_F(CudaGenerate, GreedyTokensMatchRecomputationAndTheCpu) {
  const std::vector<std::vector<int32_t>> prompts = {{5}, {1, 9, 2, 33, 4, 17, 60}};
  for (const auto& model : small_models()) {
    std::vector<std::vector<int32_t>> on_cpu;
    for (const auto& p : prompts) on_cpu.push_back(models::generate(*model, p, {.max_new_tokens = 24}).tokens);
    model->to(Device::cuda(0));
    const models::DecodeOptions recompute{.max_new_tokens = 24, .device = Device::cuda(0)};
    const auto recomputed = models::greedy_decode(*model, prompts, recompute);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto g = models::generate(*model, prompts[i], {.max_new_tokens = 24, .device = Device::cuda(0)});
      EXPECT_EQ(g.tokens, recomputed[i]) << model->family() << ", prompt " << i;
      EXPECT_EQ(g.tokens, on_cpu[i]) << model->family() << ", prompt " << i;
    }
  }
}

}  // namespace
}  // namespace ponder
