#include "optim/clip.h"

#include <cmath>

#include "backend/cpu/optim.h"
#include "backend/cuda/optim.h"
#include "backend/dispatch.h"

namespace ponder::optim {

double clip_grad_norm(const TensorList& params, double max_norm, const std::function<double(double)>& sum_shards) {
  PONDER_CHECK(max_norm > 0, ValueError, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  TensorList grads;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    PONDER_CHECK(grads.empty() || g.device() == grads.front().device(), DeviceError, "clip_grad_norm: gradient ",
                 describe(g), " is not on ", grads.front().device(), " like the first one");
    grads.push_back(g);
  }
  double sum_squares = 0.0;
  if (!grads.empty()) {
    // One reduction over every gradient, combined in an order fixed by their shapes.
    Tensor total = Tensor::empty({1}, {DType::f64, grads.front().device()});
    PONDER_DISPATCH(total.device(), sum_of_squares_list, total, grads);
    sum_squares = total.to_vector<double>().front();
  }
  if (sum_shards) sum_squares = sum_shards(sum_squares);
  const double norm = std::sqrt(sum_squares);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double factor = max_norm / (norm + 1e-6);  // torch's epsilon keeps the result just below max_norm
  for (const Tensor& g : grads) {
    PONDER_DISPATCH(g.device(), scale, g, factor);
    g.bump_version();
  }
  return norm;
}

}  // namespace ponder::optim
