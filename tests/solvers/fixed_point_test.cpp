#include "solvers/fixed_point.h"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "support/test_util.h"

namespace ponder::solvers {
namespace {

using testing::all_close;
using testing::error_message;
using testing::random_tensor;
using testing::relative_error;

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::Map<const RowMatrix> as_matrix(const Tensor& t) { return {t.data<double>(), t.size(0), t.size(1)}; }

Tensor from_matrix(const RowMatrix& m) {
  std::vector<double> values(m.data(), m.data() + m.size());
  return tensor(values, {m.rows(), m.cols()}, {.dtype = DType::f64});
}

// y = A y + b per sample (rows of y and b), A symmetric with eigenvalues spread evenly over
// [0, 0.95]: a slow contraction for Picard (0.95ᵏ), where Anderson's mixing pays off.
struct LinearContraction {
  Tensor A, b;

  LinearContraction(int64_t batch, int64_t width, uint64_t seed) {
    RowMatrix random = as_matrix(random_tensor({width, width}, seed));
    RowMatrix q = Eigen::HouseholderQR<RowMatrix>(random).householderQ();
    Eigen::VectorXd eigenvalues = Eigen::VectorXd::LinSpaced(width, 0.0, 0.95);
    A = from_matrix(q * eigenvalues.asDiagonal() * q.transpose());
    b = random_tensor({batch, width}, seed + 1);
  }
  FixedPointMap map() const {
    return [this](const Tensor& y) { return matmul(y, A.t()) + b; };
  }
  // Rows of (I − A)⁻¹ b.
  Tensor exact() const {
    RowMatrix identity = RowMatrix::Identity(A.size(0), A.size(1));
    return from_matrix((identity - as_matrix(A)).partialPivLu().solve(as_matrix(b).transpose()).transpose());
  }
};

TEST(FixedPoint, AndersonBeatsPicardOnALinearContractionAndReachesTheExactSolution) {
  const LinearContraction problem(4, 16, 3);
  const Tensor zero_start = zeros({4, 16}, {.dtype = DType::f64});
  auto solve = [&](FixedPointOptions o) { return solve_fixed_point(problem.map(), zero_start, o); };
  FixedPointResult picard = solve({.kind = SolverKind::picard, .tol = 1e-10, .max_iter = 2000});
  FixedPointResult anderson = solve({.kind = SolverKind::anderson, .tol = 1e-10, .max_iter = 2000});
  FixedPointResult damped = solve({.kind = SolverKind::anderson, .tol = 1e-10, .max_iter = 2000, .beta = 0.7});
  for (const FixedPointResult* r : {&picard, &anderson, &damped}) {
    EXPECT_TRUE(r->converged);
    EXPECT_FALSE(r->failed);
    EXPECT_LT(r->residual, 1e-10);
    EXPECT_LT(relative_error(r->solution, problem.exact()), 1e-8);
  }
  EXPECT_LT(anderson.iterations * 3, picard.iterations)
      << "Anderson " << anderson.iterations << ", Picard " << picard.iterations;
  EXPECT_LT(damped.iterations * 2, picard.iterations);
  EXPECT_EQ(anderson.residual, max_relative_residual(anderson.solution, problem.map()(anderson.solution)));
}

TEST(FixedPoint, RunsAtLeastMinIterAndReportsNonConvergence) {
  const LinearContraction problem(2, 8, 5);
  const Tensor start = random_tensor({2, 8}, 6);
  FixedPointResult early = solve_fixed_point(problem.map(), start, {.tol = 10, .min_iter = 4, .max_iter = 9});
  EXPECT_TRUE(early.converged);
  EXPECT_EQ(early.iterations, 4);

  for (SolverKind kind : {SolverKind::picard, SolverKind::anderson}) {
    FixedPointResult r = solve_fixed_point(problem.map(), start, {.kind = kind, .tol = 1e-12, .max_iter = 3});
    EXPECT_FALSE(r.converged);
    EXPECT_FALSE(r.failed);
    EXPECT_EQ(r.iterations, 3);
    EXPECT_GT(r.residual, 1e-12);
    EXPECT_DOUBLE_EQ(r.residual, max_relative_residual(r.solution, problem.map()(r.solution)));
  }
}

TEST(FixedPoint, DivergenceIsReportedWithTheBestIterate) {
  const Tensor start = ones({3, 4}, {.dtype = DType::f64});
  // y² + 1 has no real fixed point: Picard's relative residual grows like y until it passes 1e4.
  auto expansive = [](const Tensor& y) { return square(y) + 1.0; };
  FixedPointResult r =
      solve_fixed_point(expansive, start, {.kind = SolverKind::picard, .tol = 1e-8, .max_iter = 100});
  EXPECT_TRUE(r.failed);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.iterations, 6);         // iterates 1, 2, 5, 26, 677, 458330: residual ≈ 458330 there
  EXPECT_DOUBLE_EQ(r.residual, 1.0);  // the start, ‖1 + 1 − 1‖ / ‖1‖, was the best iterate
  EXPECT_TRUE(all_close(r.solution, start, 0, 0));
}

// A contraction until its `breaks_at`-th evaluation, which returns `broken` instead.
FixedPointMap breaking_map(int breaks_at, FixedPointMap broken) {
  return [calls = 0, breaks_at, broken](const Tensor& y) mutable {
    return ++calls == breaks_at ? broken(y) : y * 0.5 + 1.0;
  };
}

TEST(FixedPoint, BlowUpAndNaNMidSolveStopWithTheBestIterateSoFar) {
  const Tensor start = random_tensor({3, 4}, 8);
  auto contraction = [](const Tensor& y) { return y * 0.5 + 1.0; };
  FixedPointMap huge = [](const Tensor& y) { return y * 1e6; };
  FixedPointMap nan = [](const Tensor& y) { return log(-square(y) - 1.0); };
  for (SolverKind kind : {SolverKind::picard, SolverKind::anderson}) {
    for (const FixedPointMap& broken : {huge, nan}) {
      FixedPointResult r = solve_fixed_point(breaking_map(4, broken), start, {.kind = kind, .tol = 1e-14});
      EXPECT_TRUE(r.failed);
      EXPECT_FALSE(r.converged);
      EXPECT_EQ(r.iterations, 4);
      // the best of the first three iterates, with its own residual
      EXPECT_DOUBLE_EQ(r.residual, max_relative_residual(r.solution, contraction(r.solution)));
      EXPECT_LT(r.residual, max_relative_residual(start, contraction(start)));
    }
    FixedPointResult at_once = solve_fixed_point(breaking_map(1, nan), start, {.kind = kind});
    EXPECT_TRUE(at_once.failed);
    EXPECT_EQ(at_once.iterations, 1);
    EXPECT_TRUE(std::isnan(at_once.residual));
    EXPECT_TRUE(all_close(at_once.solution, start, 0, 0));
  }
}

TEST(FixedPoint, AndersonWithOneEntryTakesAPicardStepDampedByBeta) {
  const LinearContraction problem(2, 8, 9);
  const Tensor start = random_tensor({2, 8}, 10);
  // Any residual passes the tolerance, so the second iterate comes back as it is.
  FixedPointResult r = solve_fixed_point(
      problem.map(), start, {.tol = 1e9, .min_iter = 2, .max_iter = 2, .m = 1, .beta = 0.25});
  EXPECT_TRUE(all_close(r.solution, start * 0.75 + problem.map()(start) * 0.25, 1e-14, 1e-14));
}

TEST(FixedPoint, AndersonFallsBackToPicardWhenItsWeightsAreNotFinite) {
  // A constant map: after one step every residual in the history is exactly zero, so the
  // weights are 0/0 and only the Picard fallback keeps the iterate finite.
  const Tensor target = random_tensor({2, 3}, 7);
  auto constant = [&](const Tensor&) { return target; };
  const Tensor zero_start = zeros({2, 3}, {.dtype = DType::f64});
  FixedPointResult r = solve_fixed_point(constant, zero_start, {.tol = 0, .max_iter = 6, .m = 1});
  EXPECT_FALSE(r.failed);
  EXPECT_EQ(r.residual, 0.0);
  EXPECT_TRUE(all_close(r.solution, target, 0, 0));
}

TEST(FixedPoint, RejectsBadOptionsAndMapsThatChangeTheShape) {
  const Tensor start = ones({2, 3}, {.dtype = DType::f64});
  auto identity = [](const Tensor& y) { return y; };
  auto message = [&](FixedPointOptions o) {
    return error_message<ValueError>([&] { solve_fixed_point(identity, start, o); });
  };
  EXPECT_EQ(message({.tol = -1}), "fixed-point solver: tol must be >= 0, got -1");
  EXPECT_EQ(message({.max_iter = 0}), "fixed-point solver: max_iter must be >= 1, got 0");
  EXPECT_EQ(message({.min_iter = 8, .max_iter = 4}),
            "fixed-point solver: min_iter must be in [0, max_iter = 4], got 8");
  EXPECT_EQ(message({.m = 0}), "fixed-point solver: the Anderson history m must be >= 1, got 0");
  EXPECT_EQ(message({.lam = -0.5}),
            "fixed-point solver: the Anderson regulariser lam must be >= 0, got -0.5");
  EXPECT_EQ(message({.beta = 1.5}),
            "fixed-point solver: the Anderson mixing beta must be in (0, 1], got 1.5");
  EXPECT_EQ(parse_solver_kind("anderson"), SolverKind::anderson);
  EXPECT_EQ(parse_solver_kind("picard"), SolverKind::picard);
  EXPECT_EQ(error_message<ValueError>([] { parse_solver_kind("newton"); }),
            "unknown fixed-point solver 'newton' (expected picard or anderson)");
  auto row = [](const Tensor& y) { return y.sum({1}); };
  EXPECT_EQ(error_message<ShapeError>([&] { solve_fixed_point(row, start); }),
            "solve_fixed_point: f maps an iterate [2, 3] f64 cpu to [2] f64 cpu; it must keep the shape, "
            "dtype and device");
}

}  // namespace
}  // namespace ponder::solvers
