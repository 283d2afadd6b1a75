#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;

constexpr Reduction kReductions[] = {Reduction::mean, Reduction::sum, Reduction::none};

Tensor targets_of(const std::vector<double>& ids, const Shape& shape, DType dtype = DType::i64) {
  return tensor(ids, shape, {.dtype = dtype});
}

// Per-position losses of f64 logits [..., V], straight from the definition.
Tensor naive_losses(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  const int64_t vocab = logits.shape().back();
  std::vector<double> x = logits.to_vector<double>();
  std::vector<int64_t> t = targets.to_vector<int64_t>();
  std::vector<double> out(t.size());
  for (size_t r = 0; r < t.size(); ++r) {
    if (t[r] == ignore_index) continue;
    double total = 0;
    for (int64_t v = 0; v < vocab; ++v) total += std::exp(x[r * vocab + v]);
    out[r] = std::log(total) - x[r * vocab + t[r]];
  }
  return tensor(out, targets.shape(), {.dtype = DType::f64});
}

TEST(CrossEntropy, MatchesPyTorchValues) {
  Tensor logits = tensor({0.5, -1, 2, 0, 1, 1, 1, 1, 3, 0, -2, 1}, {3, 4},
                         {.dtype = DType::f64, .requires_grad = true});
  Tensor targets = targets_of({2, -100, 0}, {3});
  EXPECT_TRUE(all_close(cross_entropy(logits, targets, kIgnoreIndex, Reduction::none),
                        tensor({0.34234958238982199, 0, 0.17551536261671449}, {3}, {.dtype = DType::f64}),
                        1e-14, 0));
  EXPECT_NEAR(cross_entropy(logits, targets, kIgnoreIndex, Reduction::sum).item<double>(),
              0.51786494500653646, 1e-14);
  Tensor loss = cross_entropy(logits, targets);
  EXPECT_EQ(loss.shape(), Shape({}));
  EXPECT_NEAR(loss.item<double>(), 0.25893247250326823, 1e-14);
  loss.backward();
  Tensor expected_grad =
      tensor({0.07922235475748987, 0.01767689670437443, -0.14495003855691285, 0.04805078709504861,  //
              0, 0, 0, 0,                                                                              //
              -0.08048774626873401, 0.02088628525767523, 0.00282665133110817, 0.05677480967995063},
             {3, 4}, {.dtype = DType::f64});
  EXPECT_TRUE(all_close(logits.grad(), expected_grad, 1e-12, 1e-16));
}

TEST(CrossEntropy, MatchesNaiveLoop) {
  Tensor logits = random_tensor({2, 3, 7}, 1);
  Tensor targets = targets_of({6, 0, -100, 3, -100, 1}, {2, 3});
  Tensor expected = naive_losses(logits, targets, kIgnoreIndex);
  EXPECT_TRUE(all_close(cross_entropy(logits, targets, kIgnoreIndex, Reduction::none), expected, 1e-13, 0));
  EXPECT_NEAR(cross_entropy(logits, targets, kIgnoreIndex, Reduction::sum).item<double>(),
              expected.sum().item<double>(), 1e-13);
  EXPECT_NEAR(cross_entropy(logits, targets).item<double>(), expected.sum().item<double>() / 4, 1e-13);
  // Another ignore index: class 0 is then skipped, and -100 is an error.
  Tensor with_zero_ignored = targets_of({6, 0, 2, 3, 5, 1}, {2, 3});
  EXPECT_TRUE(all_close(cross_entropy(logits, with_zero_ignored, 0, Reduction::none),
                        naive_losses(logits, with_zero_ignored, 0), 1e-13, 0));
  EXPECT_THROW(cross_entropy(logits, targets, 0), ValueError);
}

TEST(CrossEntropy, LargeInputsSplitAcrossThreadsMatchTheNaiveLoop) {
  Tensor logits = random_tensor({64, 1024}, 8);  // above the kernels' threshold for threading
  std::vector<double> ids(64);
  for (size_t r = 0; r < ids.size(); ++r) ids[r] = r % 5 == 0 ? kIgnoreIndex : double(r * 37 % 1024);
  Tensor targets = targets_of(ids, {64});
  EXPECT_TRUE(all_close(cross_entropy(logits, targets, kIgnoreIndex, Reduction::none),
                        naive_losses(logits, targets, kIgnoreIndex), 1e-12, 0));
}

TEST(CrossEntropy, GradcheckEveryReductionWithIgnoredTargets) {
  Tensor logits = random_tensor({4, 5}, 2, DType::f64, true);
  Tensor logits_3d = random_tensor({2, 3, 5}, 3, DType::f64, true);
  Tensor logits_t = random_tensor({5, 4}, 4, DType::f64, true);  // used transposed: not contiguous
  // The default seed weights a 0-d output by 3e-4, which would shrink any gradient error below atol.
  const testing::GradcheckOptions options{.seed = 2};
  for (DType index : {DType::i64, DType::i32}) {
    Tensor targets = targets_of({1, -100, 4, 0}, {4}, index);
    Tensor targets_3d = targets_of({0, 4, -100, -100, 2, 2}, {2, 3}, index);
    for (Reduction r : kReductions) {
      auto loss_of = [r](const Tensor& ids, bool transposed) {
        return [=](const TensorList& in) {
          return cross_entropy(transposed ? in[0].t() : in[0], ids, kIgnoreIndex, r);
        };
      };
      EXPECT_TRUE(gradcheck(loss_of(targets, false), {logits}, options));
      EXPECT_TRUE(gradcheck(loss_of(targets_3d, false), {logits_3d}, options));
      EXPECT_TRUE(gradcheck(loss_of(targets, true), {logits_t}, options));
    }
  }
}

