#include "optim/clip.h"

#include <cmath>

#include "backend/cpu/optim.h"
#include "backend/dispatch.h"

namespace ponder::optim {

double clip_grad_norm(const TensorList& params, double max_norm) {
  PONDER_CHECK(max_norm > 0, ValueError, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  TensorList grads;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    PONDER_CHECK(grads.empty() || g.device() == grads.front().device(), DeviceError, "clip_grad_norm: gradient ",
                 describe(g), " is not on ", grads.front().device(), " like the first one");
    grads.push_back(g);
  }
  if (grads.empty()) return 0.0;
  // One slot per gradient, summed here in order: the norm does not depend on scheduling.
  Tensor sums = Tensor::empty({int64_t(grads.size())}, {DType::f64, grads.front().device()});
  for (size_t i = 0; i < grads.size(); ++i) {
    const int64_t at = static_cast<int64_t>(i);
    PONDER_DISPATCH_CPU(grads[i].device(), sum_of_squares, sums.slice(0, at, at + 1), grads[i]);
  }
  double sum_squares = 0.0;
  for (double s : sums.to_vector<double>()) sum_squares += s;
  const double norm = std::sqrt(sum_squares);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double factor = max_norm / (norm + 1e-6);  // torch's epsilon keeps the result just below max_norm
  for (const Tensor& g : grads) {
    PONDER_DISPATCH_CPU(g.device(), scale, g, factor);
    g.bump_version();
  }
  return norm;
}

}  // namespace ponder::optim
