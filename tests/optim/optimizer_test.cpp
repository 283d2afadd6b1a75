#include "optim/optim.h"

#include <gtest/gtest.h>

#include <cmath>

#include "io/safetensors.h"
#include "support/python.h"
#include "support/test_util.h"

namespace ponder::optim {
namespace {

using testing::all_close;
using testing::error_message;
using testing::random_tensor;

Tensor param(const Shape& shape, uint64_t seed, DType dtype = DType::f32) {
  return random_tensor(shape, seed, dtype, /*requires_grad=*/true);
}

// HRM-Text's AdamATan2 written out in f64 for one tensor.
struct Atan2Reference {
  std::vector<double> theta, m, v;
  int t = 0;
  void step(const std::vector<double>& g, double lr, double beta1, double beta2, double wd) {
    ++t;
    for (size_t i = 0; i < theta.size(); ++i) {
      theta[i] *= 1 - lr * wd;
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      theta[i] -= lr / (1 - std::pow(beta1, t)) * std::atan2(m[i], std::sqrt(v[i] / (1 - std::pow(beta2, t))));
    }
  }
};

TEST(AdamATan2, MatchesTheFormulaInDoublePrecision) {
  for (DType dtype : {DType::f64, DType::f32}) {
    Tensor p = param({5, 7}, 1, dtype);
    Atan2Reference ref{p.to_vector<double>(), std::vector<double>(35), std::vector<double>(35)};
    AdamATan2 opt({{"all", {p}, 0.1}}, {.lr = 0.02, .beta1 = 0.9, .beta2 = 0.95});
    for (int t = 1; t <= 10; ++t) {
      Tensor g = random_tensor(p.shape(), 100 + t, dtype) * (t % 3 == 0 ? 1e-4 : 1.0);
      p.set_grad(g);
      opt.step();
      ref.step(g.to_vector<double>(), 0.02, 0.9, 0.95, 0.1);
    }
    const double tol = dtype == DType::f64 ? 1e-12 : 1e-6;
    EXPECT_TRUE(all_close(p, tensor(ref.theta, p.shape(), {.dtype = DType::f64}), tol, tol)) << dtype_name(dtype);
    EXPECT_EQ(opt.steps(), 10);
  }
}

TEST(AdamATan2, ZeroGradientOnlyDecaysWithoutEpsilon) {
  Tensor p = param({6}, 2);
  Tensor before = p.clone();
  AdamATan2 opt({{"all", {p}, 0.5}}, {.lr = 0.1});
  p.set_grad(zeros({6}));
  opt.step();  // atan2(0, 0) = 0: no division by zero without an epsilon
  EXPECT_TRUE(all_close(p, before * (1 - 0.1 * 0.5), 1e-7, 0));
}

TEST(AdamW, FirstStepMovesEachElementByLrTimesTheSignOfItsGradient) {
  Tensor p = param({4, 3}, 3, DType::f64);
  Tensor g = random_tensor({4, 3}, 4);
  Tensor before = p.clone();
  AdamW opt({{"w", {p}, 0.0}}, {.lr = 0.01, .eps = 0.0});
  p.set_grad(g);
  opt.step();  // bias-corrected m̂ = g and v̂ = g², so the step is lr · g / |g|
  EXPECT_TRUE(all_close(p, before - 0.01 * g / abs(g), 1e-12, 1e-15));
}

TEST(AdamW, WeightDecayIsDecoupledFromTheGradient) {
  Tensor p = param({5}, 5, DType::f64);
  Tensor before = p.clone();
  AdamW opt({{"w", {p}, 0.1}}, {.lr = 0.5});
  p.set_grad(zeros({5}, {.dtype = DType::f64}));
  opt.step();  // m = v = 0: only θ(1 − lr·wd) remains
  EXPECT_TRUE(all_close(p, before * (1 - 0.5 * 0.1), 1e-15, 0));
}

TEST(Sgd, MomentumBufferStartsAtTheFirstGradient) {
  Tensor p = tensor({1.0}, {1}, {.dtype = DType::f64, .requires_grad = true});
  Sgd opt({{"p", {p}, 0.0}}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  for (int s = 0; s < 3; ++s) {
    p.set_grad(tensor({2.0}, {1}, {.dtype = DType::f64}));
    opt.step();
  }
  // b = 2, then 0.9·2 + 0.5·2 = 2.8, then 0.9·2.8 + 1 = 3.52; θ = 1 − 0.1·(2 + 2.8 + 3.52)
  EXPECT_NEAR(p.item<double>(), 1 - 0.1 * (2 + 2.8 + 3.52), 1e-14);
}

TEST(Optimizer, ParametersWithoutAGradientAreSkipped) {
  Tensor a = param({3}, 6), b = param({3}, 7);
  Tensor b_before = b.clone();
  AdamW opt({{"g", {a, b}, 0.1}}, {.lr = 0.1});
  a.set_grad(random_tensor({3}, 8, DType::f32));
  opt.step();
  opt.step();
  EXPECT_TRUE(all_close(b, b_before, 0, 0));  // not even decayed
  b.set_grad(random_tensor({3}, 9, DType::f32));
  opt.step();
  std::map<std::string, Tensor> state;
  for (auto& [k, v] : opt.state()) state[k] = v;
  EXPECT_EQ(state.at("step").item<int64_t>(), 3);
  EXPECT_EQ(state.at("g.0.step").item<int64_t>(), 3);
  EXPECT_EQ(state.at("g.1.step").item<int64_t>(), 1);  // its own count drives its bias correction
  EXPECT_FALSE(state.count("g.0.master"));             // f32 parameters are their own master
}

TEST(Optimizer, GroupsScaleTheLearningRate) {
  Tensor a = tensor({1.0}, {1}, {.requires_grad = true}), b = tensor({1.0}, {1}, {.requires_grad = true});
  Sgd opt({{"full", {a}}, {"half", {b}, 0.0, 0.5}}, {.lr = 0.2});
  opt.set_lr(0.4);
  for (const Tensor& p : {a, b}) p.set_grad(ones({1}));
  opt.step();
  EXPECT_FLOAT_EQ(a.item<float>(), 0.6f);
  EXPECT_FLOAT_EQ(b.item<float>(), 0.8f);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.4);
}

TEST(Optimizer, DecayGroupsSplitByRankAndLeaveFrozenParametersOut) {
  nn::NamedTensors named = {{"embed.weight", param({10, 4}, 1)}, {"norm.weight", param({4}, 2)},
                            {"proj.weight", param({4, 4}, 3)},   {"proj.bias", param({4}, 4)},
                            {"gate", param({}, 5)},              {"frozen.weight", random_tensor({4, 4}, 6)}};
  auto names_in = [&](const ParamGroup& g) {
    std::vector<std::string> names;
    for (const Tensor& p : g.params)
      for (auto& [n, t] : named)
        if (t.is_same(p)) names.push_back(n);
    return names;
  };
  auto groups = decay_groups(named, 0.1);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "decay");
  EXPECT_EQ(groups[0].weight_decay, 0.1);
  EXPECT_EQ(names_in(groups[0]), (std::vector<std::string>{"embed.weight", "proj.weight"}));
  EXPECT_EQ(groups[1].name, "no_decay");
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  EXPECT_EQ(names_in(groups[1]), (std::vector<std::string>{"norm.weight", "proj.bias", "gate"}));

