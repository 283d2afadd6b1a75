#include "nn/embedding.h"

#include <cmath>

#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"

namespace ponder::nn {

Embedding::Embedding(int64_t vocab, int64_t dim, Generator& gen, double scale, std::optional<double> init_std)
    : scale(scale) {
  PONDER_CHECK(vocab > 0 && dim > 0, ValueError, "Embedding: vocab and dim must be positive, got vocab ", vocab,
               ", dim ", dim);
  const double std = init_std.value_or(1.0 / std::sqrt(double(dim)));
  PONDER_CHECK(std::isfinite(std) && std >= 0, ValueError, "Embedding: init_std must be non-negative, got ", std);
  PONDER_CHECK(std::isfinite(scale), ValueError, "Embedding: scale must be finite, got ", scale);
  weight = zeros({vocab, dim});
  trunc_normal_(weight, std, gen);
  register_parameter("weight", weight);
}

Tensor Embedding::forward(const Tensor& ids) const {
  Tensor out = embedding(weight, ids);
  return scale == 1.0 ? out : out * scale;
}

}  // namespace ponder::nn