TEST(CrossEntropy, LargeLogitsStayFinite) {
  Tensor logits = tensor({1000, 1001, 1002, -1000, 0, 1000}, {2, 3}, {.requires_grad = true});
  Tensor targets = targets_of({0, 1}, {2});
  Tensor losses = cross_entropy(logits, targets, kIgnoreIndex, Reduction::none);
  EXPECT_TRUE(all_close(losses, tensor({2.4076059644443806, 1000}, {2}), 1e-6, 0));
  cross_entropy(logits, targets).backward();
  for (double g : logits.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(g));
  EXPECT_NEAR(logits.grad().to_vector<double>()[0], (0.09003057317038045 - 1) / 2, 1e-6);
}

TEST(CrossEntropy, AllIgnoredMeanIsZeroWithZeroGradient) {
  for (DType dtype : {DType::f64, DType::f32, DType::bf16}) {
    Tensor logits = random_tensor({3, 4}, 5, dtype, true);
    Tensor loss = cross_entropy(logits, targets_of({-100, -100, -100}, {3}));
    EXPECT_EQ(loss.item<double>(), 0.0) << dtype_name(dtype);
    loss.backward();
    for (double g : logits.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
  }
  Tensor empty_batch = zeros({0, 4}, {.requires_grad = true});
  Tensor loss = cross_entropy(empty_batch, targets_of({}, {0}));
  EXPECT_EQ(loss.item<float>(), 0.0f);
  loss.backward();
  EXPECT_EQ(empty_batch.grad().shape(), Shape({0, 4}));
}

TEST(CrossEntropy, F32AndBf16MatchF64) {
  Tensor logits = random_tensor({5, 3, 50}, 6);
  Tensor targets = targets_of({0, 49, 7, -100, 3, 3, 12, 0, -100, 8, 1, 2, 40, 41, 42}, {5, 3});
  for (auto [dtype, tolerance] : {std::pair{DType::f32, 1e-6}, std::pair{DType::bf16, 1e-2}}) {
    for (Reduction r : kReductions) {
      Tensor xd = logits.to(dtype).detach().set_requires_grad(true);
      Tensor xr = xd.detach().to(DType::f64).set_requires_grad(true);  // the same rounded inputs
      Tensor ld = cross_entropy(xd, targets, kIgnoreIndex, r);
      Tensor lr = cross_entropy(xr, targets, kIgnoreIndex, r);
      EXPECT_EQ(ld.dtype(), DType::f32);  // the loss is f32 for bf16 logits too
      EXPECT_LT(testing::relative_error(ld, lr), 1e-6) << dtype_name(dtype);
      Tensor g = random_tensor(lr.shape(), 7);
      (ld * g.to(DType::f32)).sum().backward();
      (lr * g).sum().backward();
      EXPECT_EQ(xd.grad().dtype(), dtype);
      EXPECT_LT(testing::relative_error(xd.grad(), xr.grad()), tolerance) << dtype_name(dtype);
    }
  }
}

TEST(CrossEntropy, TargetOutsideTheVocabularyNamesIdPositionAndSize) {
  Tensor logits = zeros({4, 65536});
  try {
    cross_entropy(logits, targets_of({1, 2, 65535, 70000}, {4}));
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "cross_entropy: target 70000 at position 3 is outside the vocabulary of 65536");
  }
  try {
    cross_entropy(zeros({2, 2, 5}), targets_of({0, -1, 9, 0}, {2, 2}, DType::i32));
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "cross_entropy: target -1 at position 1 is outside the vocabulary of 5");
  }
}

TEST(CrossEntropy, BadShapesAndDtypesNameTheOperands) {
  try {
    cross_entropy(zeros({2, 3, 10}), targets_of({0, 0, 0, 0}, {2, 2}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(),
                 "cross_entropy: targets [2, 2] do not match the leading shape of logits [2, 3, 10]");
  }
  try {
    cross_entropy(zeros({}), targets_of({0}, {}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "cross_entropy: logits need a last (vocabulary) dimension, got shape []");
  }
  try {
    cross_entropy(zeros({2, 3}), zeros({2}));
    FAIL();
  } catch (const DTypeError& e) {
    EXPECT_STREQ(e.what(), "cross_entropy: targets must be i64 or i32, got [2] f32 cpu");
  }
  try {
    cross_entropy(arange(0, 6).reshape({2, 3}), targets_of({0, 1}, {2}));
    FAIL();
  } catch (const DTypeError& e) {
    EXPECT_STREQ(e.what(), "cross_entropy: expected a floating tensor, got [2, 3] i64 cpu");
  }
}

}  // namespace
}  // namespace ponder
