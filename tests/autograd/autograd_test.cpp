#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"
#include "tensor/allocator.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::random_tensor;

TEST(Autograd, ChainRuleThroughSeveralOps) {
  Tensor x = tensor({1.0, 2.0, 3.0}, {3}, {.dtype = DType::f64, .requires_grad = true});
  Tensor y = (x * x * 3.0 + exp(x)).sum();  // dy/dx = 6x + e^x
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), tensor({6 + std::exp(1.0), 12 + std::exp(2.0), 18 + std::exp(3.0)}, {3},
                                         {.dtype = DType::f64})));
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = ones({2}, {.requires_grad = true});
  (x * 2.0).sum().backward();
  (x * 3.0).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{5, 5}));
}

TEST(Autograd, SharedInputsSumTheirGradients) {
  Tensor x = tensor({2.0}, {1}, {.dtype = DType::f64, .requires_grad = true});
  Tensor a = x * x, b = x * 5.0;
  (a + b + a).sum().backward();  // d/dx (2x^2 + 5x) = 4x + 5
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 13.0);
}

TEST(Autograd, SecondBackwardWithoutRetainGraphIsAnError) {
  Tensor x = ones({3}, {.requires_grad = true});
  Tensor y = (exp(x) * 2.0).sum();
  y.backward();
  EXPECT_THROW(y.backward(), AutogradError);
}

TEST(Autograd, RetainGraphAllowsRepeatedBackward) {
  Tensor x = ones({3}, {.dtype = DType::f64, .requires_grad = true});
  Tensor y = exp(x).sum();
  y.backward({}, /*retain_graph=*/true);
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), full({3}, 2 * std::exp(1.0), {.dtype = DType::f64})));
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = ones({3}, {.requires_grad = true});
  Tensor y = x * 2.0;
  EXPECT_THROW(y.backward(), AutogradError);
  y.backward(tensor({1, 2, 3}, {3}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 4, 6}));
}

TEST(Autograd, GradModeScopesNestAndRestore) {
  Tensor x = ones({2}, {.requires_grad = true});
  EXPECT_TRUE(autograd::is_grad_enabled());
  {
    NoGrad outer;
    EXPECT_FALSE((x * 2.0).requires_grad());
    {
      EnableGrad inner;
      EXPECT_TRUE((x * 2.0).requires_grad());
      {
        GradScope off(false);
        EXPECT_FALSE((x * 2.0).requires_grad());
      }
      EXPECT_TRUE(autograd::is_grad_enabled());
    }
    EXPECT_FALSE(autograd::is_grad_enabled());
  }
  EXPECT_TRUE(autograd::is_grad_enabled());
}

// The recurrent models record only some calls: z <- f(z) repeated, only the last k with grad.
TEST(Autograd, TruncatedBackpropThroughScopes) {
  Tensor w = tensor({0.5}, {1}, {.dtype = DType::f64, .requires_grad = true});
  Tensor z = tensor({1.0}, {1}, {.dtype = DType::f64});
  const int steps = 5, with_grad = 2;
  for (int i = 0; i < steps; ++i) {
    GradScope g(i >= steps - with_grad);
    z = z * w;  // z_k = w^k, but only the last two multiplications are on the tape
  }
  z.sum().backward();
  // Treating z_3 = w^3 as a constant: d(z_3 * w * w)/dw = 2 * z_3 * w = 2 * w^4.
  EXPECT_DOUBLE_EQ(w.grad().item<double>(), 2 * std::pow(0.5, 4));
}

TEST(Autograd, DetachCutsTheGraph) {
  Tensor x = ones({2}, {.requires_grad = true});
  Tensor h = x * 2.0;
  Tensor y = h.detach();
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.storage(), h.storage());
  Tensor z = (x * y).sum();
  z.backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 2}));
}

