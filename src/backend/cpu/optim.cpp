#include "backend/cpu/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/kernels.h"

namespace ponder::backend::cpu {
namespace {

constexpr int64_t kParallelGrain = 32768;
// Partial sums of sum_of_squares cover fixed chunks, so the result does not depend on threads.
constexpr int64_t kSumChunk = 16384;

template <class T>
compute_t<T> load(const T* p, int64_t i) {
  return static_cast<compute_t<T>>(p[i]);
}

// One pass of update_element (backend/optim_math.h) over n elements.
template <class M, class G, class P, class Rule, class... S>
void update_loop(M* theta, P* working, const G* grad, M grad_scale, int64_t n, const Rule& rule, S*... state) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) update_element(rule, i, theta, working, grad, grad_scale, state...);
}

void check_operand(const char* kernel, const char* what, const Tensor& t, int64_t numel) {
  PONDER_CHECK(t.is_contiguous() && t.numel() == numel, ShapeError, kernel, ": ", what, " ", describe(t),
               " must be contiguous with ", numel, " elements");
}

template <class Fn>
void visit_master(DType t, const char* kernel, Fn&& fn) {
  if (t == DType::f32) return fn(float{});
  if (t == DType::f64) return fn(double{});
  fail<DTypeError>(kernel, ": master weights must be f32 or f64, got ", dtype_name(t));
}

// Checks the operands and runs Rule<M> over them, M the master's type; `state` are buffers of M.
template <template <class> class Rule, class Step, class... State>
void run_update(const char* kernel, const Tensor& param, const Tensor& master, const Tensor& grad,
                const Tensor& grad_scale, const Step& step, const State&... state) {
  const Tensor& target = master.defined() ? master : param;
  const int64_t n = param.numel();
  check_operand(kernel, "parameter", param, n);
  check_operand(kernel, "master", target, n);
  (check_operand(kernel, "state", state, n), ...);
  PONDER_CHECK(grad.numel() == n, ShapeError, kernel, ": gradient ", describe(grad), " does not match parameter ",
               describe(param));
  check_grad_scale(kernel, grad_scale, Device::cpu());
  const double scale = grad_scale.defined() ? *grad_scale.data<double>() : 1.0;
  const Tensor g = backend::contiguous(grad);
  visit_master(target.dtype(), kernel, [&](auto master_tag) {
    using M = decltype(master_tag);
    const Rule<M> rule(step);
    visit_floating(g.dtype(), kernel, [&](auto grad_tag) {
      using G = decltype(grad_tag);
      if (!master.defined()) {
        update_loop(target.data<M>(), static_cast<M*>(nullptr), g.data<G>(), M(scale), n, rule,
                    state.template data<M>()...);
        return;
      }
      visit_floating(param.dtype(), kernel, [&](auto param_tag) {
        using P = decltype(param_tag);
        update_loop(target.data<M>(), param.data<P>(), g.data<G>(), M(scale), n, rule, state.template data<M>()...);
      });
    });
  });
}

// Σ x² in double: partial sums over fixed chunks, added in chunk order.
double squares_of(const Tensor& x) {
  const Tensor c = backend::contiguous(x);
  const int64_t n = c.numel();
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  visit_floating(c.dtype(), "sum_of_squares", [&](auto tag) {
    using T = decltype(tag);
    const T* p = c.data<T>();
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t k = 0; k < chunks; ++k) {
      double s = 0.0;
      for (int64_t i = k * kSumChunk; i < std::min(n, (k + 1) * kSumChunk); ++i) {
        const double v = load(p, i);
        s += v * v;
      }
      partial[static_cast<size_t>(k)] = s;
    }
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

void check_sum_output(const char* kernel, const Tensor& out, const char* what = "out") {
  PONDER_CHECK(out.numel() == 1 && out.dtype() == DType::f64, DTypeError, kernel, ": ", what, " ", describe(out),
               " must be one f64 element");
}

}  // namespace

void adamw_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const AdamStep& step, const Tensor& grad_scale) {
  run_update<AdamWRule>("adamw_update", param, master, grad, grad_scale, step, exp_avg, exp_avg_sq);
}

