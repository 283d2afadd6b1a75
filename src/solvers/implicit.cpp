#include "solvers/implicit.h"

#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "ops/ops.h"
#include "tensor/error.h"

namespace ponder::solvers {
namespace {

void check_backward_options(const BackwardOptions& o) {
  PONDER_CHECK(o.adjoint_clip >= 0, ValueError, "implicit_fixed_point: adjoint_clip must be >= 0, got ",
               o.adjoint_clip);
  PONDER_CHECK(o.phantom_steps >= 1, ValueError, "implicit_fixed_point: phantom_steps must be >= 1, got ",
               o.phantom_steps);
  PONDER_CHECK(o.phantom_damping > 0 && o.phantom_damping <= 1, ValueError,
               "implicit_fixed_point: phantom_damping must be in (0, 1], got ", o.phantom_damping);
  if (o.mode == BackwardMode::picard || o.mode == BackwardMode::anderson) check_options(o.adjoint);
}

// Scales each sample of w down so that ‖w_b‖ ≤ clip·‖v_b‖.
Tensor clip_per_sample(const Tensor& w, const Tensor& v, double clip) {
  Shape per_sample = Shape::filled(w.dim(), 1);
  per_sample[0] = w.size(0);
  Tensor limit = per_sample_norm(v) * clip, size = per_sample_norm(w);
  Tensor scale = where(gt(size, limit), limit / size, ones_like(size));
  return w * scale.reshape(per_sample);
}

SolveStats one_pass_stats(int iterations, double residual) {
  bool finite = std::isfinite(residual);
  return {iterations, residual, finite, !finite};
}

class ImplicitFixedPoint final : public autograd::Function {
 public:
  ImplicitFixedPoint(ContextMap f, const Tensor& y_star, BackwardOptions options,
                     std::shared_ptr<SolveStats> stats)
      : f_(std::move(f)), y_star_(y_star.detach()), options_(options), stats_(std::move(stats)) {}

  const char* name() const override { return "implicit_fixed_point"; }
  bool always_record() const override { return true; }  // parameters are reached only inside f

  TensorList forward(const TensorList& context) override {
    EnableGrad grad;
    autograd::NoCheckpoint whole_graph;  // vjp() differentiates it with autograd::grad
    y_ = y_star_.detach().set_requires_grad(true);
    for (const Tensor& c : context) {
      context_.push_back(c.requires_grad() ? c.detach().set_requires_grad(true) : c.detach());
    }
    y_out_ = f_(y_, context_);
    PONDER_CHECK(y_out_.defined() && y_out_.shape() == y_.shape() && y_out_.dtype() == y_.dtype(),
                 ShapeError, "implicit_fixed_point: f maps y* ", describe(y_), " to ",
                 y_out_.defined() ? describe(y_out_) : std::string("nothing"),
                 "; it must keep the shape and dtype");
    return {y_out_.detach()};
  }

  TensorList backward(const TensorList& grad_outputs) override {
    PONDER_CHECK(y_out_.defined(), AutogradError,
                 "implicit_fixed_point: backward a second time; the first backward freed the retained graph");
    const Tensor& v = grad_outputs[0];
    if (options_.mode == BackwardMode::phantom) {
      autograd::backward({phantom_unroll()}, {v});
    } else {
      autograd::backward({y_out_}, {adjoint(v)});
    }
    TensorList context_grads;
    for (const Tensor& c : context_) context_grads.push_back(c.requires_grad() ? c.grad() : Tensor());
    y_ = y_out_ = Tensor();
    context_.clear();
    return context_grads;
  }

 private:
  // Jᵀu through the retained graph (kept for the next product).
  Tensor vjp(const Tensor& u) {
    Tensor product = autograd::grad({y_out_}, {y_}, {u}, /*retain_graph=*/true, /*allow_unused=*/true)[0];
    return product.defined() ? product : zeros_like(u);
  }

  Tensor adjoint(const Tensor& v) {
    switch (options_.mode) {
      case BackwardMode::onestep: return onestep(v);
      case BackwardMode::picard: return solve_adjoint(v, SolverKind::picard);
      case BackwardMode::anderson: return solve_adjoint(v, SolverKind::anderson);
      case BackwardMode::jfb:
      case BackwardMode::phantom: break;
    }
    report(one_pass_stats(0, 0.0));
    return v;
  }

  Tensor onestep(const Tensor& v) {
    Tensor jv = vjp(v);
    report(one_pass_stats(1, max_relative_residual(v, v + jv)));
    if (options_.adjoint_clip > 0) jv = clip_per_sample(jv, v, options_.adjoint_clip);
    return v + jv;
  }

  // u = v + Jᵀu as a fixed-point problem of its own, started from u = v.
  Tensor solve_adjoint(const Tensor& v, SolverKind kind) {
    FixedPointOptions o = options_.adjoint;
    o.kind = kind;
    FixedPointResult r = solve_fixed_point([&](const Tensor& u) { return v + vjp(u); }, v, o);
    report(r);
    return r.solution;
  }

  // k damped steps from y*, the first through the retained application of f.
  Tensor phantom_unroll() {
    EnableGrad grad;
    const double tau = options_.phantom_damping;
    Tensor y = y_ * (1 - tau) + y_out_ * tau;
    for (int step = 1; step < options_.phantom_steps; ++step) y = y * (1 - tau) + f_(y, context_) * tau;
    report(one_pass_stats(options_.phantom_steps, 0.0));
    return y;
  }

  void report(const SolveStats& stats) {
    if (stats_) *stats_ = stats;
  }

  ContextMap f_;
  Tensor y_star_;
  BackwardOptions options_;
  std::shared_ptr<SolveStats> stats_;
  // The retained application y_out_ = f(y_, context_), from detached leaves.
  Tensor y_, y_out_;
  TensorList context_;
};

}  // namespace

BackwardMode parse_backward_mode(std::string_view name) {
  if (name == "onestep") return BackwardMode::onestep;
  if (name == "picard") return BackwardMode::picard;
  if (name == "anderson") return BackwardMode::anderson;
  if (name == "jfb") return BackwardMode::jfb;
  if (name == "phantom") return BackwardMode::phantom;
  fail<ValueError>("unknown implicit backward mode '", name,
                   "' (expected onestep, picard, anderson, jfb or phantom)");
}

Tensor implicit_fixed_point(const ContextMap& f, const Tensor& y_star, const TensorList& context,
                            const BackwardOptions& options, std::shared_ptr<SolveStats> backward_stats) {
  check_backward_options(options);
  PONDER_CHECK(y_star.defined() && y_star.dim() >= 1 && y_star.is_floating_point(), ShapeError,
               "implicit_fixed_point: y* must be a floating tensor [batch, ...], got ",
               y_star.defined() ? describe(y_star) : std::string("nothing"));
  for (size_t i = 0; i < context.size(); ++i) {
    PONDER_CHECK(context[i].defined(), ValueError, "implicit_fixed_point: context tensor ", i,
                 " is undefined");
  }
  if (!autograd::is_grad_enabled()) return f(y_star.detach(), context);
  auto fn = std::make_shared<ImplicitFixedPoint>(f, y_star, options, std::move(backward_stats));
  return autograd::call(fn, context)[0];
}

}  // namespace ponder::solvers