TEST(Autograd, InPlaceChangeOfASavedTensorIsReported) {
  Tensor x = ones({3}, {.requires_grad = true});
  Tensor y = x * 2.0;
  Tensor z = (y * y).sum();  // saves y
  y.data<float>()[0] = 7;
  y.bump_version();  // what every in-place kernel does
  EXPECT_THROW(z.backward(), AutogradError);
}

TEST(Autograd, SavedActivationsAreFreedAsBackwardRuns) {
  Tensor x = random_tensor({256, 256}, 1, DType::f32, true);
  Tensor loss;
  int64_t with_graph = 0;
  {
    Tensor y = exp(x);         // saved by the next exp
    loss = exp(y).sum();
    with_graph = memory_stats(Device::cpu()).current_bytes;
  }
  loss.backward();
  x.set_grad({});
  // y (256 KiB) was held only by the graph and is gone although `loss` still holds the graph.
  EXPECT_LE(memory_stats(Device::cpu()).current_bytes, with_graph - 256 * 256 * 4);
}

TEST(Autograd, HooksSeeAndReplaceGradients) {
  Tensor x = ones({2}, {.requires_grad = true});
  Tensor y = x * 3.0;
  std::vector<float> seen;
  y.register_hook([&](const Tensor& g) {
    seen = g.to_vector<float>();
    return g * 10.0;
  });
  int post_calls = 0;
  x.register_post_accumulate_hook([&](Tensor& leaf) {
    ++post_calls;
    EXPECT_EQ(leaf.grad().to_vector<float>(), (std::vector<float>{30, 30}));
  });
  y.sum().backward();
  EXPECT_EQ(seen, (std::vector<float>{1, 1}));
  EXPECT_EQ(post_calls, 1);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{30, 30}));
}

TEST(Autograd, LeafHookRunsBeforeAccumulation) {
  Tensor x = ones({2}, {.requires_grad = true});
  x.register_hook([](const Tensor& g) { return g * 0.5; });
  (x * 4.0).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 2}));
}

TEST(Autograd, GradReturnsWithoutAccumulating) {
  Tensor x = tensor({1, 2}, {2}, {.dtype = DType::f64, .requires_grad = true});
  Tensor w = tensor({3, 4}, {2}, {.dtype = DType::f64, .requires_grad = true});
  Tensor y = (x * w).sum();
  TensorList g = autograd::grad({y}, {x});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{3, 4}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, GradWithRespectToAnIntermediate) {
  Tensor x = tensor({1, 2}, {2}, {.dtype = DType::f64, .requires_grad = true});
  Tensor h = x * 2.0;
  Tensor y = (h * h).sum();
  TensorList g = autograd::grad({y}, {h});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{4, 8}));
}

TEST(Autograd, UnusedInputIsAnErrorUnlessAllowed) {
  Tensor x = ones({2}, {.requires_grad = true}), u = ones({2}, {.requires_grad = true});
  Tensor y = (x * 2.0).sum();
  EXPECT_THROW(autograd::grad({y}, {u}, {}, true), AutogradError);
  TensorList g = autograd::grad({y}, {x, u}, {}, false, /*allow_unused=*/true);
  EXPECT_TRUE(g[0].defined());
  EXPECT_FALSE(g[1].defined());
}

// Counts how often its backward runs, to see which parts of the graph execute.
struct CountingIdentity : autograd::Function {
  explicit CountingIdentity(int* calls) : calls(calls) {}
  const char* name() const override { return "CountingIdentity"; }
  TensorList forward(const TensorList& in) override { return {in[0].clone()}; }
  TensorList backward(const TensorList& g) override {
    ++*calls;
    return {g[0]};
  }
  int* calls;
};

TEST(Autograd, GradRunsOnlyThePartOfTheGraphItNeeds) {
  int side_calls = 0;
  Tensor x = ones({3}, {.requires_grad = true});
  Tensor c = ones({3}, {.requires_grad = true});
  Tensor side = autograd::call(std::make_shared<CountingIdentity>(&side_calls), {c})[0];
  Tensor y = (x * side).sum();
  autograd::grad({y}, {x});
  EXPECT_EQ(side_calls, 0);
  y = (x * autograd::call(std::make_shared<CountingIdentity>(&side_calls), {c})[0]).sum();
  y.backward();
  EXPECT_EQ(side_calls, 1);
}

