// ponder's exports against Hugging Face transformers on the GPU: a recipe's model, randomly
// initialised, is written as a checkpoint and exported (f32 and bf16); transformers loads the export
// (HrmTextForCausalLM, LlamaForCausalLM) and its logits on random tokens with random prefix lengths
// must match ponder's own, computed on the GPU in the same dtype.
#include <gtest/gtest.h>

#include <random>

#include "data/packing.h"
#include "io/safetensors.h"
#include "support/python.h"
#include "support/test_util.h"
#include "tensor/cuda_memory.h"
#include "train/checkpoint.h"
#include "train/export.h"
#include "train/family.h"

namespace ponder {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kRows = 4, kRowLen = 48;

// kRows rows of one sample each, filling the row exactly; prefix lengths include 0 and kRowLen.
models::PackedBatch random_batch(int64_t vocab, AttentionMask mask, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  std::uniform_int_distribution<int64_t> prefix(1, kRowLen - 1);
  std::vector<std::vector<data::Sample>> rows;
  for (int64_t r = 0; r < kRows; ++r) {
    const int64_t p = r == 0 ? 0 : (r == 1 ? kRowLen : prefix(rng));
    data::Sample s;
    for (int64_t i = 0; i < p; ++i) s.instruction.push_back(token(rng));
    for (int64_t i = 0; i < kRowLen - p + 1; ++i) s.response.push_back(token(rng));  // one token only predicts
    rows.push_back({s});
  }
  return data::pack_rows(rows, {.row_len = kRowLen, .mask = mask});
}

int64_t vocab_size(const io::ModelConfig& model) {
  return std::visit([](const auto& c) { return c.vocab_size; }, model);
}

// Logits transformers computes from `export_dir`; empty when the script skips (no transformers).
Tensor hf_logits(const fs::path& export_dir, const models::PackedBatch& batch, const fs::path& scratch) {
  io::NamedTensors inputs = {{"tokens", batch.tokens.reshape({kRows, kRowLen})}};
  if (batch.attn.prefix_len.defined()) inputs.emplace_back("prefix_len", batch.attn.prefix_len);  // prefix_lm only
  io::save_safetensors(scratch / "inputs.safetensors", inputs);
  std::string log;
  const int status = testing::run_python("hf_logits.py", export_dir.string() + " " + (scratch / "inputs.safetensors").string() +
                                                             " " + (scratch / "logits.safetensors").string(), log);
  if (status == 77) return {};
  EXPECT_EQ(status, 0) << log;
  if (status != 0) return {};
  return io::load_safetensors(scratch / "logits.safetensors").tensors.at("logits");
}

// Exports a freshly initialised model of `recipe_path` and compares logits in f32 and bf16.
void expect_transformers_agrees(const std::string& recipe_path, const std::vector<std::string>& overrides) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  io::Recipe recipe = io::load_recipe(recipe_path, overrides);
  auto model = train::build_model(recipe.model, 7);
  const fs::path scratch = testing::scratch_dir("hf_export");
  train::CheckpointContents contents;
  for (auto& [name, t] : model->state_dict()) contents.model.emplace_back(name, t);
  contents.recipe_yaml = recipe.resolved_yaml;
  const fs::path checkpoint = train::write_checkpoint(scratch / "checkpoints", contents);

  std::mt19937 rng(3);
  const models::PackedBatch batch = random_batch(vocab_size(recipe.model), recipe.data.attention_mask(), rng);
  for (DType dtype : {DType::f32, DType::bf16}) {
    const fs::path out = scratch / std::string(dtype_name(dtype));
    train::export_model(checkpoint, out, {.dtype = dtype});
    model->to(Device::cuda(0));
    model->to(dtype);
    model->train(false);
    NoGrad no_grad;
    const Tensor ours = model->logits(models::to_device(batch, Device::cuda(0))).to(DType::f32).to(Device::cpu());
    const Tensor theirs = hf_logits(out, batch, scratch);
    if (!theirs.defined()) GTEST_SKIP() << "transformers is not installed";
    const double error = testing::relative_error(ours, theirs.reshape(ours.shape()));
    std::printf("%s %s: relative error of ponder's logits against transformers': %.2e\n", recipe_path.c_str(),
                std::string(dtype_name(dtype)).c_str(), error);
    EXPECT_LT(error, dtype == DType::f32 ? 1e-4 : 2e-2) << dtype_name(dtype);
  }
  fs::remove_all(scratch);
}

const std::string kRecipes = std::string(PONDER_SOURCE_DIR) + "/recipes/";

TEST(Transformers, LoadsAnHrmTextExportAndAgreesOnLogits) {
  expect_transformers_agrees(kRecipes + "hrm_text/tiny.yaml",
                             {"model.dim=256", "model.heads=2", "model.ffn_hidden=512", "model.layers_per_stack=2",
                              "model.vocab_size=300", "runtime.device=cpu"});
}

TEST(Transformers, LoadsABaselineExportAndAgreesOnLogits) {
  expect_transformers_agrees(kRecipes + "quickstart.yaml", {"model.dim=256", "model.heads=4", "model.ffn_hidden=512",
                                                            "model.vocab_size=300", "data.mask=causal",
                                                            "runtime.device=cpu"});
}

}  // namespace
}  // namespace ponder
