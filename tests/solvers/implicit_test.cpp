#include "solvers/implicit.h"

#include <gtest/gtest.h>

#include "autograd/checkpoint.h"
#include "support/test_util.h"
#include "tensor/allocator.h"

namespace ponder::solvers {
namespace {

using testing::all_close;
using testing::error_message;
using testing::random_tensor;
using testing::relative_error;

// f(y, c) = tanh(y Wᵀ + c Uᵀ + b) with ‖W‖₂ ≤ ‖W‖_F = 0.6: a contraction, tanh being 1-Lipschitz.
struct ContractiveMap {
  Tensor W, U, b, c;

  ContractiveMap(int64_t batch, int64_t width, int64_t context_width, uint64_t seed) {
    Tensor w = random_tensor({width, width}, seed);
    W = (w * (0.6 / norm(w).item<double>())).set_requires_grad(true);
    U = (random_tensor({width, context_width}, seed + 1) * 0.5).set_requires_grad(true);
    b = (random_tensor({width}, seed + 2) * 0.3).set_requires_grad(true);
    c = random_tensor({batch, context_width}, seed + 3, DType::f64, true);
  }

  Tensor operator()(const Tensor& y, const Tensor& context) const {
    return tanh(matmul(y, W.t()) + matmul(context, U.t()) + b);
  }
  ContextMap with_context() const {
    return [this](const Tensor& y, const TensorList& context) { return (*this)(y, context[0]); };
  }
  FixedPointResult solve(FixedPointOptions options = {.tol = 1e-13, .max_iter = 300}) const {
    Tensor zero_start = zeros({c.size(0), W.size(0)}, {.dtype = DType::f64});
    return solve_fixed_point([this](const Tensor& y) { return (*this)(y, c); }, zero_start, options);
  }
  // y* with implicit gradients; the solve must converge.
  Tensor implicit(const BackwardOptions& options, std::shared_ptr<SolveStats> stats = nullptr) const {
    FixedPointResult r = solve();
    EXPECT_TRUE(r.converged) << "residual " << r.residual;
    return implicit_fixed_point(with_context(), r.solution, {c}, options, std::move(stats));
  }
  TensorList parameters() const { return {W, U, b, c}; }
  // Their accumulated gradients; a missing one fails the test (as zeros) instead of crashing it.
  TensorList gradients() const {
    TensorList grads;
    for (const Tensor& p : parameters()) {
      EXPECT_TRUE(p.grad().defined()) << "a parameter of shape " << p.shape() << " got no gradient";
      grads.push_back(p.grad().defined() ? p.grad() : zeros_like(p));
    }
    return grads;
  }
};

// d loss / d param by central differences, the loss re-solved for every perturbed element.
Tensor finite_difference(const Tensor& param, const std::function<double()>& loss, double eps = 1e-6) {
  Tensor grad = zeros_like(param);
  double* p = param.data<double>();
  double* g = grad.data<double>();
  for (int64_t i = 0; i < param.numel(); ++i) {
    const double keep = p[i];
    p[i] = keep + eps;
    const double plus = loss();
    p[i] = keep - eps;
    const double minus = loss();
    p[i] = keep;
    g[i] = (plus - minus) / (2 * eps);
  }
  return grad;
}

TensorList implicit_gradients(const ContractiveMap& map, const Tensor& weight,
                              const BackwardOptions& options) {
  sum(map.implicit(options) * weight).backward();
  return map.gradients();
}

const char* const kNames[] = {"W", "U", "b", "c"};

TEST(ImplicitFixedPoint, PicardAndAndersonAdjointsMatchFiniteDifferencesOfTheSolution) {
  const ContractiveMap reference(3, 5, 4, 21);
  const Tensor weight = random_tensor({3, 5}, 99);
  auto loss = [&] { return sum(reference.solve().solution * weight).item<double>(); };
  TensorList expected;
  for (const Tensor& p : reference.parameters()) expected.push_back(finite_difference(p, loss));

  const FixedPointOptions tight{.tol = 1e-12, .max_iter = 500};
  for (BackwardMode mode : {BackwardMode::picard, BackwardMode::anderson}) {
    auto stats = std::make_shared<SolveStats>();
    ContractiveMap map(3, 5, 4, 21);
    sum(map.implicit({.mode = mode, .adjoint = tight}, stats) * weight).backward();
    EXPECT_TRUE(stats->converged);
    EXPECT_GT(stats->iterations, 2);
    TensorList grads = map.gradients();
    for (size_t k = 0; k < expected.size(); ++k) {
      EXPECT_LT(relative_error(grads[k], expected[k]), 1e-4)
          << kNames[k] << ", mode " << static_cast<int>(mode);
    }
  }
  // The comparison can tell: Jacobian-free backprop is far off on this map.
  ContractiveMap map(3, 5, 4, 21);
  TensorList jfb = implicit_gradients(map, weight, {.mode = BackwardMode::jfb});
  EXPECT_GT(relative_error(jfb[0], expected[0]), 1e-2);
}

// The gradients of sum(f(y*) ⊙ v) with the adjoint u written out: u = v + clipped Jᵀv, where
// Jᵀv = (v ⊙ s) W with s = 1 − f(y*)², then δ = u ⊙ s back through the pre-activation.
TensorList neumann_one_by_hand(const ContractiveMap& map, const Tensor& y_star, const Tensor& v,
                               double clip) {
  NoGrad no_grad;
  Tensor s = 1.0 - square(map(y_star, map.c));
  Tensor jv = matmul(v * s, map.W);
  if (clip > 0) {
    Tensor limit = norm(v, {1}, true) * clip, size = norm(jv, {1}, true);
    jv = jv * minimum(ones_like(size), limit / size);
  }
  Tensor delta = (v + jv) * s;
  return {matmul(delta.t(), y_star), matmul(delta.t(), map.c), sum(delta, {0}), matmul(delta, map.U)};
}

// A map whose body is an activation-checkpointed region (as transformer blocks with
// runtime.recompute are) gives the same gradients: the retained graph keeps its activations
// instead, since each adjoint iteration's autograd::grad must not reach the parameters.
TEST(ImplicitFixedPoint, CheckpointedMapsGiveTheSameGradients) {
  const Tensor weight = random_tensor({3, 5}, 98);
  for (BackwardMode mode : {BackwardMode::picard, BackwardMode::anderson, BackwardMode::phantom}) {
    ContractiveMap plain(3, 5, 4, 23), checkpointed(3, 5, 4, 23);
    TensorList expected = implicit_gradients(plain, weight, {.mode = mode});
    ContextMap region = [&](const Tensor& y, const TensorList& context) {
      auto body = [&](const TensorList& in) -> TensorList { return {checkpointed(in[0], in[1])}; };
      return autograd::checkpoint(body, {y, context[0]})[0];
    };
    FixedPointResult r = checkpointed.solve();
    sum(implicit_fixed_point(region, r.solution, {checkpointed.c}, {.mode = mode}) * weight).backward();
    TensorList grads = checkpointed.gradients();
    for (size_t k = 0; k < expected.size(); ++k) {
      EXPECT_TRUE(all_close(grads[k], expected[k], 1e-12, 1e-14)) << kNames[k] << ", mode " << static_cast<int>(mode);
    }
  }
}

TEST(ImplicitFixedPoint, OnestepIsTheFirstOrderNeumannFormula) {
  const Tensor v = random_tensor({4, 6}, 98);
  for (double clip : {0.0, 0.05}) {
    ContractiveMap map(4, 6, 3, 31);
    auto stats = std::make_shared<SolveStats>();
    sum(map.implicit({.mode = BackwardMode::onestep, .adjoint_clip = clip}, stats) * v).backward();
    TensorList expected = neumann_one_by_hand(map, map.solve().solution, v, clip), grads = map.gradients();
    for (size_t k = 0; k < expected.size(); ++k) {
      EXPECT_TRUE(all_close(grads[k], expected[k], 1e-12, 1e-14)) << kNames[k] << ", clip " << clip;
    }
    EXPECT_EQ(stats->iterations, 1);
    EXPECT_GT(stats->residual, 0.05);  // so the 0.05 clip binds
    EXPECT_FALSE(stats->failed);
  }
}

TEST(ImplicitFixedPoint, JfbIsTheGradientOfOneApplicationAtTheSolution) {
  const Tensor v = random_tensor({4, 6}, 97);
  ContractiveMap implicit(4, 6, 3, 41), unrolled(4, 6, 3, 41);
  TensorList jfb = implicit_gradients(implicit, v, {.mode = BackwardMode::jfb});
  sum(unrolled(unrolled.solve().solution, unrolled.c) * v).backward();
  TensorList expected = unrolled.gradients();
  for (size_t k = 0; k < jfb.size(); ++k) {
    EXPECT_TRUE(all_close(jfb[k], expected[k], 1e-13, 1e-15)) << kNames[k];
  }
}

TEST(ImplicitFixedPoint, PhantomBackpropagatesDampedStepsFromTheSolution) {
  const Tensor v = random_tensor({4, 6}, 96);
  const int steps = 3;
  const double tau = 0.7;
  ContractiveMap implicit(4, 6, 3, 51), unrolled(4, 6, 3, 51);
  const BackwardOptions options{.mode = BackwardMode::phantom, .phantom_steps = steps, .phantom_damping = tau};
  TensorList phantom = implicit_gradients(implicit, v, options);
  Tensor y = unrolled.solve().solution;
  for (int i = 0; i < steps; ++i) y = y * (1 - tau) + unrolled(y, unrolled.c) * tau;
  sum(y * v).backward();
  TensorList expected = unrolled.gradients();
  for (size_t k = 0; k < phantom.size(); ++k) {
    EXPECT_TRUE(all_close(phantom[k], expected[k], 1e-12, 1e-15)) << kNames[k];
  }
}

TEST(ImplicitFixedPoint, ReturnsOneApplicationOfTheMap) {
  ContractiveMap map(2, 5, 3, 61);
  FixedPointResult r = map.solve({.tol = 1e-3, .max_iter = 100});
  Tensor expected = map(r.solution, map.c).detach();
  Tensor y = implicit_fixed_point(map.with_context(), r.solution, {map.c});
  EXPECT_TRUE(y.requires_grad());
  EXPECT_TRUE(all_close(y, expected, 0, 0));
  NoGrad no_grad;
  Tensor plain = implicit_fixed_point(map.with_context(), r.solution, {map.c});
  EXPECT_FALSE(plain.requires_grad());
  EXPECT_TRUE(all_close(plain, expected, 0, 0));
}

TEST(ImplicitFixedPoint, ParsesBackwardModesByName) {
  EXPECT_EQ(parse_backward_mode("onestep"), BackwardMode::onestep);
  EXPECT_EQ(parse_backward_mode("picard"), BackwardMode::picard);
  EXPECT_EQ(parse_backward_mode("anderson"), BackwardMode::anderson);
  EXPECT_EQ(parse_backward_mode("jfb"), BackwardMode::jfb);
  EXPECT_EQ(parse_backward_mode("phantom"), BackwardMode::phantom);
  EXPECT_EQ(error_message<ValueError>([] { parse_backward_mode("one_step"); }),
            "unknown implicit backward mode 'one_step' (expected onestep, picard, anderson, jfb or phantom)");
}

TEST(ImplicitFixedPoint, RejectsBadOptionsAndASecondBackward) {
  ContractiveMap map(2, 5, 3, 71);
  Tensor y_star = map.solve().solution;
  auto with = [&](BackwardOptions o) { implicit_fixed_point(map.with_context(), y_star, {map.c}, o); };
  EXPECT_EQ(error_message<ValueError>([&] { with({.adjoint_clip = -1}); }),
            "implicit_fixed_point: adjoint_clip must be >= 0, got -1");
  EXPECT_EQ(error_message<ValueError>([&] { with({.mode = BackwardMode::phantom, .phantom_damping = 0}); }),
            "implicit_fixed_point: phantom_damping must be in (0, 1], got 0");
  EXPECT_EQ(error_message<ValueError>([&] { with({.mode = BackwardMode::picard, .adjoint = {.m = 0}}); }),
            "fixed-point solver: the Anderson history m must be >= 1, got 0");
  auto widen = [](const Tensor& y, const TensorList&) { return cat({y, y}, 1); };
  EXPECT_EQ(error_message<ShapeError>([&] { implicit_fixed_point(widen, y_star, {map.c}); }),
            "implicit_fixed_point: f maps y* [2, 5] f64 cpu to [2, 10] f64 cpu; it must keep the shape and "
            "dtype");

  Tensor loss = implicit_fixed_point(map.with_context(), y_star, {map.c}).sum();
  loss.backward({}, /*retain_graph=*/true);
  EXPECT_EQ(error_message<AutogradError>([&] { loss.backward(); }),
            "implicit_fixed_point: backward a second time; the first backward freed the retained graph");
}

// Peak host memory of a forward solve, the implicit function and its backward, with tol = 0 so
// that every one of max_iter iterations runs (in the forward and in an iterative adjoint).
int64_t peak_bytes(int max_iter, SolverKind forward, BackwardMode backward) {
  const ContractiveMap map(8, 64, 16, 81);
  const Tensor v = random_tensor({8, 64}, 95);
  const FixedPointOptions options{.kind = forward, .tol = 0, .max_iter = max_iter};
  const int64_t before = memory_stats(Device::cpu()).current_bytes;
  reset_peak_memory(Device::cpu());
  {
    FixedPointResult r = map.solve(options);
    EXPECT_EQ(r.iterations, max_iter);
    BackwardOptions b{.mode = backward, .adjoint = options};
    sum(implicit_fixed_point(map.with_context(), r.solution, {map.c}, b) * v).backward();
  }
  return memory_stats(Device::cpu()).peak_bytes - before;
}

TEST(ImplicitFixedPoint, PeakMemoryDoesNotGrowWithIterations) {
  const int64_t one_iterate = 8 * 64 * 8;
  for (auto [forward, backward] : {std::pair{SolverKind::anderson, BackwardMode::onestep},
                                   std::pair{SolverKind::picard, BackwardMode::picard},
                                   std::pair{SolverKind::anderson, BackwardMode::anderson}}) {
    peak_bytes(4, forward, backward);  // first-use allocations out of the way
    const int64_t short_solve = peak_bytes(4, forward, backward);
    const int64_t long_solve = peak_bytes(64, forward, backward);
    EXPECT_GT(short_solve, 4 * one_iterate);  // the measurement sees the work
    EXPECT_LE(std::abs(long_solve - short_solve), short_solve / 20)
        << "4 iterations: " << short_solve << " bytes, 64 iterations: " << long_solve << " bytes";
  }
}

}  // namespace
}  // namespace ponder::solvers
