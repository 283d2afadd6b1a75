#include "ops/creation.h"

#include "backend/cpu/random.h"
#include "backend/cuda/random.h"
#include "tensor/philox.h"
#include "backend/kernels.h"
#include "ops/op_support.h"

namespace ponder {

Tensor empty(const Shape& shape, const TensorOptions& options) { return Tensor::empty(shape, options); }

Tensor full(const Shape& shape, double value, const TensorOptions& options) {
  TensorOptions plain = options;
  plain.requires_grad = false;
  Tensor t = Tensor::empty(shape, plain);
  backend::fill(t, value);
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor zeros(const Shape& shape, const TensorOptions& options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, const TensorOptions& options) { return full(shape, 1.0, options); }
Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.options()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.options()); }

Tensor arange(int64_t start, int64_t end, int64_t step, const TensorOptions& options) {
  PONDER_CHECK(step != 0, ValueError, "arange: step must not be 0");
  int64_t n = std::max<int64_t>(0, (end - start + step + (step > 0 ? -1 : 1)) / step);
  std::vector<double> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = static_cast<double>(start + i * step);
  return tensor(values, {n}, options);
}

Tensor tensor(const std::vector<double>& values, const Shape& shape, const TensorOptions& options) {
  PONDER_CHECK(static_cast<int64_t>(values.size()) == shape.product(), ShapeError, "tensor: ",
               values.size(), " values do not fill shape ", shape);
  Tensor host = Tensor::empty(shape, {DType::f64, Device::cpu()});
  std::copy(values.begin(), values.end(), host.data<double>());
  Tensor out = Tensor::empty(shape, {options.dtype, options.device});
  backend::copy(out, host);
  if (options.requires_grad) out.set_requires_grad(true);
  return out;
}

namespace {
// Random fills write element i of the contiguous order; non-contiguous targets go through a buffer.
template <class Fill>
void fill_random(const Tensor& t, Generator& gen, const char* op, Fill fill) {
  ops_detail::check_floating(op, t);
  uint64_t offset = gen.take(philox::blocks_for(static_cast<uint64_t>(t.numel())));
  Tensor target = t.is_contiguous() ? t : Tensor::empty(t.shape(), t.options());
  fill(target, gen.seed(), offset);
  if (!target.is_same(t)) backend::copy(t, target);
  t.bump_version();
}
}  // namespace

void uniform_(const Tensor& t, double low, double high, Generator& gen) {
  fill_random(t, gen, "uniform_", [&](const Tensor& x, uint64_t seed, uint64_t offset) {
    PONDER_DISPATCH(x.device(), fill_uniform, x, low, high, seed, offset);
  });
}

void normal_(const Tensor& t, double mean, double std, Generator& gen) {
  fill_random(t, gen, "normal_", [&](const Tensor& x, uint64_t seed, uint64_t offset) {
    PONDER_DISPATCH(x.device(), fill_normal, x, mean, std, /*wrap=*/0.0, seed, offset);
  });
}

void trunc_normal_(const Tensor& t, double std, Generator& gen) {
  fill_random(t, gen, "trunc_normal_", [&](const Tensor& x, uint64_t seed, uint64_t offset) {
    PONDER_DISPATCH(x.device(), fill_normal, x, 0.0, std * 1.0148, /*wrap=*/3.0, seed, offset);
  });
}

Tensor rand(const Shape& shape, Generator& gen, const TensorOptions& options) {
  Tensor t = Tensor::empty(shape, {options.dtype, options.device});
  uniform_(t, 0.0, 1.0, gen);
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor randn(const Shape& shape, Generator& gen, const TensorOptions& options) {
  Tensor t = Tensor::empty(shape, {options.dtype, options.device});
  normal_(t, 0.0, 1.0, gen);
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

}  // namespace ponder
