// Fixed-point solvers for y = f(y) over a batch (samples along dim 0): Picard iteration and
// type-II Anderson acceleration. A solve runs under NoGrad and keeps nothing of its iterations
// but a bounded history, so its memory does not grow with the number of iterations; gradients
// come from implicit differentiation (solvers/implicit.h).
//
//   FixedPointResult r = solve_fixed_point([&](const Tensor& y) { return head(y + c) - y; },
//                                          c.detach(), {.tol = 3e-4, .min_iter = 6, .max_iter = 64});
//
// A solve that does not converge, or diverges, is reported in the result, never thrown.
// Iterates, the history and the mixing stay in y0's dtype (products accumulate in fp32); only
// the small Anderson system is solved in fp32 on the host. A bf16 iterate cannot resolve
// relative residuals much below 1e-3, so solve in f32 when the tolerance is tighter.
#pragma once

#include <functional>
#include <string_view>

#include "tensor/tensor.h"

namespace ponder::solvers {

using FixedPointMap = std::function<Tensor(const Tensor& y)>;

enum class SolverKind { picard, anderson };

// "picard" or "anderson"; anything else is a ValueError that lists the known names.
SolverKind parse_solver_kind(std::string_view name);

struct FixedPointOptions {
  SolverKind kind = SolverKind::anderson;
  double tol = 1e-4;  // stop once the largest per-sample relative residual is below this
  int min_iter = 0;   // evaluations of f before the tolerance may stop the solve
  int max_iter = 50;  // evaluations of f at most
  int m = 5;          // Anderson: how many past iterates and residuals to mix
  // Anderson: Tikhonov regulariser, relative to the largest squared residual norm in the
  // history (an absolute one would swamp the system once residuals are small and stall it).
  double lam = 1e-4;
  double beta = 1.0;  // Anderson: mixing, y = β·Σα f(y_i) + (1 − β)·Σα y_i
};

// A relative residual above this (or NaN) stops a solve as failed.
inline constexpr double kDivergedResidual = 1e4;

struct SolveStats {
  int iterations = 0;      // evaluations of f
  double residual = 0;     // largest per-sample relative residual of the returned iterate
  bool converged = false;  // residual < tol after at least min_iter evaluations
  bool failed = false;     // gave up on NaN or a residual above kDivergedResidual
};

struct FixedPointResult : SolveStats {
  Tensor solution;  // the converged iterate; otherwise the lowest-residual iterate seen
};

// Rejects options no solve can run with (ValueError naming the field). tol = 0 is allowed: the
// solve then runs exactly max_iter evaluations.
void check_options(const FixedPointOptions& options);

// Solves y = f(y) from y0. f must return a tensor of y's shape, dtype and device.
FixedPointResult solve_fixed_point(const FixedPointMap& f, const Tensor& y0,
                                   const FixedPointOptions& options = {});

// Euclidean norm of each sample (all dims but the first): [B, ...] -> [B].
Tensor per_sample_norm(const Tensor& x);

// max over samples of ‖fy − y‖ / ‖y‖; a zero sample is measured against ‖fy‖ instead (so a
// solve may start from zeros). NaN when any sample's residual is NaN.
double max_relative_residual(const Tensor& y, const Tensor& fy);

}  // namespace ponder::solvers