  auto all = decay_groups(named, 0.1, /*decay_1d=*/true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(names_in(all[0]).size(), 5u);
}

TEST(Optimizer, ZeroGradReleasesOwnGradientsAndZeroesBufferViews) {
  Tensor a = param({3}, 1), b = param({2, 2}, 2);
  GradBuffer buffer({b});
  AdamW opt({{"g", {a, b}}});
  (a.sum() + b.sum()).backward();
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  ASSERT_TRUE(b.grad().defined());
  EXPECT_TRUE(b.grad().is_same(buffer.view(0)));
  EXPECT_TRUE(all_close(buffer.flat(), zeros({buffer.flat().numel()}), 0, 0));
}

TEST(Optimizer, BadConfigurationsAreRejected) {
  Tensor p = param({2}, 1);
  EXPECT_NE(error_message<ValueError>([&] { AdamW({{"a", {p}}, {"b", {p}}}); }).find("more than once"),
            std::string::npos);
  EXPECT_NE(error_message<ValueError>([&] { AdamW({{"a", {p}}, {"a", {}}}); }).find("distinct"), std::string::npos);
  EXPECT_NE(error_message<ValueError>([&] { AdamW({{"a", {p}}}, {.beta2 = 1.0}); }).find("betas"),
            std::string::npos);
  EXPECT_NE(error_message<ValueError>([&] { Sgd({{"a", {p}}}, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); })
                .find("nesterov"),
            std::string::npos);
  EXPECT_NE(error_message<DTypeError>([&] { Sgd({{"a", {arange(0, 3)}}}); }).find("floating"), std::string::npos);
  EXPECT_NE(error_message<ShapeError>([&] { Sgd({{"a", {param({3, 2}, 2).t()}}}); }).find("contiguous"),
            std::string::npos);
  AdamW ok({{"a", {p}}});
  EXPECT_NE(error_message<ValueError>([&] { ok.set_lr(-1); }).find("learning rate"), std::string::npos);
}

// Runs `steps` updates with gradients drawn from `seed`; the same calls on two optimizers over
// equal parameters must give equal results.
void run_steps(Optimizer& opt, const TensorList& params, int first, int steps) {
  for (int s = first; s < first + steps; ++s) {
    opt.set_lr(0.01 * (1.0 + 0.1 * s));
    for (size_t k = 0; k < params.size(); ++k)
      params[k].set_grad(random_tensor(params[k].shape(), 1000 * s + k, DType::f32));
    opt.step();
  }
}

template <class Opt, class Options>
void expect_resume_is_seamless(DType dtype, Options options) {
  TensorList run = {param({4, 3}, 11, dtype), param({5}, 12, dtype)};
  Opt uninterrupted({{"decay", {run[0]}, 0.1}, {"no_decay", {run[1]}}}, options);
  run_steps(uninterrupted, run, 0, 4);

  auto dir = testing::scratch_dir("optim_resume");
  io::save_safetensors(dir / "params.safetensors", {{"0", run[0]}, {"1", run[1]}});
  io::save_safetensors(dir / "optim.safetensors", uninterrupted.state());
  run_steps(uninterrupted, run, 4, 4);

  auto saved = io::load_safetensors(dir / "params.safetensors").tensors;
  TensorList resumed = {saved.at("0").set_requires_grad(true), saved.at("1").set_requires_grad(true)};
  Opt restarted({{"decay", {resumed[0]}, 0.1}, {"no_decay", {resumed[1]}}}, options);
  restarted.load_state(io::load_safetensors(dir / "optim.safetensors").tensors);
  EXPECT_EQ(restarted.steps(), 4);
  run_steps(restarted, resumed, 4, 4);
  for (size_t k = 0; k < run.size(); ++k) EXPECT_TRUE(all_close(resumed[k], run[k], 0, 0)) << k;
  std::filesystem::remove_all(dir);
}

TEST(Optimizer, StateRoundTripContinuesIdentically) {
  expect_resume_is_seamless<AdamW>(DType::f32, AdamWOptions{.lr = 0.01});
  expect_resume_is_seamless<AdamW>(DType::bf16, AdamWOptions{.lr = 0.01});
  expect_resume_is_seamless<AdamATan2>(DType::bf16, AdamAtan2Options{.lr = 0.01});
  expect_resume_is_seamless<Sgd>(DType::f32, SgdOptions{.lr = 0.01, .momentum = 0.9, .nesterov = true});
}

TEST(Optimizer, StateNamesAreStable) {
  Tensor w = param({2, 2}, 1, DType::bf16), b = param({2}, 2);
  AdamW opt({{"decay", {w}, 0.1}, {"no_decay", {b}}});
  w.set_grad(ones({2, 2}));
  b.set_grad(ones({2}));
  opt.step();
  std::vector<std::string> names;
  for (auto& [n, t] : opt.state()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"step", "decay.0.step", "decay.0.master", "decay.0.exp_avg",
                                             "decay.0.exp_avg_sq", "no_decay.0.step", "no_decay.0.exp_avg",
                                             "no_decay.0.exp_avg_sq"}));
  Sgd plain({{"decay", {w}}});
  w.set_grad(ones({2, 2}));
  plain.step();
  names.clear();
  for (auto& [n, t] : plain.state()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"step", "decay.0.step", "decay.0.master"}));
}

