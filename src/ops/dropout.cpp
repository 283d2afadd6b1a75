#include "ops/dropout.h"

#include "backend/cpu/dropout.h"
#include "backend/cuda/dropout.h"
#include "backend/kernels.h"
#include "ops/op_support.h"
#include "tensor/philox.h"

namespace ponder {
using namespace ops_detail;

namespace {

// dx = mask * g / (1 - p), the mask regenerated from (seed, offset) instead of stored.
struct DropoutBackward final : Node {
  DropoutBackward(double p, uint64_t seed, uint64_t offset) : p(p), seed(seed), offset(offset) {}
  const char* name() const override { return "dropout"; }
  TensorList apply(TensorList&& g) override {
    Tensor gx = Tensor::empty(g[0].shape(), g[0].options());
    PONDER_DISPATCH(gx.device(), dropout, gx, backend::contiguous(g[0]), p, seed, offset);
    return {gx};
  }
  double p;
  uint64_t seed, offset;
};

}  // namespace

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  check_defined("dropout", {&x});
  check_floating("dropout", x);
  PONDER_CHECK(p >= 0.0 && p < 1.0, ValueError, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  const uint64_t offset = gen.take(philox::blocks_for(static_cast<uint64_t>(x.numel())));
  Tensor out = Tensor::empty(x.shape(), x.options());
  PONDER_DISPATCH(x.device(), dropout, out, backend::contiguous(x), p, gen.seed(), offset);
  if (auto node = make_node<DropoutBackward>({&x}, p, gen.seed(), offset)) set_history(out, node);
  return out;
}

}  // namespace ponder
