#include <gtest/gtest.h>

#include <tuple>

#include "ops/ops.h"
#include "optim/grad_buffer.h"
#include "support/test_util.h"
#include "tensor/allocator.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::error_message;
using testing::gradcheck;
using testing::random_tensor;
using testing::relative_error;

constexpr Reduction kReductions[] = {Reduction::mean, Reduction::sum};

Tensor ids(const std::vector<double>& values, DType dtype = DType::i64) {
  return tensor(values, {int64_t(values.size())}, {.dtype = dtype});
}

// A loss and the gradients it gives hidden and weight.
struct LossAndGrads {
  Tensor loss, dh, dw;
};

using LossFn = std::function<Tensor(const Tensor& hidden, const Tensor& weight)>;

LossAndGrads run(const LossFn& f, const Tensor& hidden, const Tensor& weight) {
  Tensor h = hidden.detach().clone().set_requires_grad(true);
  Tensor w = weight.detach().clone().set_requires_grad(true);
  Tensor loss = f(h, w);
  loss.backward();
  return {loss.detach(), h.grad(), w.grad()};
}

LossFn fused(const Tensor& targets, Reduction r, int64_t chunk, int64_t ignore = kIgnoreIndex) {
  return [=](const Tensor& h, const Tensor& w) { return lm_head_cross_entropy(h, w, targets, ignore, r, chunk); };
}

LossFn unfused(const Tensor& targets, Reduction r, int64_t ignore = kIgnoreIndex) {
  return [=](const Tensor& h, const Tensor& w) { return cross_entropy(linear(h, w), targets, ignore, r); };
}

::testing::AssertionResult same(const LossAndGrads& a, const LossAndGrads& b, double rtol, double atol) {
  for (auto [what, x, y] : {std::tuple{"loss", a.loss, b.loss}, std::tuple{"dh", a.dh, b.dh},
                            std::tuple{"dw", a.dw, b.dw}}) {
    if (auto r = all_close(x, y, rtol, atol); !r) return r << " (" << what << ")";
  }
  return ::testing::AssertionSuccess();
}

TEST(LmHeadCrossEntropy, MatchesTheUnfusedOpsForEveryChunking) {
  Tensor h = random_tensor({10, 6}, 1), w = random_tensor({13, 6}, 2);
  Tensor targets = ids({3, -100, 12, 0, 7, -100, 5, 5, -100, 1});
  for (Reduction r : kReductions) {
    LossAndGrads expected = run(unfused(targets, r), h, w);
    for (int64_t chunk : {1, 3, 4, 10, 64}) {  // 3 and 4 leave a short last chunk
      EXPECT_TRUE(same(run(fused(targets, r, chunk), h, w), expected, 1e-12, 1e-14)) << chunk;
    }
  }
}

TEST(LmHeadCrossEntropy, GradcheckBothInputs) {
  Tensor h = random_tensor({7, 4}, 3, DType::f64, true), w = random_tensor({5, 4}, 4, DType::f64, true);
  Tensor targets = ids({4, 0, -100, 2, 2, 1, 3});
  const testing::GradcheckOptions options{.seed = 2};  // a 0-d output: the default seed weights it by 3e-4
  for (Reduction r : kReductions) {
    for (int64_t chunk : {3, 7}) {
      EXPECT_TRUE(gradcheck([&](const TensorList& in) { return lm_head_cross_entropy(in[0], in[1], targets,
                                                                                      kIgnoreIndex, r, chunk); },
                            {h, w}, options));
    }
  }
}

TEST(LmHeadCrossEntropy, LeadingDimsI32TargetsAndAnotherIgnoreIndex) {
  Tensor h = random_tensor({2, 3, 5}, 5), w = random_tensor({9, 5}, 6);
  Tensor targets = tensor({0, 8, 3, 0, 4, 4}, {2, 3}, {.dtype = DType::i32});
  for (Reduction r : kReductions) {
    EXPECT_TRUE(same(run(fused(targets, r, 4, /*ignore=*/0), h, w), run(unfused(targets, r, 0), h, w), 1e-12,
                     1e-14));
  }
}

TEST(LmHeadCrossEntropy, EveryTargetIgnoredGivesZeroLossAndGradients) {
  Tensor h = random_tensor({4, 3}, 7), w = random_tensor({6, 3}, 8);
  for (Reduction r : kReductions) {
    LossAndGrads got = run(fused(ids({-100, -100, -100, -100}), r, 3), h, w);
    EXPECT_EQ(got.loss.item<double>(), 0.0);
    EXPECT_TRUE(all_close(got.dh, zeros({4, 3}, {.dtype = DType::f64}), 0, 0));
    EXPECT_TRUE(all_close(got.dw, zeros({6, 3}, {.dtype = DType::f64}), 0, 0));
  }
  LossAndGrads empty = run(fused(ids({}), Reduction::mean, 3), zeros({0, 3}, {.dtype = DType::f64}), w);
  EXPECT_EQ(empty.loss.item<double>(), 0.0);
  EXPECT_EQ(empty.dh.shape(), Shape({0, 3}));
}

