// A token embedding table (torch.nn.Embedding names and layout) with an optional output scale.
#pragma once

#include <optional>

#include "nn/module.h"
#include "tensor/generator.h"

namespace ponder::nn {

// weight [vocab, dim], initialised with HRM-Text's truncated normal, std `init_std` (default
// 1/sqrt(dim)). forward(ids) = weight[ids] * scale (e.g. HRM-Text scales by sqrt(dim)).
class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, Generator& gen, double scale = 1.0,
            std::optional<double> init_std = std::nullopt);

  // ids: i32/i64 of any shape -> ids.shape + [dim].
  Tensor forward(const Tensor& ids) const;

  Tensor weight;
  double scale;
};

}  // namespace ponder::nn
