#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "optim/optim.h"
#include "support/test_util.h"

namespace ponder::optim {
namespace {

using testing::all_close;
using testing::error_message;
using testing::random_tensor;

TEST(Ema, FollowsTheRecurrence) {
  Tensor p = tensor({1.0, -2.0}, {2}, {.requires_grad = true});
  Ema ema({{"p", p}}, 0.9);
  std::vector<double> expected = {1.0, -2.0};
  for (double target : {3.0, 0.5, -1.0}) {
    {
      NoGrad no_grad;
      fill_(p, target);
    }
    ema.update();
    for (double& e : expected) e = 0.9 * e + 0.1 * target;
  }
  Tensor shadow = ema.state().at(0).second;
  EXPECT_EQ(shadow.dtype(), DType::f32);
  EXPECT_TRUE(all_close(shadow, tensor(expected, {2}, {.dtype = DType::f64}), 1e-6, 0));
}

TEST(Ema, SwapTogglesExactlyAndCopyToExports) {
  Tensor p = random_tensor({3, 2}, 1, DType::bf16, true);
  Tensor original = p.clone();
  Ema ema({{"layer.weight", p}}, 0.5);
  {
    NoGrad no_grad;
    copy_(p, p * 3.0);
  }
  ema.update();
  Tensor trained = p.clone();
  ema.swap();
  EXPECT_TRUE(ema.swapped());
  EXPECT_TRUE(all_close(p, (0.5 * original.to(DType::f32) + 0.5 * trained.to(DType::f32)).to(DType::bf16), 0, 0));
  EXPECT_NE(error_message<ValueError>([&] { ema.update(); }).find("swap() back first"), std::string::npos);
  ema.swap();
  EXPECT_TRUE(all_close(p, trained, 0, 0));

  Tensor exported = zeros({3, 2}, {.dtype = DType::f64});
  ema.copy_to({exported});
  EXPECT_TRUE(all_close(exported, ema.state().at(0).second, 0, 0));
  EXPECT_NE(error_message<ShapeError>([&] { ema.copy_to({zeros({2})}); }).find("layer.weight"), std::string::npos);
}

TEST(Ema, StateRoundTrip) {
  Tensor p = random_tensor({4}, 2, DType::f32, true);
  Ema a({{"w", p}}, 0.99), b({{"w", p}}, 0.99);
  {
    NoGrad no_grad;
    fill_(p, 1.0);
  }
  a.update();
  std::map<std::string, Tensor> state = {{"w", a.state().at(0).second.clone()}};
  b.load_state(state);
  a.update();
  b.update();
  EXPECT_TRUE(all_close(b.state().at(0).second, a.state().at(0).second, 0, 0));
  EXPECT_NE(error_message<ValueError>([&] { b.load_state({{"v", zeros({4})}}); }).find("missing 'w'"),
            std::string::npos);
  EXPECT_NE(error_message<ValueError>([] { Ema({}, 1.5); }).find("decay"), std::string::npos);
}

TEST(ClipGradNorm, ReturnsTheGlobalNormAndScalesOnlyAboveTheLimit) {
  Tensor a = random_tensor({3, 4}, 1, DType::f32, true), b = random_tensor({5}, 2, DType::bf16, true);
  Tensor c = random_tensor({2}, 3, DType::f32, true);  // no gradient: ignored
  Tensor ga = tensor({3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 4});
  Tensor gb = tensor({0, 4, 0, 0, 12}, {5}, {.dtype = DType::bf16});
  a.set_grad(ga.clone());
  b.set_grad(gb.clone());
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b, c}, 20.0), 13.0);  // sqrt(9 + 16 + 144), unchanged
  EXPECT_TRUE(all_close(a.grad(), ga, 0, 0));

  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b, c}, 1.3), 13.0);
  const double factor = 1.3 / (13.0 + 1e-6);
  EXPECT_TRUE(all_close(a.grad(), ga * factor, 1e-7, 0));
  EXPECT_TRUE(all_close(b.grad(), (gb.to(DType::f32) * factor).to(DType::bf16), 0, 0));
  const double clipped = std::hypot(norm(a.grad()).item<double>(), norm(b.grad().to(DType::f32)).item<double>());
  EXPECT_NEAR(clipped, 1.3, 1e-2);  // bf16 rounding of b's gradient
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradientsAlone) {
  Tensor a = random_tensor({3}, 1, DType::f32, true);
  Tensor g = tensor({1.0, std::numeric_limits<double>::infinity(), 2.0}, {3});
  a.set_grad(g.clone());
  EXPECT_TRUE(std::isinf(clip_grad_norm({a}, 1.0)));
  EXPECT_TRUE(all_close(a.grad().slice(0, 0, 1), g.slice(0, 0, 1), 0, 0));
  a.set_grad(tensor({1.0, std::nan(""), 2.0}, {3}));
  EXPECT_TRUE(std::isnan(clip_grad_norm({a}, 1.0)));
  EXPECT_FLOAT_EQ(a.grad().to_vector<float>()[2], 2.0f);
  EXPECT_NE(error_message<ValueError>([&] { clip_grad_norm({a}, 0.0); }).find("max_norm"), std::string::npos);
}

TEST(ClipGradNorm, LargeGradientsSumInAFixedOrder) {
  Tensor a = random_tensor({300, 500}, 4, DType::f32, true);
  a.set_grad(random_tensor({300, 500}, 5, DType::f32));
  const double expected = std::sqrt((a.grad().to(DType::f64) * a.grad().to(DType::f64)).sum().item<double>());
  EXPECT_NEAR(clip_grad_norm({a}, 1e9), expected, 1e-9 * expected);
}

// ---- the clip factor folded into the optimizers' updates ----