TEST(Optimizer, LoadStateRejectsBadEntriesAndKeepsItsState) {
  Tensor w = param({2, 2}, 1);
  AdamW opt({{"decay", {w}}});
  w.set_grad(ones({2, 2}));
  opt.step();
  std::map<std::string, Tensor> good;
  for (auto& [n, t] : opt.state()) good[n] = t.clone();

  auto with = [&](const std::string& name, const Tensor& t) {
    auto s = good;
    s[name] = t;
    return s;
  };
  auto without = [&](const std::string& name) {
    auto s = good;
    s.erase(name);
    return s;
  };
  EXPECT_NE(error_message<ValueError>([&] { opt.load_state(with("decay.1.exp_avg", zeros({2}))); })
                .find("'decay.1.exp_avg' names no state"),
            std::string::npos);
  EXPECT_NE(error_message<ValueError>([&] { opt.load_state(without("decay.0.exp_avg_sq")); })
                .find("missing 'decay.0.exp_avg_sq'"),
            std::string::npos);
  EXPECT_NE(error_message<ShapeError>([&] { opt.load_state(with("decay.0.exp_avg", zeros({4}))); })
                .find("'decay.0.exp_avg' has shape [4]"),
            std::string::npos);
  EXPECT_NE(error_message<ValueError>([&] { opt.load_state(without("step")); }).find("missing 'step'"),
            std::string::npos);
  EXPECT_EQ(opt.steps(), 1);
  EXPECT_EQ(opt.state().size(), good.size());
}

}  // namespace
}  // namespace ponder::optim
