#include "optim/ema.h"

#include "backend/cpu/optim.h"
#include "backend/cuda/optim.h"
#include "backend/dispatch.h"
#include "backend/kernels.h"

namespace ponder::optim {
namespace {

// Writes `src` into a parameter in place (no tape: parameters are leaves that require grad).
void overwrite(const Tensor& param, const Tensor& src) {
  backend::copy(param, src);
  param.bump_version();
}

Tensor copy_of(const Tensor& src, DType dtype) {
  Tensor out = Tensor::empty(src.shape(), {dtype, src.device()});
  backend::copy(out, src);
  return out;
}

}  // namespace

Ema::Ema(const nn::NamedTensors& params, double decay) : params_(params), decay_(decay) {
  PONDER_CHECK(decay >= 0 && decay <= 1, ValueError, "Ema: decay must lie in [0, 1], got ", decay);
  for (const auto& [name, p] : params_) {
    PONDER_CHECK(p.is_floating_point(), DTypeError, "Ema: parameter '", name, "' ", describe(p),
                 " is not floating point");
    shadows_.push_back(copy_of(p, p.dtype() == DType::f64 ? DType::f64 : DType::f32));
  }
}

void Ema::update() {
  PONDER_CHECK(!swapped(), ValueError, "Ema::update: the parameters hold the averages; swap() back first");
  if (shadows_.empty()) return;
  TensorList params;
  for (const auto& [name, p] : params_) params.push_back(p);
  PONDER_DISPATCH(shadows_.front().device(), ema_update_list, shadows_, params, decay_);
}

void Ema::swap() {
  if (swapped()) {
    for (size_t i = 0; i < params_.size(); ++i) overwrite(params_[i].second, saved_[i]);
    saved_.clear();
    return;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    saved_.push_back(copy_of(p, p.dtype()));
    overwrite(p, shadows_[i]);
  }
}

void Ema::copy_to(const TensorList& params) const {
  PONDER_CHECK(params.size() == shadows_.size(), ValueError, "Ema::copy_to: got ", params.size(),
               " tensors for ", shadows_.size(), " shadows");
  for (size_t i = 0; i < params.size(); ++i) {
    PONDER_CHECK(params[i].shape() == shadows_[i].shape(), ShapeError, "Ema::copy_to: tensor ", i, " ",
                 describe(params[i]), " does not match the shadow of '", params_[i].first, "' ",
                 describe(shadows_[i]));
    overwrite(params[i], shadows_[i]);
  }
}

nn::NamedTensors Ema::state() const {
  nn::NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) out.emplace_back(params_[i].first, shadows_[i].detach());
  return out;
}

void Ema::load_state(const std::map<std::string, Tensor>& state) {
  PONDER_CHECK(state.size() == params_.size(), ValueError, "Ema::load_state: got ", state.size(),
               " entries for ", params_.size(), " parameters");
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    auto it = state.find(name);
    PONDER_CHECK(it != state.end(), ValueError, "Ema::load_state: missing '", name, "'");
    PONDER_CHECK(it->second.shape() == shadows_[i].shape(), ShapeError, "Ema::load_state: '", name, "' ",
                 describe(it->second), " does not match the shadow ", describe(shadows_[i]));
  }
  for (size_t i = 0; i < params_.size(); ++i) backend::copy(shadows_[i], state.at(params_[i].first));
}

}  // namespace ponder::optim
