#include "nn/norm.h"

#include <cmath>

#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/fused.h"
#include "ops/norm.h"

namespace ponder::nn {
namespace {
void check_norm_config(const char* layer, int64_t dim, double eps) {
  PONDER_CHECK(dim > 0, ValueError, layer, ": dim must be positive, got ", dim);
  PONDER_CHECK(std::isfinite(eps) && eps >= 0, ValueError, layer, ": eps must be non-negative, got ", eps);
}
}  // namespace

RMSNorm::RMSNorm(int64_t dim, double eps, bool weighted) : eps(eps) {
  check_norm_config("RMSNorm", dim, eps);
  if (!weighted) return;
  weight = ones({dim});
  register_parameter("weight", weight);
}

Norm::SumAndNormed Norm::add_forward(const Tensor& x, const Tensor& residual) const {
  Tensor sum = x + residual;
  return {sum, forward(sum)};
}

Tensor RMSNorm::forward(const Tensor& x) const { return rms_norm(x, weight, eps); }

Norm::SumAndNormed RMSNorm::add_forward(const Tensor& x, const Tensor& residual) const {
  if (x.shape() != residual.shape()) return Norm::add_forward(x, residual);
  AddRmsNorm fused = add_rms_norm(x, residual, weight, eps);
  return {fused.sum, fused.normed};
}

LayerNorm::LayerNorm(int64_t dim, double eps, bool affine) : eps(eps) {
  check_norm_config("LayerNorm", dim, eps);
  if (!affine) return;
  weight = ones({dim});
  bias = zeros({dim});
  register_parameter("weight", weight);
  register_parameter("bias", bias);
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

NormKind parse_norm_kind(const std::string& name) {
  if (name == "rms") return NormKind::rms;
  if (name == "layer") return NormKind::layer;
  fail<ValueError>("norm: unknown kind \"", name, "\" (choices: rms, layer)");
}

std::shared_ptr<Norm> make_norm(const NormConfig& config, int64_t dim) {
  if (config.kind == NormKind::rms) return std::make_shared<RMSNorm>(dim, config.eps, config.weighted);
  return std::make_shared<LayerNorm>(dim, config.eps, config.weighted);
}

}  // namespace ponder::nn
