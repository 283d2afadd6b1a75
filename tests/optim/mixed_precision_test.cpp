// bf16 parameters with fp32 gradient buffers and fp32 master weights.
#include <gtest/gtest.h>

#include "optim/optim.h"
#include "support/test_util.h"

namespace ponder::optim {
namespace {

using testing::all_close;
using testing::random_tensor;

Tensor master_of(const Optimizer& opt, const std::string& name) {
  for (auto& [n, t] : opt.state())
    if (n == name) return t;
  ADD_FAILURE() << "no state entry " << name;
  return {};
}

TEST(GradBuffer, GivesEveryParameterAnFp32ViewAndAccumulatesMicroBatches) {
  Tensor w = random_tensor({5, 3}, 1, DType::bf16, true), b = random_tensor({3}, 2, DType::bf16, true);
  Tensor frozen = random_tensor({2}, 3, DType::bf16);
  TensorList xs = {random_tensor({4, 5}, 4, DType::bf16), random_tensor({4, 5}, 5, DType::bf16)};
  auto loss = [&](const Tensor& x) { return pow(matmul(x, w) + b, 2.0).sum(); };

  // The bf16 gradients of each micro-batch on its own, then their fp32 sum.
  TensorList expected(2);
  for (const Tensor& x : xs) {
    loss(x).backward();
    for (int k = 0; k < 2; ++k) {
      const Tensor& g = (k == 0 ? w : b).grad();
      EXPECT_EQ(g.dtype(), DType::bf16);
      expected[k] = expected[k].defined() ? expected[k] + g.to(DType::f32) : g.to(DType::f32);
    }
    w.set_grad({});
    b.set_grad({});
  }

  GradBuffer buffer({w, frozen, b});
  ASSERT_EQ(buffer.params().size(), 2u);  // the frozen tensor gets no gradient
  EXPECT_EQ(buffer.flat().numel(), 16 + 16);
  for (const Tensor& x : xs) loss(x).backward();
  for (int k = 0; k < 2; ++k) {
    const Tensor& g = (k == 0 ? w : b).grad();
    EXPECT_EQ(g.dtype(), DType::f32);
    EXPECT_TRUE(g.is_same(buffer.view(k)));
    EXPECT_EQ(g.storage(), buffer.flat().storage());
    EXPECT_TRUE(all_close(g, expected[k], 0, 0)) << k;  // each bf16 contribution added in fp32
  }
  EXPECT_TRUE(all_close(buffer.flat().slice(0, 16, 16 + 3), expected[1], 0, 0));

  w.set_grad({});  // as Module::zero_grad does
  buffer.zero();
  EXPECT_TRUE(w.grad().is_same(buffer.view(0)));
  EXPECT_TRUE(all_close(buffer.flat(), zeros({32}), 0, 0));
}

TEST(GradBuffer, KeepsAGradientThatAlreadyExists) {
  Tensor p = random_tensor({3}, 1, DType::f32, true);
  Tensor g = random_tensor({3}, 2, DType::f32);
  p.set_grad(g);
  GradBuffer buffer({p});
  EXPECT_FALSE(p.grad().is_same(g));
  EXPECT_TRUE(all_close(p.grad(), g, 0, 0));
}

// A layout from the caller places each view (gaps stay zero); one whose views overlap is refused.
TEST(GradBuffer, PutsViewsWhereTheLayoutSays) {
  Tensor a = random_tensor({3}, 1, DType::f32, true), b = random_tensor({20}, 2, DType::f32, true);
  GradBuffer buffer(FlatLayout{.params = {a, b}, .offsets = {32, 64}, .numel = 96});
  EXPECT_EQ(buffer.flat().numel(), 96);
  EXPECT_EQ(a.grad().offset(), 32);
  EXPECT_EQ(b.grad().offset(), 64);
  EXPECT_NE(testing::error_message<Error>([&] { GradBuffer(FlatLayout{.params = {a, b}, .offsets = {0, 0}, .numel = 32}); })
                .find("overlapping"),
            std::string::npos);
  EXPECT_NE(testing::error_message<Error>([&] { GradBuffer(FlatLayout{.params = {a, b}, .offsets = {0, 16}, .numel = 32}); })
                .find("past the end"),
            std::string::npos);
}

// The master of a bf16 parameter follows exactly the trajectory of an f32 parameter that starts at
// the same values, and the bf16 parameter is that master rounded after every step.
template <class Opt, class Options>
void expect_master_tracks_f32(Options options) {
  Tensor low = random_tensor({6, 4}, 1, DType::bf16, true);
  Tensor full = low.to(DType::f32).detach().set_requires_grad(true);
  GradBuffer buffer({low});
  Opt mixed({{"decay", {low}, 0.1}}, options);
  Opt reference({{"decay", {full}, 0.1}}, options);
  for (int s = 0; s < 5; ++s) {
    Tensor g = random_tensor({6, 4}, 10 + s, DType::f32);
    copy_(buffer.view(0), g);
    full.set_grad(g);
    mixed.step();
    reference.step();
    Tensor master = master_of(mixed, "decay.0.master");
    EXPECT_EQ(master.dtype(), DType::f32);
    EXPECT_TRUE(all_close(master, full, 0, 0)) << "step " << s;
    EXPECT_EQ(low.dtype(), DType::bf16);
    EXPECT_TRUE(all_close(low, master.to(DType::bf16), 0, 0)) << "step " << s;
    EXPECT_FALSE(all_close(low.to(DType::f32), master, 0, 0)) << "the bf16 copy is rounded";
    mixed.zero_grad();
  }
}

TEST(MixedPrecision, Bf16ParametersFollowTheirFp32Master) {
  expect_master_tracks_f32<AdamW>(AdamWOptions{.lr = 1e-3});
  expect_master_tracks_f32<AdamATan2>(AdamAtan2Options{.lr = 1e-3});
  expect_master_tracks_f32<Sgd>(SgdOptions{.lr = 1e-3, .momentum = 0.9});
}

TEST(MixedPrecision, SmallUpdatesAccumulateInTheMaster) {
  // 1e-5 relative steps vanish when rounded into bf16 one at a time, but not in the master.
  Tensor p = ones({4}, {.dtype = DType::bf16, .requires_grad = true});
  Sgd opt({{"p", {p}}}, {.lr = 1e-5});
  for (int s = 0; s < 1000; ++s) {
    p.set_grad(ones({4}));
    opt.step();
  }
  EXPECT_NEAR(master_of(opt, "p.0.master").to_vector<double>()[0], 1 - 1e-2, 1e-4);  // fp32 rounding of 1000 steps
  EXPECT_NEAR(p.to_vector<double>()[0], 0.99, 4e-3);
}

}  // namespace
}  // namespace ponder::optim
