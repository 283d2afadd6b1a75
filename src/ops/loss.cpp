#include "ops/loss.h"

#include <span>

#include "backend/cpu/cross_entropy.h"
#include "backend/cuda/cross_entropy.h"
#include "backend/id_check.h"
#include "backend/kernels.h"
#include "ops/elementwise.h"
#include "ops/op_support.h"
#include "ops/reduce.h"
#include "ops/view.h"

namespace ponder {
using namespace ops_detail;

namespace {

constexpr const char* kName = "cross_entropy";

DType loss_dtype(DType logits) { return logits == DType::f64 ? DType::f64 : DType::f32; }

void check_inputs(const Tensor& logits, const Tensor& targets) {
  check_same_device(kName, {&logits, &targets});
  check_floating(kName, logits);
  PONDER_CHECK(targets.dtype() == DType::i64 || targets.dtype() == DType::i32, DTypeError,
               "cross_entropy: targets must be i64 or i32, got ", describe(targets));
  PONDER_CHECK(logits.dim() >= 1, ShapeError,
               "cross_entropy: logits need a last (vocabulary) dimension, got shape ", logits.shape());
  Shape leading(std::span<const int64_t>(logits.shape().begin(), logits.dim() - 1));
  PONDER_CHECK(targets.shape() == leading, ShapeError, "cross_entropy: targets ", targets.shape(),
               " do not match the leading shape of logits ", logits.shape());
}

// t as a contiguous tensor of the given shape (same element count); a view when t is contiguous.
Tensor contiguous_as(const Tensor& t, const Shape& shape) {
  Tensor c = backend::contiguous(t);
  return c.as_strided(shape, contiguous_strides(shape), c.offset());
}

// max(number of targets that are not ignored, 1), as a 0-d tensor of `dtype`: the mean's divisor,
// so that a batch with every target ignored has loss 0 instead of 0/0.
Tensor mean_divisor(const Tensor& targets, int64_t ignore_index, DType dtype) {
  Tensor counted = sum(ne(targets, scalar_like(double(ignore_index), targets)).to(dtype));
  return maximum(counted, scalar_like(1.0, counted));
}

struct CrossEntropyBackward final : Node {
  const char* name() const override { return kName; }
  TensorList apply(TensorList&& g) override {
    const Tensor& x = logits.get(name());
    Tensor scale = backend::contiguous(row_scale(g[0], x.size(0)));
    Tensor dx = Tensor::empty(x.shape(), x.options());
    PONDER_DISPATCH(x.device(), cross_entropy_backward, dx, x, lse.get(name()), targets.get(name()),
                    scale, ignore_index);
    return {dx.as_strided(logits_shape, contiguous_strides(logits_shape), 0)};
  }
  // d(output)/d(loss of row r) times the upstream gradient, for each row.
  Tensor row_scale(const Tensor& g, int64_t rows) const {
    switch (reduction) {
      case Reduction::none: return reshape(g, {rows});
      case Reduction::sum: return expand(g, {rows});
      case Reduction::mean: return expand(g / divisor.get(name()), {rows});
    }
    fail<ValueError>("cross_entropy: unknown reduction");
  }
  void release_saved() override {
    logits.reset();
    targets.reset();
    lse.reset();
    divisor.reset();
  }
  SavedTensor logits, targets, lse, divisor;  // logits [rows, V], targets and lse [rows]
  Shape logits_shape;
  int64_t ignore_index = kIgnoreIndex;
  Reduction reduction = Reduction::mean;
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     Reduction reduction) {
  check_inputs(logits, targets);
  const int64_t rows = targets.numel(), vocab = logits.shape().back();
  Tensor x = contiguous_as(logits, {rows, vocab});
  Tensor t = contiguous_as(targets, {rows});
  backend::check_ids(backend::IdCheck::cross_entropy_targets, t, vocab, ignore_index);
  const TensorOptions row_options{loss_dtype(logits.dtype()), logits.device()};
  Tensor losses = Tensor::empty({rows}, row_options);
  Tensor lse = Tensor::empty({rows}, row_options);
  PONDER_DISPATCH(logits.device(), cross_entropy_forward, losses, lse, x, t, ignore_index);

  Tensor out, divisor;
  switch (reduction) {
    case Reduction::none:
      out = losses.as_strided(targets.shape(), contiguous_strides(targets.shape()), 0);
      break;
    case Reduction::sum:
      out = sum(losses);
      break;
    case Reduction::mean:
      divisor = mean_divisor(t, ignore_index, losses.dtype());
      out = sum(losses) / divisor;
      break;
  }
  if (auto node = make_node<CrossEntropyBackward>({&logits})) {
    node->logits = x;
    node->targets = t;
    node->lse = lse;
    node->divisor = divisor;
    node->logits_shape = logits.shape();
    node->ignore_index = ignore_index;
    node->reduction = reduction;
    set_history(out, node);
  }
  return out;
}

}  // namespace ponder