// Repeated vector-Jacobian products through one retained graph are linear in the upstream
// gradient and leave the graph usable.
TEST(Autograd, RepeatedVjpThroughARetainedGraph) {
  Tensor y0 = random_tensor({4}, 1, DType::f64, true);
  Tensor W = random_tensor({4, 4}, 2, DType::f64);
  Tensor f = tanh(matmul(W, y0));
  Tensor u1 = random_tensor({4}, 3), u2 = random_tensor({4}, 4);
  Tensor a = autograd::grad({f}, {y0}, {u1}, true)[0];
  Tensor b = autograd::grad({f}, {y0}, {u2}, true)[0];
  Tensor ab = autograd::grad({f}, {y0}, {u1 + u2 * 2.0}, true)[0];
  EXPECT_TRUE(all_close(ab, a + b * 2.0, 1e-12, 1e-12));
  // J^T u = W^T (u * (1 - f^2))
  Tensor expected = matmul(W.t(), u1 * (1.0 - f.detach() * f.detach()));
  EXPECT_TRUE(all_close(a, expected, 1e-12, 1e-12));
}

struct Square : autograd::Function {
  const char* name() const override { return "Square"; }
  TensorList forward(const TensorList& in) override {
    save_for_backward({in[0]});
    return {in[0] * in[0]};
  }
  TensorList backward(const TensorList& g) override { return {g[0] * saved(0) * 2.0}; }
};

TEST(Autograd, CustomFunctionForwardAndBackward) {
  Tensor x = tensor({1, -2, 3}, {3}, {.dtype = DType::f64, .requires_grad = true});
  Tensor y = autograd::call(std::make_shared<Square>(), {x})[0];
  EXPECT_TRUE(y.requires_grad());
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{1, 4, 9}));
  EXPECT_TRUE(testing::gradcheck([](const TensorList& in) { return autograd::call(std::make_shared<Square>(), in)[0]; }, {x}));
}

TEST(Autograd, AFunctionObjectIsCalledOnce) {
  auto fn = std::make_shared<Square>();
  Tensor x = ones({2}, {.requires_grad = true});
  autograd::call(fn, {x});
  EXPECT_THROW(autograd::call(fn, {x}), AutogradError);
}

struct WrongShapeGradient : autograd::Function {
  const char* name() const override { return "WrongShapeGradient"; }
  TensorList forward(const TensorList& in) override { return {in[0].clone()}; }
  TensorList backward(const TensorList&) override { return {ones({5})}; }
};

TEST(Autograd, AGradientOfTheWrongShapeIsReportedWithTheNodeName) {
  Tensor x = ones({3}, {.requires_grad = true});
  Tensor y = autograd::call(std::make_shared<WrongShapeGradient>(), {x})[0];
  try {
    y.sum().backward();
    FAIL() << "expected an AutogradError";
  } catch (const AutogradError& e) {
    EXPECT_NE(std::string(e.what()).find("WrongShapeGradient"), std::string::npos) << e.what();
  }
}

// A backward that itself runs autograd on a graph it kept (the implicit-gradient pattern).
struct DoubleThroughKeptGraph : autograd::Function {
  const char* name() const override { return "DoubleThroughKeptGraph"; }
  TensorList forward(const TensorList& in) override {
    EnableGrad g;
    probe = in[0].detach().set_requires_grad(true);
    kept = probe * 2.0;
    return {kept.detach()};
  }
  TensorList backward(const TensorList& g) override {
    return {autograd::grad({kept}, {probe}, {g[0]}, /*retain_graph=*/true)[0]};
  }
  Tensor probe, kept;
};

