#include "support/model_parity.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "ops/ops.h"
#include "support/python.h"
#include "support/test_util.h"

namespace ponder::testing {

std::vector<std::string> expect_model_parity(models::LanguageModel& model, const models::PackedBatch& batch,
                                             const ModelParity& reference) {
  Tensor loss = model.loss_sum(batch);
  loss.backward();

  auto dir = scratch_dir(reference.name);
  io::NamedTensors inputs = {{"tokens", batch.tokens}, {"positions", batch.positions}, {"labels", batch.labels},
                             {"cu_seqlens", batch.attn.cu_seqlens}};
  if (batch.attn.prefix_len.defined()) inputs.emplace_back("prefix_len", batch.attn.prefix_len);
  for (const auto& extra : reference.extra_inputs) inputs.push_back(extra);
  for (auto& [n, p] : model.named_parameters()) inputs.emplace_back(n, p);
  io::save_safetensors(dir / "inputs.safetensors", inputs, reference.metadata);
  std::string log;
  EXPECT_EQ(run_python(reference.script, (dir / "inputs.safetensors").string() + " " +
                                             (dir / "reference.safetensors").string(), log), 0) << log;
  auto ref = io::load_safetensors(dir / "reference.safetensors").tensors;

  constexpr double kTolerance = 1e-5;
  double worst = relative_error(model.logits(batch), ref.at("logits"));
  EXPECT_LT(worst, kTolerance) << "logits";
  EXPECT_LT(relative_error(loss.reshape({1}), ref.at("loss")), kTolerance) << "loss";
  std::vector<std::string> without_gradient;
  for (auto& [n, p] : model.named_parameters()) {
    const Tensor& expected = ref.at("grad." + n);
    if (amax(abs(expected)).item<double>() == 0.0) {
      without_gradient.push_back(n);
      EXPECT_TRUE(!p.grad().defined() || amax(abs(p.grad())).item<double>() == 0.0) << n << " should get no gradient";
      continue;
    }
    EXPECT_TRUE(p.grad().defined()) << n;
    if (!p.grad().defined()) continue;
    const double err = relative_error(p.grad(), expected);
    EXPECT_LT(err, kTolerance) << "grad of " << n;
    worst = std::max(worst, err);
  }
  std::printf("%s: largest relative error over logits and gradients: %.2e; %zu parameters without gradient\n",
              reference.name.c_str(), worst, without_gradient.size());
  std::filesystem::remove_all(dir);
  return without_gradient;
}

}  // namespace ponder::testing
