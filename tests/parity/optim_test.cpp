// ponder's AdamW and SGD against torch.optim, and its Muon against a PyTorch Muon, over ten steps on
// random parameters and gradients, with per-group weight decay and learning-rate scale, a changing
// learning rate, and a parameter that has no gradient on some steps.
#include <gtest/gtest.h>

#include <functional>
#include <iomanip>
#include <sstream>

#include "io/safetensors.h"
#include "optim/optim.h"
#include "support/python.h"
#include "support/test_util.h"

namespace ponder::optim {
namespace {

constexpr int kSteps = 10;
constexpr double kTolerance = 1e-6;  // norm-relative, f32

std::string exact(double x) {
  std::ostringstream os;
  os << std::setprecision(17) << x;
  return os.str();
}

struct GroupSpec {
  Shape shape;
  double weight_decay, lr_scale;
};
const std::vector<GroupSpec> kGroups = {{{6, 5}, 0.1, 1.0}, {{5}, 0.0, 1.0}, {{4, 3}, 0.05, 0.5}};
// Muon's matrices: tall (scaled by sqrt(rows/cols)), wide and square.
const std::vector<GroupSpec> kMatrixGroups = {{{12, 5}, 0.1, 1.0}, {{5, 9}, 0.0, 1.0}, {{7, 7}, 0.05, 0.5}};

double base_lr(int step) { return 0.01 * (1.0 + 0.1 * step); }
// Parameter 2 has no gradient on steps 3 and 4.
bool has_grad(int step, size_t k) { return !(k == 2 && (step == 3 || step == 4)); }

using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(std::vector<ParamGroup>)>;

void expect_torch_trajectory(const std::string& name, std::map<std::string, std::string> meta,
                             const MakeOptimizer& make, const std::vector<GroupSpec>& specs = kGroups) {
  TensorList params;
  std::vector<ParamGroup> groups;
  io::NamedTensors inputs;
  for (size_t k = 0; k < specs.size(); ++k) {
    params.push_back(testing::random_tensor(specs[k].shape, 10 + k, DType::f32, true));
    groups.push_back({"g" + std::to_string(k), {params[k]}, specs[k].weight_decay, specs[k].lr_scale});
    inputs.emplace_back("param." + std::to_string(k), params[k].clone());
    meta["wd." + std::to_string(k)] = exact(specs[k].weight_decay);
    meta["lr_scale." + std::to_string(k)] = exact(specs[k].lr_scale);
  }
  std::unique_ptr<Optimizer> opt = make(std::move(groups));
  std::vector<TensorList> trajectory;
  for (int s = 0; s < kSteps; ++s) {
    meta["lr." + std::to_string(s)] = exact(base_lr(s));
    opt->set_lr(base_lr(s));
    for (size_t k = 0; k < params.size(); ++k) {
      Tensor g = has_grad(s, k) ? testing::random_tensor(params[k].shape(), 100 * s + k, DType::f32) : Tensor();
      if (g.defined()) inputs.emplace_back("grad." + std::to_string(s) + "." + std::to_string(k), g);
      params[k].set_grad(g);
    }
    opt->step();
    TensorList snapshot;
    for (const Tensor& p : params) snapshot.push_back(p.clone());
    trajectory.push_back(snapshot);
  }
  meta["steps"] = std::to_string(kSteps);

  auto dir = testing::scratch_dir(name);
  io::save_safetensors(dir / "inputs.safetensors", inputs, meta);
  std::string log;
  int status = testing::run_python("optim_trajectory.py", (dir / "inputs.safetensors").string() + " " +
                                                              (dir / "reference.safetensors").string(), log);
  ASSERT_EQ(status, 0) << log;
  auto ref = io::load_safetensors(dir / "reference.safetensors").tensors;
  double worst = 0;
  for (int s = 0; s < kSteps; ++s) {
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string key = "param." + std::to_string(s) + "." + std::to_string(k);
      double err = testing::relative_error(trajectory[s][k], ref.at(key));
      EXPECT_LT(err, kTolerance) << key;
      worst = std::max(worst, err);
    }
  }
  std::printf("%s: largest relative error over %d steps: %.2e\n", name.c_str(), kSteps, worst);
  std::filesystem::remove_all(dir);
}

TEST(OptimParity, AdamWMatchesTorch) {
  expect_torch_trajectory("adamw", {{"optimizer", "adamw"}, {"beta1", "0.9"}, {"beta2", "0.95"}, {"eps", "1e-08"}},
                          [](std::vector<ParamGroup> g) {
                            return std::make_unique<AdamW>(std::move(g), AdamWOptions{.beta1 = 0.9, .beta2 = 0.95});
                          });
}

TEST(OptimParity, AdamWWithLargeEpsMatchesTorch) {
  expect_torch_trajectory("adamw_eps", {{"optimizer", "adamw"}, {"beta1", "0.8"}, {"beta2", "0.999"}, {"eps", "0.1"}},
                          [](std::vector<ParamGroup> g) {
                            return std::make_unique<AdamW>(std::move(g), AdamWOptions{.beta1 = 0.8, .eps = 0.1});
                          });
}

void expect_sgd_parity(const std::string& name, SgdOptions options) {
  expect_torch_trajectory(name,
                          {{"optimizer", "sgd"},
                           {"momentum", exact(options.momentum)},
                           {"dampening", exact(options.dampening)},
                           {"nesterov", options.nesterov ? "1" : "0"}},
                          [&](std::vector<ParamGroup> g) { return std::make_unique<Sgd>(std::move(g), options); });
}

TEST(OptimParity, SgdMatchesTorch) { expect_sgd_parity("sgd", {}); }
TEST(OptimParity, SgdWithMomentumMatchesTorch) { expect_sgd_parity("sgd_momentum", {.momentum = 0.9}); }
TEST(OptimParity, SgdWithNesterovMomentumMatchesTorch) {
  expect_sgd_parity("sgd_nesterov", {.momentum = 0.9, .nesterov = true});
}
TEST(OptimParity, SgdWithDampenedMomentumMatchesTorch) {
  expect_sgd_parity("sgd_dampening", {.momentum = 0.8, .dampening = 0.3});
}

void expect_muon_parity(const std::string& name, MuonOptions options) {
  expect_torch_trajectory(name,
                          {{"optimizer", "muon"},
                           {"momentum", exact(options.momentum)},
                           {"nesterov", options.nesterov ? "1" : "0"},
                           {"ns_steps", std::to_string(options.ns_steps)}},
                          [&](std::vector<ParamGroup> g) { return std::make_unique<Muon>(std::move(g), options); },
                          kMatrixGroups);
}

TEST(OptimParity, MuonMatchesATorchMuon) { expect_muon_parity("muon", {}); }
TEST(OptimParity, MuonWithoutNesterovMatchesATorchMuon) {
  expect_muon_parity("muon_plain", {.momentum = 0.9, .nesterov = false, .ns_steps = 3});
}

}  // namespace
}  // namespace ponder::optim