void adam_atan2_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                       const Tensor& exp_avg_sq, const AdamStep& step, const Tensor& grad_scale) {
  run_update<AdamAtan2Rule>("adam_atan2_update", param, master, grad, grad_scale, step, exp_avg, exp_avg_sq);
}

void adamw_update_list(const std::vector<AdamTensors>& tensors, const Tensor& grad_scale) {
  for (const AdamTensors& t : tensors)
    adamw_update(t.param, t.master, t.grad, t.exp_avg, t.exp_avg_sq, t.step, grad_scale);
}

void adam_atan2_update_list(const std::vector<AdamTensors>& tensors, const Tensor& grad_scale) {
  for (const AdamTensors& t : tensors)
    adam_atan2_update(t.param, t.master, t.grad, t.exp_avg, t.exp_avg_sq, t.step, grad_scale);
}

void sgd_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& momentum_buffer,
                const SgdStep& step, const Tensor& grad_scale) {
  if (momentum_buffer.defined()) {
    run_update<SgdRule>("sgd_update", param, master, grad, grad_scale, step, momentum_buffer);
  } else {
    run_update<SgdRule>("sgd_update", param, master, grad, grad_scale, step);
  }
}

void check_grad_scale(const char* kernel, const Tensor& grad_scale, Device device) {
  if (!grad_scale.defined()) return;
  PONDER_CHECK(grad_scale.numel() == 1 && grad_scale.dtype() == DType::f64 && grad_scale.device() == device,
               DTypeError, kernel, ": grad_scale ", describe(grad_scale), " must be one f64 element on ", device);
}

void ema_update(const Tensor& shadow, const Tensor& param, double decay) {
  const int64_t n = shadow.numel();
  check_operand("ema_update", "shadow", shadow, n);
  const Tensor p = backend::contiguous(param);
  PONDER_CHECK(p.numel() == n, ShapeError, "ema_update: parameter ", describe(param), " does not match shadow ",
               describe(shadow));
  visit_master(shadow.dtype(), "ema_update", [&](auto shadow_tag) {
    using S = decltype(shadow_tag);
    const EmaRule<S> rule(decay);
    visit_floating(p.dtype(), "ema_update", [&](auto param_tag) {
      using P = decltype(param_tag);
      update_loop(shadow.data<S>(), static_cast<S*>(nullptr), p.data<P>(), S(1), n, rule);
    });
  });
}

void ema_update_list(const TensorList& shadows, const TensorList& params, double decay) {
  PONDER_CHECK(shadows.size() == params.size(), ValueError, "ema_update_list: ", shadows.size(), " shadows for ",
               params.size(), " parameters");
  for (size_t i = 0; i < shadows.size(); ++i) ema_update(shadows[i], params[i], decay);
}

void sum_of_squares(const Tensor& out, const Tensor& x) {
  check_sum_output("sum_of_squares", out);
  *out.data<double>() = squares_of(x);
}

void sum_of_squares_list(const Tensor& out, const TensorList& xs) {
  check_sum_output("sum_of_squares_list", out);
  double total = 0.0;
  for (const Tensor& x : xs) total += squares_of(x);
  *out.data<double>() = total;
}

void scale(const Tensor& x, double factor) {
  PONDER_CHECK(x.is_contiguous(), ShapeError, "scale: ", describe(x), " must be contiguous");
  const int64_t n = x.numel();
  visit_floating(x.dtype(), "scale", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* p = x.data<T>();
    const C f = C(factor);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(f * load(p, i));
  });
}

void clip_factor(const Tensor& factor, const Tensor& sum_squares, double max_norm) {
  check_sum_output("clip_factor", factor, "factor");
  check_sum_output("clip_factor", sum_squares, "sum_squares");
  *factor.data<double>() = clip_factor_of(*sum_squares.data<double>(), max_norm);
}

}  // namespace ponder::backend::cpu