constexpr double kMaxNorm = 0.5;

// Two 2-D parameters (Muon takes only those) whose gradients grow from step to step, so that each
// step is clipped by its own factor; Adam's first step alone would hardly notice a factor (it is
// nearly invariant to the gradients' scale), later steps do.
struct ClippedRun {
  TensorList params;
  explicit ClippedRun(DType dtype)
      : params{random_tensor({4, 3}, 1, dtype, true), random_tensor({5, 2}, 2, dtype, true)} {}
  void set_gradients(int step) const {
    const DType grad_dtype = params[0].dtype() == DType::f64 ? DType::f64 : DType::f32;  // as GradBuffer's
    for (size_t k = 0; k < params.size(); ++k)
      params[k].set_grad(random_tensor(params[k].shape(), 100 * step + k, grad_dtype) * (1.0 + step));
  }
  std::vector<ParamGroup> groups() const { return {{"decay", {params[0]}, 0.1}, {"no_decay", {params[1]}}}; }
};

// step(grad_clip's factor) against clip_grad_norm's scaling pass and then step(): the same bits (the
// fold multiplies each gradient by the same rounded factor the pass did). An optimizer that folds
// the factor leaves the gradients alone; the others scale them in place like the pass.
template <class Opt, class Options>
void expect_folded_clip_equals_scale_then_step(DType dtype, const Options& options, bool folds) {
  const ClippedRun folded(dtype), separate(dtype);
  Opt a(folded.groups(), options), b(separate.groups(), options);
  for (int step = 0; step < 4; ++step) {
    const std::string at = std::string(dtype_name(dtype)) + ", step " + std::to_string(step);
    folded.set_gradients(step);
    separate.set_gradients(step);
    const double norm = clip_grad_norm(separate.params, kMaxNorm);
    b.step();
    const GradClip clip = grad_clip(folded.params, kMaxNorm);
    ASSERT_LT(clip.factor.item<double>(), 1.0) << at;
    EXPECT_EQ(clip.norm(), norm) << at;
    const Tensor raw_grad = folded.params[0].grad().clone();
    a.step(clip.factor);
    EXPECT_TRUE(all_close(folded.params[0].grad(), folds ? raw_grad : separate.params[0].grad(), 0, 0)) << at;
    for (size_t k = 0; k < folded.params.size(); ++k) {
      EXPECT_TRUE(all_close(folded.params[k], separate.params[k], 0, 0)) << "parameter " << k << ", " << at;
      EXPECT_TRUE(all_close(a.master_of(folded.params[k]), b.master_of(separate.params[k]), 0, 0)) << at;
    }
  }
}

TEST(ClipFactor, AdamFamilyFoldsItIntoTheUpdate) {
  for (DType dtype : {DType::f64, DType::f32, DType::bf16}) {
    expect_folded_clip_equals_scale_then_step<AdamW>(dtype, AdamWOptions{.lr = 0.01}, true);
    expect_folded_clip_equals_scale_then_step<AdamATan2>(dtype, AdamAtan2Options{.lr = 0.01}, true);
  }
}

TEST(ClipFactor, SgdFoldsItIntoTheUpdate) {
  for (DType dtype : {DType::f64, DType::f32})
    expect_folded_clip_equals_scale_then_step<Sgd>(dtype, SgdOptions{.lr = 0.1, .momentum = 0.9}, true);
}

TEST(ClipFactor, MuonScalesTheGradientsFirst) {
  for (DType dtype : {DType::f64, DType::f32})
    expect_folded_clip_equals_scale_then_step<Muon>(dtype, MuonOptions{.lr = 0.02}, false);
}

TEST(ClipFactor, AtOrBelowTheLimitTheFactorIsOneAndTheUpdateUntouched) {
  const ClippedRun folded(DType::f32), plain(DType::f32);
  AdamATan2 a(folded.groups(), {.lr = 0.01}), b(plain.groups(), {.lr = 0.01});
  for (int step = 0; step < 3; ++step) {
    folded.set_gradients(step);
    plain.set_gradients(step);
    const GradClip clip = grad_clip(folded.params, 1e6);
    EXPECT_EQ(clip.factor.item<double>(), 1.0);
    a.step(clip.factor);
    b.step();
    for (size_t k = 0; k < folded.params.size(); ++k) EXPECT_TRUE(all_close(folded.params[k], plain.params[k], 0, 0));
  }
  EXPECT_FALSE(grad_clip(folded.params, std::numeric_limits<double>::infinity()).factor.defined());  // no clipping
}

TEST(ClipFactor, NonFiniteNormGivesOneAndLeavesGradientsAlone) {
  for (double bad : {std::numeric_limits<double>::infinity(), std::nan("")}) {
    Tensor a = random_tensor({3}, 1, DType::f32, true);
    const Tensor g = tensor({1.0, bad, 2.0}, {3});
    a.set_grad(g.clone());
    const GradClip clip = grad_clip({a}, 1.0);
    EXPECT_EQ(std::isnan(clip.norm()), std::isnan(bad));
    EXPECT_FALSE(std::isfinite(clip.norm()));
    EXPECT_EQ(clip.factor.item<double>(), 1.0);
    EXPECT_EQ(a.grad().to_vector<float>()[2], 2.0f);
  }
}

TEST(ClipFactor, AScaleOfTheWrongKindIsRefused) {
  const ClippedRun run(DType::f32);
  run.set_gradients(0);
  AdamW opt(run.groups());
  EXPECT_EQ(error_message<DTypeError>([&] { opt.step(tensor({0.5}, {1})); }),
            "adamw_update: grad_scale [1] f32 cpu must be one f64 element on cpu");
}

}  // namespace
}  // namespace ponder::optim
