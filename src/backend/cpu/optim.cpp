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

// The moment updates shared by AdamW and AdamATan2, in torch.optim.AdamW's operation order.
template <class M>
struct AdamMoments {
  M decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, neg_step_size;
  explicit AdamMoments(const AdamStep& s)
      : decay(M(1.0 - s.lr * s.weight_decay)),
        beta1(M(s.beta1)),
        one_minus_beta1(M(1.0 - s.beta1)),
        beta2(M(s.beta2)),
        one_minus_beta2(M(1.0 - s.beta2)),
        bias_correction2_sqrt(M(std::sqrt(1.0 - std::pow(s.beta2, double(s.t))))),
        neg_step_size(M(-s.lr / (1.0 - std::pow(s.beta1, double(s.t))))) {}
  void decay_and_accumulate(M& theta, M g, M& m, M& v) const {
    theta *= decay;  // decoupled weight decay comes first
    m = m * beta1 + one_minus_beta1 * g;
    v = v * beta2 + one_minus_beta2 * g * g;
  }
};

template <class M>
struct AdamWRule : AdamMoments<M> {
  M eps;
  explicit AdamWRule(const AdamStep& s) : AdamMoments<M>(s), eps(M(s.eps)) {}
  void operator()(M& theta, M g, M& m, M& v) const {
    this->decay_and_accumulate(theta, g, m, v);
    theta += this->neg_step_size * m / (std::sqrt(v) / this->bias_correction2_sqrt + eps);
  }
};

template <class M>
struct AdamAtan2Rule : AdamMoments<M> {
  explicit AdamAtan2Rule(const AdamStep& s) : AdamMoments<M>(s) {}
  void operator()(M& theta, M g, M& m, M& v) const {
    this->decay_and_accumulate(theta, g, m, v);
    theta += this->neg_step_size * std::atan2(m, std::sqrt(v) / this->bias_correction2_sqrt);
  }
};

template <class M>
struct SgdRule {
  M neg_lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, first;
  explicit SgdRule(const SgdStep& s)
      : neg_lr(M(-s.lr)),
        momentum(M(s.momentum)),
        one_minus_dampening(M(1.0 - s.dampening)),
        weight_decay(M(s.weight_decay)),
        nesterov(s.nesterov),
        first(s.first) {}
  void operator()(M& theta, M g) const { theta += neg_lr * (g + weight_decay * theta); }
  void operator()(M& theta, M g, M& buffer) const {
    const M d = g + weight_decay * theta;
    buffer = first ? d : buffer * momentum + one_minus_dampening * d;
    theta += neg_lr * (nesterov ? d + momentum * buffer : buffer);
  }
};

template <class T>
compute_t<T> load(const T* p, int64_t i) {
  return static_cast<compute_t<T>>(p[i]);
}

// One pass: theta (the master) is read, updated by `rule` with this element's state, written
// back, and rounded into the working copy when there is one.
template <class M, class G, class P, class Rule, class... S>
void update_loop(M* theta, P* working, const G* grad, int64_t n, const Rule& rule, S*... state) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    M t = theta[i];
    rule(t, static_cast<M>(load(grad, i)), state[i]...);
    theta[i] = t;
    if (working) working[i] = static_cast<P>(t);
  }
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
                const Step& step, const State&... state) {
  const Tensor& target = master.defined() ? master : param;
  const int64_t n = param.numel();
  check_operand(kernel, "parameter", param, n);
  check_operand(kernel, "master", target, n);
  (check_operand(kernel, "state", state, n), ...);
  PONDER_CHECK(grad.numel() == n, ShapeError, kernel, ": gradient ", describe(grad), " does not match parameter ",
               describe(param));
  const Tensor g = backend::contiguous(grad);
  visit_master(target.dtype(), kernel, [&](auto master_tag) {
    using M = decltype(master_tag);
    const Rule<M> rule(step);
    visit_floating(g.dtype(), kernel, [&](auto grad_tag) {
      using G = decltype(grad_tag);
      if (!master.defined()) {
        update_loop(target.data<M>(), static_cast<M*>(nullptr), g.data<G>(), n, rule, state.template data<M>()...);
        return;
      }
      visit_floating(param.dtype(), kernel, [&](auto param_tag) {
        using P = decltype(param_tag);
        update_loop(target.data<M>(), param.data<P>(), g.data<G>(), n, rule, state.template data<M>()...);
      });
    });
  });
}

}  // namespace

void adamw_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const AdamStep& step) {
  run_update<AdamWRule>("adamw_update", param, master, grad, step, exp_avg, exp_avg_sq);
}

void adam_atan2_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                       const Tensor& exp_avg_sq, const AdamStep& step) {
  run_update<AdamAtan2Rule>("adam_atan2_update", param, master, grad, step, exp_avg, exp_avg_sq);
}

void sgd_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& momentum_buffer,
                const SgdStep& step) {
  if (momentum_buffer.defined()) {
    run_update<SgdRule>("sgd_update", param, master, grad, step, momentum_buffer);
  } else {
    run_update<SgdRule>("sgd_update", param, master, grad, step);
  }
}

void ema_update(const Tensor& shadow, const Tensor& param, double decay) {
  const int64_t n = shadow.numel();
  check_operand("ema_update", "shadow", shadow, n);
  const Tensor p = backend::contiguous(param);
  PONDER_CHECK(p.numel() == n, ShapeError, "ema_update: parameter ", describe(param), " does not match shadow ",
               describe(shadow));
  visit_master(shadow.dtype(), "ema_update", [&](auto shadow_tag) {
    using S = decltype(shadow_tag);
    S* s = shadow.data<S>();
    const S keep = S(decay), take = S(1.0 - decay);
    visit_floating(p.dtype(), "ema_update", [&](auto param_tag) {
      using P = decltype(param_tag);
      const P* x = p.data<P>();
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) s[i] = keep * s[i] + take * static_cast<S>(load(x, i));
    });
  });
}

void sum_of_squares(const Tensor& out, const Tensor& x) {
  PONDER_CHECK(out.numel() == 1 && out.dtype() == DType::f64, DTypeError, "sum_of_squares: out ", describe(out),
               " must be one f64 element");
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

}  // namespace ponder::backend::cpu
