// The engine's in-place accumulation (Node::accumulate_into): a weight used several times, an input
// feeding several projections and gradients accumulating into .grad across backward calls get the
// same values as when every use is a distinct leaf summed afterwards — with no separate sums.
#include <gtest/gtest.h>

#include "backend/profiler.h"
#include "ops/ops.h"
#include "optim/grad_buffer.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::random_tensor;

constexpr double kTight = 1e-12;

// A fresh leaf with t's values.
Tensor leaf_copy(const Tensor& t) { return t.detach().clone().set_requires_grad(true); }

// y = W (W (W x)) through three linears sharing W [n, n].
Tensor three_uses(const Tensor& x, const Tensor& w1, const Tensor& w2, const Tensor& w3) {
  return linear(linear(linear(x, w1), w2), w3);
}

// dL/dW for L = <g, three_uses(x, W, W, W)>, summed over three distinct copies of W.
Tensor reference_weight_grad(const Tensor& x, const Tensor& w, const Tensor& g) {
  Tensor w1 = leaf_copy(w), w2 = leaf_copy(w), w3 = leaf_copy(w);
  three_uses(x.detach(), w1, w2, w3).backward(g);
  return w1.grad() + w2.grad() + w3.grad();
}

// The kernels of dispatches named `kernel` while `fn` runs.
int64_t calls_of(const char* kernel, const std::function<void()>& fn) {
  backend::OpProfiler profiler(Device::cpu());
  fn();
  int64_t calls = 0;
  for (const backend::KernelTime& k : profiler.collect()) {
    if (k.kernel == kernel) calls += k.calls;
  }
  return calls;
}

TEST(GradAccumulation, WeightUsedThreeTimes) {
  Tensor x = random_tensor({5, 4}, 1), w = random_tensor({4, 4}, 2, DType::f64, true);
  Tensor g = random_tensor({5, 4}, 3);
  three_uses(x, w, w, w).backward(g);
  EXPECT_TRUE(all_close(w.grad(), reference_weight_grad(x, w, g), kTight, kTight));
}

TEST(GradAccumulation, InputFeedingThreeLinears) {
  Tensor x = random_tensor({2, 3, 4}, 1, DType::f64, true);
  TensorList ws = {random_tensor({5, 4}, 2), random_tensor({6, 4}, 3), random_tensor({5, 4}, 4)};
  TensorList gs = {random_tensor({2, 3, 5}, 5), random_tensor({2, 3, 6}, 6), random_tensor({2, 3, 5}, 7)};
  Tensor h = x * 2.0;  // a non-leaf input: its gradient is summed in the engine's buffer
  autograd::backward({linear(h, ws[0]), linear(h, ws[1]), linear(h, ws[2])}, gs);
  Tensor expected = zeros({2, 3, 4}, {.dtype = DType::f64});
  for (int i = 0; i < 3; ++i) {
    Tensor xi = leaf_copy(x);
    linear(xi * 2.0, ws[i]).backward(gs[i]);
    expected = expected + xi.grad();
  }
  EXPECT_TRUE(all_close(x.grad(), expected, kTight, kTight));
}

// Two backward calls: the second sums straight into the existing .grad, which stays the same
// tensor (a gradient buffer's view keeps pointing into the buffer).
TEST(GradAccumulation, SecondBackwardAccumulatesIntoTheGradBuffer) {
  Tensor x = random_tensor({5, 4}, 1), w = random_tensor({4, 4}, 2, DType::f64, true);
  optim::GradBuffer buffer({w}, DType::f64);
  Tensor g1 = random_tensor({5, 4}, 3), g2 = random_tensor({5, 4}, 4);
  three_uses(x, w, w, w).backward(g1);
  three_uses(x, w, w, w).backward(g2);
  EXPECT_TRUE(w.grad().is_same(buffer.view(0)));
  Tensor expected = reference_weight_grad(x, w, g1) + reference_weight_grad(x, w, g2);
  EXPECT_TRUE(all_close(buffer.view(0), expected, kTight, kTight));
}

// The mechanism is in use: with .grad present and every gradient from a linear, backward
// launches no separate sum (engine `add` = binary, AccumulateGrad's add_into).
TEST(GradAccumulation, SharedUsesCostNoSeparateSums) {
  Tensor x = random_tensor({5, 4}, 1, DType::f64, true), w = random_tensor({4, 4}, 2, DType::f64, true);
  Tensor wq = random_tensor({3, 4}, 3, DType::f64, true), wk = random_tensor({3, 4}, 4, DType::f64, true);
  optim::GradBuffer buffer({x, w, wq, wk}, DType::f64);
  const TensorList grads = {random_tensor({5, 3}, 5), random_tensor({5, 3}, 6), random_tensor({5, 4}, 7)};
  auto step = [&] {
    Tensor h = three_uses(x, w, w, w);
    autograd::backward({linear(h, wq), linear(h, wk), linear(h, w)}, grads);
  };
  EXPECT_EQ(calls_of("binary", step) + calls_of("add_into", step), 0);
}

