#include "optim/clip.h"

#include <cmath>

#include "backend/cpu/optim.h"
#include "backend/cuda/optim.h"
#include "backend/dispatch.h"
#include "ops/inplace.h"

namespace ponder::optim {
namespace {

TensorList gradients_of(const TensorList& params, const char* caller) {
  TensorList grads;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    PONDER_CHECK(grads.empty() || g.device() == grads.front().device(), DeviceError, caller, ": gradient ",
                 describe(g), " is not on ", grads.front().device(), " like the first one");
    grads.push_back(g);
  }
  return grads;
}

}  // namespace

double GradClip::norm() const { return std::sqrt(sum_squares.item<double>()); }

GradClip grad_clip(const TensorList& params, double max_norm, const std::function<double(double)>& sum_shards) {
  PONDER_CHECK(max_norm > 0, ValueError, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  const TensorList grads = gradients_of(params, "clip_grad_norm");
  const Device device = grads.empty() ? Device::cpu() : grads.front().device();
  GradClip clip;
  // One reduction over every gradient, combined in an order fixed by their shapes.
  clip.sum_squares = Tensor::empty({1}, {DType::f64, device});
  PONDER_DISPATCH(device, sum_of_squares_list, clip.sum_squares, grads);
  if (sum_shards) fill_(clip.sum_squares, sum_shards(clip.sum_squares.item<double>()));
  if (std::isfinite(max_norm)) {
    clip.factor = Tensor::empty({1}, {DType::f64, device});
    PONDER_DISPATCH(device, clip_factor, clip.factor, clip.sum_squares, max_norm);
  }
  return clip;
}

void scale_gradients(const TensorList& params, const Tensor& factor) {
  const double f = factor.item<double>();
  if (f == 1.0) return;
  for (const Tensor& g : gradients_of(params, "scale_gradients")) {
    PONDER_DISPATCH(g.device(), scale, g, f);
    g.bump_version();
  }
}

double clip_grad_norm(const TensorList& params, double max_norm, const std::function<double(double)>& sum_shards) {
  const GradClip clip = grad_clip(params, max_norm, sum_shards);
  if (clip.factor.defined()) scale_gradients(params, clip.factor);
  return clip.norm();
}

}  // namespace ponder::optim