TEST(LmHeadCrossEntropy, F32AndBf16MatchF64) {
  Tensor h = random_tensor({33, 16}, 9), w = random_tensor({50, 16}, 10);
  std::vector<double> t(33);
  for (size_t i = 0; i < t.size(); ++i) t[i] = i % 4 == 1 ? kIgnoreIndex : double(i * 7 % 50);
  Tensor targets = ids(t);
  for (auto [dtype, tolerance] : {std::pair{DType::f32, 1e-6}, std::pair{DType::bf16, 1e-2}}) {
    for (Reduction r : kReductions) {
      // the same rounded inputs in f64 give the reference
      Tensor hd = h.to(dtype), wd = w.to(dtype);
      LossAndGrads got = run(fused(targets, r, 8), hd, wd);
      LossAndGrads ref = run(unfused(targets, r), hd.to(DType::f64), wd.to(DType::f64));
      EXPECT_EQ(got.loss.dtype(), DType::f32);
      EXPECT_EQ(got.dw.dtype(), dtype);
      EXPECT_LT(relative_error(got.loss, ref.loss), tolerance) << dtype_name(dtype);
      EXPECT_LT(relative_error(got.dh, ref.dh), tolerance) << dtype_name(dtype);
      EXPECT_LT(relative_error(got.dw, ref.dw), tolerance) << dtype_name(dtype);
    }
  }
}

TEST(LmHeadCrossEntropy, UpstreamGradientScalesBothGradients) {
  Tensor h = random_tensor({5, 3}, 11), w = random_tensor({4, 3}, 12);
  Tensor targets = ids({0, 3, -100, 1, 2});
  LossAndGrads plain = run(fused(targets, Reduction::sum, 2), h, w);
  LossAndGrads tripled =
      run([&](const Tensor& hh, const Tensor& ww) { return fused(targets, Reduction::sum, 2)(hh, ww) * 3.0; }, h, w);
  EXPECT_TRUE(all_close(tripled.dh, plain.dh * 3.0, 1e-14, 0));
  EXPECT_TRUE(all_close(tripled.dw, plain.dw * 3.0, 1e-14, 0));
}

// A bf16 weight whose .grad is an fp32 buffer (the trainer's): dW, summed in f32 over the chunks,
// is added there without a rounding to bf16 on the way, and a second backward, of a scaled loss
// as the trainer's micro-steps are, adds its scaled dW to it.
TEST(LmHeadCrossEntropy, Bf16WeightAccumulatesIntoAnFp32Grad) {
  Tensor h = random_tensor({40, 16}, 21, DType::bf16), targets = ids(std::vector<double>(40, 3));
  Tensor w = random_tensor({50, 16}, 22, DType::bf16).set_requires_grad(true);
  optim::GradBuffer buffer({w}, DType::f32);
  auto backward = [&](double scale) {
    (lm_head_cross_entropy(h, w, targets, kIgnoreIndex, Reduction::sum, 16) * scale).backward();
  };
  backward(1.0);
  ASSERT_TRUE(w.grad().is_same(buffer.view(0)));
  const Tensor once = buffer.view(0).clone();
  EXPECT_FALSE(all_close(once, once.to(DType::bf16).to(DType::f32), 0, 0));  // more bits than bf16 holds
  backward(0.5);  // a power of two: once + once / 2 rounds as once * 1.5
  ASSERT_TRUE(w.grad().is_same(buffer.view(0)));
  EXPECT_TRUE(all_close(buffer.view(0), once * 1.5, 0, 0));
  const LossAndGrads ref = run(unfused(targets, Reduction::sum), h.to(DType::f64), w.detach().to(DType::f64));
  EXPECT_LT(relative_error(buffer.view(0), ref.dw * 1.5), 1e-2);  // the logits' gradient itself is bf16
}

// The trainer's case at its peak: dW (as large as the head, f32) is scaled and added into the
// fp32 .grad in one pass; a scaled copy of it would be the largest temporary of the step.
TEST(LmHeadCrossEntropy, BackwardIntoAnFp32GradMakesNoCopyOfDw) {
  const int64_t vocab = 4096, width = 16;
  Tensor h = random_tensor({64, width}, 23, DType::bf16), targets = ids(std::vector<double>(64, 7));
  Tensor w = random_tensor({vocab, width}, 24, DType::bf16).set_requires_grad(true);
  optim::GradBuffer buffer({w}, DType::f32);
  Tensor loss = lm_head_cross_entropy(h, w, targets, kIgnoreIndex, Reduction::sum, 32) * 0.5;
  const int64_t before = memory_stats(Device::cpu()).current_bytes;
  reset_peak_memory(Device::cpu());
  loss.backward();
  ASSERT_TRUE(w.grad().is_same(buffer.view(0)));
  EXPECT_LT(memory_stats(Device::cpu()).peak_bytes - before, vocab * width * 4 / 4);
}

