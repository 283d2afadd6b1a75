// Normalisation layers over the last dimension, and the config that picks one.
#pragma once

#include <memory>
#include <string>

#include "nn/module.h"

namespace ponder::nn {

// The common interface, so blocks can hold either kind.
class Norm : public Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;

  struct SumAndNormed {
    Tensor sum;     // x + residual
    Tensor normed;  // forward(sum)
  };
  // The residual step of a pre-norm network, x + residual and its normalisation; a norm that can
  // fuse the two into one pass over the data overrides it.
  virtual SumAndNormed add_forward(const Tensor& x, const Tensor& residual) const;
};

// x * rsqrt(mean(x^2) + eps) [* weight]. weight [dim] (ones) only when `weighted`; otherwise the
// layer registers no parameter.
class RMSNorm : public Norm {
 public:
  RMSNorm(int64_t dim, double eps = 1e-6, bool weighted = true);
  Tensor forward(const Tensor& x) const override;
  // One fused add_rms_norm when x and residual have the same shape (no broadcasting).
  SumAndNormed add_forward(const Tensor& x, const Tensor& residual) const override;

  Tensor weight;
  double eps;
};

// (x - mean) * rsqrt(var + eps) [* weight + bias]; weight (ones) and bias (zeros) [dim] only when `affine`.
class LayerNorm : public Norm {
 public:
  LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) const override;

  Tensor weight, bias;
  double eps;
};

enum class NormKind { rms, layer };
// "rms" or "layer"; ValueError naming the choices otherwise.
NormKind parse_norm_kind(const std::string& name);

struct NormConfig {
  NormKind kind = NormKind::rms;
  double eps = 1e-6;
  bool weighted = true;  // RMSNorm: a weight; LayerNorm: weight and bias
};

std::shared_ptr<Norm> make_norm(const NormConfig& config, int64_t dim);

}  // namespace ponder::nn
