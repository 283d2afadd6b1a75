// Per-element math of the optimizer kernels, shared by the CPU loops and the CUDA kernels so both
// devices apply the same update. Each rule is built on the host from one step's scalars (in
// double, then rounded to the master's type M) and applied per element by update_element. The
// files that use it compile without fused multiply-adds (src/CMakeLists.txt), so both devices
// round the same operations in the same order.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/host_device.h"

namespace ponder::backend {

// Scalars of one Adam-family update of one tensor; `t` counts this tensor's updates from 1.
struct AdamStep {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;  // unused by AdamATan2
  double weight_decay = 0.0;
  int64_t t = 1;
};

struct SgdStep {
  double lr = 0.0;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first = true;  // the momentum buffer starts as the first (decayed) gradient, as in torch.optim.SGD
};

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
  PONDER_HOST_DEVICE void decay_and_accumulate(M& theta, M g, M& m, M& v) const {
    theta *= decay;  // decoupled weight decay comes first
    m = m * beta1 + one_minus_beta1 * g;
    v = v * beta2 + one_minus_beta2 * g * g;
  }
};

template <class M>
struct AdamWRule : AdamMoments<M> {
  M eps;
  explicit AdamWRule(const AdamStep& s) : AdamMoments<M>(s), eps(M(s.eps)) {}
  PONDER_HOST_DEVICE void operator()(M& theta, M g, M& m, M& v) const {
    using std::sqrt;
    this->decay_and_accumulate(theta, g, m, v);
    theta += this->neg_step_size * m / (sqrt(v) / this->bias_correction2_sqrt + eps);
  }
};

template <class M>
struct AdamAtan2Rule : AdamMoments<M> {
  explicit AdamAtan2Rule(const AdamStep& s) : AdamMoments<M>(s) {}
  PONDER_HOST_DEVICE void operator()(M& theta, M g, M& m, M& v) const {
    using std::atan2, std::sqrt;
    this->decay_and_accumulate(theta, g, m, v);
    theta += this->neg_step_size * atan2(m, sqrt(v) / this->bias_correction2_sqrt);
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
  PONDER_HOST_DEVICE void operator()(M& theta, M g) const { theta += neg_lr * (g + weight_decay * theta); }
  PONDER_HOST_DEVICE void operator()(M& theta, M g, M& buffer) const {
    const M d = g + weight_decay * theta;
    buffer = first ? d : buffer * momentum + one_minus_dampening * d;
    theta += neg_lr * (nesterov ? d + momentum * buffer : buffer);
  }
};

// The exponential moving average: shadow ← decay·shadow + (1−decay)·x.
template <class M>
struct EmaRule {
  M keep, take;
  explicit EmaRule(double decay) : keep(M(decay)), take(M(1.0 - decay)) {}
  PONDER_HOST_DEVICE void operator()(M& shadow, M x) const { shadow = keep * shadow + take * x; }
};

// The factor torch.nn.utils.clip_grad_norm_ scales gradients by: max_norm / (norm + 1e-6) when the
// global norm exceeds max_norm, else 1. A non-finite norm also gives 1: the gradients stay as they
// are, and the trainer skips the step.
PONDER_HOST_DEVICE double clip_factor_of(double sum_squares, double max_norm) {
  using std::sqrt;
  const double norm = sqrt(sum_squares);
  const bool clips = norm > max_norm && norm <= DBL_MAX;  // false for NaN and +inf
  return clips ? max_norm / (norm + 1e-6) : 1.0;
}

// Element i of one pass: `target` (the master weights, or the EMA shadow) is read, updated by
// `rule` from input[i]·input_scale (the gradient times the clip factor, or the averaged parameter
// times 1) and this element's state, written back, and rounded into the working copy when there is
// one (working may be null). Multiplying by 1 is exact, so an unscaled input is read unchanged.
template <class Rule, class M, class P, class In, class... S>
PONDER_HOST_DEVICE void update_element(const Rule& rule, int64_t i, M* target, P* working, const In* input,
                                       M input_scale, S*... state) {
  M t = target[i];
  rule(t, static_cast<M>(static_cast<compute_t<In>>(input[i])) * input_scale, state[i]...);
  target[i] = t;
  if (working) working[i] = static_cast<P>(t);
}

}  // namespace ponder::backend