TEST(LmHeadCrossEntropy, WithoutGradientsOnlyTheValueAndEachInputAlone) {
  Tensor h = random_tensor({6, 4}, 13), w = random_tensor({7, 4}, 14);
  Tensor targets = ids({6, 0, 1, -100, 3, 3});
  Tensor loss = lm_head_cross_entropy(h, w, targets, kIgnoreIndex, Reduction::mean, 4);
  EXPECT_FALSE(loss.requires_grad());
  EXPECT_NEAR(loss.item<double>(), cross_entropy(linear(h, w), targets).item<double>(), 1e-13);
  Tensor wg = w.detach().clone().set_requires_grad(true);  // only the weight: dh is not formed
  lm_head_cross_entropy(h, wg, targets, kIgnoreIndex, Reduction::mean, 4).backward();
  EXPECT_TRUE(all_close(wg.grad(), run(unfused(targets, Reduction::mean), h, w).dw, 1e-12, 1e-14));
  Tensor hg = h.detach().clone().set_requires_grad(true);  // only hidden (a frozen head): dW is not formed
  lm_head_cross_entropy(hg, w, targets, kIgnoreIndex, Reduction::mean, 4).backward();
  EXPECT_TRUE(all_close(hg.grad(), run(unfused(targets, Reduction::mean), h, w).dh, 1e-12, 1e-14));
  EXPECT_FALSE(w.grad().defined());
}

TEST(LmHeadCrossEntropy, PeakMemoryIsAChunkOfLogitsNotAllOfThem) {
  const int64_t tokens = 256, vocab = 1024, width = 16, chunk = 32;
  Tensor h = random_tensor({tokens, width}, 15, DType::f32, true);
  Tensor w = random_tensor({vocab, width}, 16, DType::f32, true);
  Tensor targets = ids(std::vector<double>(tokens, 5));
  const int64_t all_logits = tokens * vocab * 4;
  auto forward_peak = [&](const LossFn& f) {
    const int64_t before = memory_stats(Device::cpu()).current_bytes;
    reset_peak_memory(Device::cpu());
    Tensor loss = f(h, w);
    return memory_stats(Device::cpu()).peak_bytes - before;
  };
  EXPECT_GT(forward_peak(unfused(targets, Reduction::mean)), all_logits);  // what the fusion avoids
  // a chunk of logits (128 KiB), dW (64 KiB), dh (16 KiB) and small temporaries
  EXPECT_LT(forward_peak(fused(targets, Reduction::mean, chunk)), all_logits / 3);
}

TEST(LmHeadCrossEntropy, RejectsBadInputs) {
  Tensor h = random_tensor({4, 3}, 17), w = random_tensor({5, 3}, 18);
  Tensor targets = ids({0, 4, 5, 1});
  EXPECT_EQ(error_message<ValueError>([&] { lm_head_cross_entropy(h, w, targets, kIgnoreIndex, Reduction::sum, 2); }),
            "lm_head_cross_entropy: target 5 at position 2 is outside the vocabulary of 5");
  EXPECT_EQ(error_message<ValueError>([&] { lm_head_cross_entropy(h, w, ids({0, -100, 1, 2}), 0); }),
            "lm_head_cross_entropy: target -100 at position 1 is outside the vocabulary of 5");
  EXPECT_EQ(error_message<ShapeError>([&] { lm_head_cross_entropy(h, random_tensor({5, 2}, 19), targets); }),
            "lm_head_cross_entropy: the last dimension of hidden [4, 3] f64 cpu does not match the width of "
            "weight [5, 2] f64 cpu");
  EXPECT_EQ(error_message<ShapeError>([&] { lm_head_cross_entropy(h, w, ids({0, 1, 2})); }),
            "lm_head_cross_entropy: targets [3] do not match the leading shape of hidden [4, 3]");
  EXPECT_THROW(lm_head_cross_entropy(h, random_tensor({15}, 19), targets), ShapeError);
  EXPECT_THROW(lm_head_cross_entropy(h, w.to(DType::f32), targets), DTypeError);
  EXPECT_THROW(lm_head_cross_entropy(h, w, targets.to(DType::f32)), DTypeError);
  EXPECT_THROW(lm_head_cross_entropy(h, w, ids({0, 1, 2, 3}), kIgnoreIndex, Reduction::none), ValueError);
  EXPECT_THROW(lm_head_cross_entropy(h, w, ids({0, 1, 2, 3}), kIgnoreIndex, Reduction::mean, 0), ValueError);
}

}  // namespace
}  // namespace ponder