// Mixed precision: a bf16 weight whose .grad is fp32 takes its products summed in fp32.
TEST(GradAccumulation, Bf16WeightSumsIntoAnFp32Grad) {
  Tensor x = random_tensor({64, 32}, 1, DType::bf16), w = random_tensor({32, 32}, 2, DType::bf16, true);
  optim::GradBuffer buffer({w}, DType::f32);
  Tensor g = random_tensor({64, 32}, 3, DType::bf16);
  three_uses(x, w, w, w).backward(g);
  three_uses(x, w, w, w).backward(g);
  ASSERT_EQ(w.grad().dtype(), DType::f32);
  EXPECT_TRUE(w.grad().is_same(buffer.view(0)));
  Tensor expected = reference_weight_grad(x.to(DType::f64), w.to(DType::f64), g.to(DType::f64)) * 2.0;
  EXPECT_LT(testing::relative_error(w.grad(), expected), 1e-2);  // measured 2.4e-3
}

// A GradHook on the leaf sees each backward's gradient alone (not the running .grad), once.
TEST(GradAccumulation, LeafHookSeesEachBackwardsGradientAlone) {
  Tensor x = random_tensor({5, 4}, 1), w = random_tensor({4, 4}, 2, DType::f64, true);
  TensorList seen;
  w.register_hook([&](const Tensor& grad) {
    seen.push_back(grad.clone());
    return Tensor();
  });
  Tensor g1 = random_tensor({5, 4}, 3), g2 = random_tensor({5, 4}, 4);
  three_uses(x, w, w, w).backward(g1);
  three_uses(x, w, w, w).backward(g2);
  ASSERT_EQ(seen.size(), 2u);
  Tensor r1 = reference_weight_grad(x, w, g1), r2 = reference_weight_grad(x, w, g2);
  EXPECT_TRUE(all_close(seen[0], r1, kTight, kTight));
  EXPECT_TRUE(all_close(seen[1], r2, kTight, kTight));
  EXPECT_TRUE(all_close(w.grad(), r1 + r2, kTight, kTight));
}

// Post-accumulate hooks (data-parallel bucketing) fire once per backward and see the full sum.
TEST(GradAccumulation, PostAccumulateHooksFireOncePerBackward) {
  Tensor x = random_tensor({5, 4}, 1), w = random_tensor({4, 4}, 2, DType::f64, true);
  optim::GradBuffer buffer({w}, DType::f64);
  TensorList at_hook;
  w.register_post_accumulate_hook([&](Tensor& leaf) { at_hook.push_back(leaf.grad().clone()); });
  Tensor g1 = random_tensor({5, 4}, 3), g2 = random_tensor({5, 4}, 4);
  three_uses(x, w, w, w).backward(g1);
  three_uses(x, w, w, w).backward(g2);
  ASSERT_EQ(at_hook.size(), 2u);
  Tensor r1 = reference_weight_grad(x, w, g1);
  EXPECT_TRUE(all_close(at_hook[0], r1, kTight, kTight));
  EXPECT_TRUE(all_close(at_hook[1], r1 + reference_weight_grad(x, w, g2), kTight, kTight));
}

// grad() returns the sum over the uses and leaves .grad alone; a retained graph accumulates twice.
TEST(GradAccumulation, GradAndRetainedGraphsAreUnaffected) {
  Tensor x = random_tensor({5, 4}, 1), w = random_tensor({4, 4}, 2, DType::f64, true);
  optim::GradBuffer buffer({w}, DType::f64);
  Tensor g = random_tensor({5, 4}, 3);
  const Tensor reference = reference_weight_grad(x, w, g);
  Tensor y = three_uses(x, w, w, w);
  TensorList captured = autograd::grad({y}, {w}, {g}, /*retain_graph=*/true);
  EXPECT_TRUE(all_close(captured[0], reference, kTight, kTight));
  EXPECT_TRUE(all_close(w.grad(), zeros({4, 4}, {.dtype = DType::f64}), 0, 0));
  y.backward(g, /*retain_graph=*/true);
  y.backward(g);
  EXPECT_TRUE(all_close(w.grad(), reference * 2.0, kTight, kTight));
}

// x W^T with W = x: both inputs land in one slot, which is never offered (with a gradient already
// buffered there, one use would take the buffer and the other .grad, and one sum would be lost).
TEST(GradAccumulation, BothOperandsOfOneNodeSharingASlot) {
  Tensor x = random_tensor({4, 4}, 1, DType::f64, true);
  optim::GradBuffer buffer({x}, DType::f64);
  Tensor g = random_tensor({4, 4}, 2), g3 = random_tensor({4, 4}, 3);
  autograd::backward({linear(x, x), x * 3.0}, {g, g3});  // x * 3 runs first: a fresh buffered gradient
  Tensor a = leaf_copy(x), b = leaf_copy(x);
  linear(a, b).backward(g);
  EXPECT_TRUE(all_close(x.grad(), a.grad() + b.grad() + g3 * 3.0, kTight, kTight));
}

}  // namespace
}  // namespace ponder
