// HRM-Text against the same recurrence written in PyTorch: logits, summed loss and every
// parameter's gradient, f32, on a packed PrefixLM batch, at each truncated-backprop depth — so the
// test pins down which recurrent calls carry gradient.
#include <gtest/gtest.h>

#include "data/packing.h"
#include "models/hrm_text/hrm_text.h"
#include "support/model_parity.h"

namespace ponder {
namespace {

data::Sample sample(std::vector<int32_t> inst, std::vector<int32_t> resp) { return {std::move(inst), std::move(resp)}; }

std::map<std::string, std::string> reference_metadata(const models::HrmTextConfig& c, int64_t bp) {
  return {{"heads", std::to_string(c.heads)}, {"kv_heads", std::to_string(c.heads)},
          {"head_dim", std::to_string(c.resolved_head_dim())}, {"eps", std::to_string(c.norm_eps)},
          {"theta", std::to_string(c.rope_theta)}, {"output_gate", "1"},
          {"layers_per_stack", std::to_string(c.layers_per_stack)}, {"H_cycles", std::to_string(c.h_cycles)},
          {"L_cycles", std::to_string(c.l_cycles)}, {"bp", std::to_string(bp)},
          {"embedding_scale", std::to_string(c.resolved_embedding_scale())}};
}

// Returns the parameters whose gradient is zero in the reference (reached by no recorded call).
std::vector<std::string> expect_parity(const models::HrmTextConfig& c, int64_t bp) {
  models::HrmText model(c);
  model.set_backprop_depth(bp);
  auto batch = data::pack_rows({{sample({1, 2, 3, 4}, {5, 6, 7}), sample({8, 9}, {10, 11, 12, 13})},
                                {sample({3}, {1, 4, 1, 5, 9, 2, 6}), sample({7, 7, 7}, {7, 2})}},
                               {.row_len = 12});
  return testing::expect_model_parity(model, batch,
                                      {.script = "hrm_text.py",
                                       .name = "hrm_text_bp" + std::to_string(bp),
                                       .metadata = reference_metadata(c, bp),
                                       .extra_inputs = {{"model.z_L_init", model.model->z_L_init}}});
}

models::HrmTextConfig tiny_config() {
  return {.vocab_size = 32, .dim = 32, .layers_per_stack = 2, .heads = 2, .ffn_hidden = 64, .h_cycles = 2,
          .l_cycles = 3, .seed = 11};
}

TEST(Parity, HrmTextMatchesPyTorchAtEveryBackpropDepth) {
  const models::HrmTextConfig c = tiny_config();
  for (int64_t bp = 2; bp <= 5; ++bp) {
    const std::vector<std::string> without_gradient = expect_parity(c, bp);
    // At bp 2 only the last H call records; its input z_H comes from an unrecorded H call, so the
    // embedding learns nothing. From bp 3 both H calls record and every parameter gets a gradient.
    if (bp == 2) {
      EXPECT_EQ(without_gradient, std::vector<std::string>{"model.embed_tokens.weight"});
    } else {
      EXPECT_TRUE(without_gradient.empty());
    }
  }
}

TEST(Parity, HrmTextWithOneCycleEachAndFullBackprop) {
  models::HrmTextConfig c = tiny_config();
  c.h_cycles = 1;
  c.l_cycles = 1;
  c.embedding_scale = 2.5;
  c.bp = {.bp_min = 2, .bp_max = 2};
  EXPECT_TRUE(expect_parity(c, 2).empty());
}

}  // namespace
}  // namespace ponder