TEST(Autograd, BackwardMayRunAutogradReentrantly) {
  Tensor x = ones({3}, {.requires_grad = true});
  Tensor y = autograd::call(std::make_shared<DoubleThroughKeptGraph>(), {x})[0];
  (y * 3.0).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{6, 6, 6}));
}

TEST(Autograd, CheckpointGivesTheSameGradients) {
  Tensor x = random_tensor({4, 8}, 1, DType::f64, true);
  Tensor w = random_tensor({8, 8}, 2, DType::f64, true);
  auto region = [&](const TensorList& in) -> TensorList { return {tanh(matmul(in[0], w)) * in[0]}; };
  region({x})[0].sum().backward();
  Tensor gx = x.grad(), gw = w.grad();
  x.set_grad({});
  w.set_grad({});
  Tensor y = autograd::checkpoint(region, {x})[0];
  EXPECT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(all_close(x.grad(), gx, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(w.grad(), gw, 1e-12, 1e-12));
}

// grad() through a checkpoint forms its inputs' gradients and, like any grad() call, writes no .grad.
TEST(Autograd, GradThroughACheckpointLeavesParameterGradsAlone) {
  Tensor x = random_tensor({4, 8}, 1, DType::f64, true);
  Tensor w = random_tensor({8, 8}, 2, DType::f64, true);
  auto region = [&](const TensorList& in) -> TensorList { return {tanh(matmul(in[0], w)) * in[0]}; };
  const Tensor expected = autograd::grad({region({x})[0].sum()}, {x})[0];
  Tensor y = autograd::checkpoint(region, {x})[0];
  EXPECT_TRUE(all_close(autograd::grad({y.sum()}, {x})[0], expected, 1e-12, 1e-12));
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, CheckpointReachesParametersWhenNoInputRequiresGrad) {
  Tensor x = random_tensor({3, 4}, 1);
  Tensor w = random_tensor({4, 4}, 2, DType::f64, true);
  Tensor y = autograd::checkpoint([&](const TensorList& in) -> TensorList { return {matmul(in[0], w)}; }, {x})[0];
  y.sum().backward();
  EXPECT_TRUE(all_close(w.grad(), matmul(x.t(), ones({3, 4}, {.dtype = DType::f64}))));
}

TEST(Autograd, CheckpointReplaysRandomStreams) {
  Generator gen(11);
  Tensor x = random_tensor({64}, 1, DType::f64, true);
  auto noisy = [&](const TensorList& in) -> TensorList { return {in[0] * rand({64}, gen, {.dtype = DType::f64})}; };
  GeneratorState start = gen.state();
  Tensor y = autograd::checkpoint(noisy, {x}, {&gen})[0];
  GeneratorState after = gen.state();
  y.sum().backward();
  EXPECT_EQ(gen.state(), after);  // the recomputation does not consume the stream
  Generator again(11);
  again.set_state(start);
  EXPECT_TRUE(all_close(x.grad(), rand({64}, again, {.dtype = DType::f64}), 0, 0));
}

TEST(Autograd, CheckpointKeepsOnlyItsInputs) {
  Tensor x = random_tensor({128, 128}, 1, DType::f32, true);
  auto deep = [](const TensorList& in) -> TensorList {
    Tensor h = in[0];
    for (int i = 0; i < 8; ++i) h = tanh(h * 1.01);
    return {h};
  };
  reset_peak_memory(Device::cpu());
  int64_t base = memory_stats(Device::cpu()).current_bytes;
  Tensor plain = deep({x})[0];
  int64_t plain_held = memory_stats(Device::cpu()).current_bytes - base;
  plain = Tensor();
  base = memory_stats(Device::cpu()).current_bytes;
  Tensor ckpt = autograd::checkpoint(deep, {x})[0];
  int64_t ckpt_held = memory_stats(Device::cpu()).current_bytes - base;
  const int64_t one = 128 * 128 * 4;
  EXPECT_GE(plain_held, 8 * one);  // every tanh input kept
  EXPECT_LE(ckpt_held, 2 * one);   // just the output
}

}  // namespace
}  // namespace ponder
