// Gradients through a fixed point by implicit differentiation (DEQ style), with memory that
// does not depend on how many iterations the forward solve took.
//
//   auto map = [&](const Tensor& y, const TensorList& ctx) { return head(y + ctx[0]) - y; };
//   FixedPointResult r = solve_fixed_point([&](const Tensor& y) { return map(y, {c}); }, c.detach(), fwd);
//   Tensor y_star = implicit_fixed_point(map, r.solution, {c}, {.mode = BackwardMode::onestep});
//
// The forward evaluates y_out = f(y*, context) once with grad, y* detached, and keeps that one
// graph. The value returned is y_out = f(y*), the one application through which gradients flow
// (it differs from y* by the solve's final residual). In backward, with
// v = ∂L/∂y_out and J = ∂f/∂y at y*, the mode picks the adjoint u ≈ (I − Jᵀ)⁻¹ v, obtained
// from vector-Jacobian products Jᵀu on the retained graph; then u is back-propagated once
// through that graph. The context tensors receive their gradients through the normal engine;
// parameters f closes over (leaves) have theirs accumulated directly. f must reach every
// non-leaf tensor that needs a gradient through `context`, never by closing over it.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "solvers/fixed_point.h"
#include "tensor/tensor.h"

namespace ponder::solvers {

using ContextMap = std::function<Tensor(const Tensor& y, const TensorList& context)>;

enum class BackwardMode {
  onestep,   // u = v + Jᵀv (Neumann series to first order), Jᵀv optionally clipped
  picard,    // u ← v + Jᵀu to options.adjoint's tolerance
  anderson,  // the same system with Anderson acceleration
  jfb,       // u = v: Jacobian-free backprop, the gradient of one application of f at y*
  phantom,   // back-propagate k unrolled steps y ← (1 − τ)y + τ f(y) from y*
};

// "onestep", "picard", "anderson", "jfb" or "phantom"; anything else is a ValueError listing them.
BackwardMode parse_backward_mode(std::string_view name);

struct BackwardOptions {
  BackwardMode mode = BackwardMode::onestep;
  // onestep: scale Jᵀv per sample down to at most adjoint_clip·‖v‖; 0 disables the clip.
  double adjoint_clip = 0;
  // picard/anderson: tolerance, iteration bounds and Anderson settings (kind follows mode).
  FixedPointOptions adjoint = {};
  int phantom_steps = 5;         // k
  double phantom_damping = 0.5;  // τ, in (0, 1]
};

// y* must be a solution of y = f(y, context) (its own history is ignored). When grad mode is
// off this is just f(y*, context). When `backward_stats` is given, backward writes into it:
// iterations are vector-Jacobian products (onestep 1, jfb 0) or unrolled steps (phantom);
// the residual is the adjoint's relative residual (onestep: max ‖Jᵀv‖/‖v‖ before clipping;
// jfb and phantom: 0). The retained graph is freed by the first backward.
Tensor implicit_fixed_point(const ContextMap& f, const Tensor& y_star, const TensorList& context,
                            const BackwardOptions& options = {},
                            std::shared_ptr<SolveStats> backward_stats = nullptr);

}  // namespace ponder::solvers
